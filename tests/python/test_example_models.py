#!/usr/bin/env python3
"""The PyTorch example models (examples/models/): both families script and run at every size,
channel count and conditioning; spectral norm; the export round trip; and the dcgan mirror
against fedgan's C++ built-in (same names, shapes, order and initial values for the same seed,
the same images from a checkpoint, a warm start from init.pt).

usage: test_example_models.py [FEDGAN]   (without FEDGAN the C++ comparison is skipped)
exit code 0: passed, 1: failed, 77: skipped (no torch)
"""
import os
import re
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("SKIPPED: python3-torch is not installed")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "examples", "models")
sys.path.insert(0, MODELS)
import dcgan  # noqa: E402
import sngan  # noqa: E402
from spectral_norm import SpectralConv2d  # noqa: E402

FAMILIES = {"dcgan": dcgan, "sngan": sngan}
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def values(module):
    """Parameters then floating buffers, as fedgan's FlatParameters lists them."""
    out = [(n, p) for n, p in module.named_parameters()]
    return out + [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]


def call(m, x, y):
    return m(x, y) if y is not None else m(x)


def test_script_matrix():
    """Each family, size, channel count, conditioning and D norm: scripts, keeps the interface
    attributes, gives the contract's shapes and ranges, and the same outputs as eager."""
    cases = []
    for family, sizes, norms in (("dcgan", (28, 32, 64, 128), ("batch", "none", "spectral")),
                                 ("sngan", (32, 64, 128), ("spectral", "none"))):
        i = 0
        for size in sizes:
            for channels in (1, 3):
                for k in (0, 3):
                    cases.append((family, size, channels, k, norms[i % len(norms)]))
                    i += 1
    for family, size, channels, k, norm in cases:
        tag = f"{family} s={size} c={channels} k={k} dn={norm}"
        torch.manual_seed(0)
        g, d = FAMILIES[family].build(channels, size, 16, 4, 4, k, norm)
        sg, sd = torch.jit.script(g), torch.jit.script(d)
        check(sg.latent_dim == 16 and sg.num_classes == k, f"{tag}: latent_dim/num_classes")
        for name, m in (("G", sg), ("D", sd)):
            names = [n for n, _ in values(m)]
            check(all(t.dtype == torch.float32 for _, t in values(m)), f"{tag}: {name} float32")
            for prefix in m.fedgan_blocks:
                check(any(n.startswith(prefix + ".") for n in names),
                      f"{tag}: {name} block {prefix} holds no value")
        z = torch.randn(4, 16)
        y = torch.tensor([0, 1, 2, 0]) if k else None
        x = torch.rand(4, channels, size, size) * 2 - 1
        for m in (g, d, sg, sd):
            m.eval()
        with torch.no_grad():
            img, s_img = call(g, z, y), call(sg, z, y)
            logit, s_logit = call(d, x, y), call(sd, x, y)
            feats = sd.features(x)
        check(img.shape == (4, channels, size, size), f"{tag}: G shape {tuple(img.shape)}")
        check(float(img.abs().max()) <= 1.0, f"{tag}: G output outside [-1, 1]")
        check(logit.shape == (4,), f"{tag}: D shape {tuple(logit.shape)}")
        check(feats.dim() == 2 and feats.shape[0] == 4, f"{tag}: features {tuple(feats.shape)}")
        check(torch.equal(img, s_img) and torch.equal(logit, s_logit),
              f"{tag}: scripted and eager outputs differ in eval mode")
        # Training mode runs and trains: gradients reach every parameter of G through D.
        for m in (sg, sd):
            m.train()
        loss = call(sd, call(sg, z, y), y).sum()
        loss.backward()
        missing = [n for n, p in g.named_parameters() if p.grad is None]
        check(not missing, f"{tag}: no gradient for {missing}")
    print(f"ok: {len(cases)} configurations script, run and match eager "
          f"(dcgan 28/32/64/128, sngan 32/64/128; C 1/3; conditional or not)")


def test_spectral_norm():
    """u moves in training mode only; sigma converges to the largest singular value; the
    normalised weight has spectral norm 1; u is never part of the graph."""
    torch.manual_seed(1)
    layer = SpectralConv2d(3, 8, 4, 2, 1)
    scripted = torch.jit.script(SpectralConv2d(3, 8, 4, 2, 1))
    x = torch.randn(2, 3, 8, 8)
    for m in (layer, scripted):
        m.eval()
        u0 = m.u.clone()
        m(x)
        check(torch.equal(m.u, u0), "spectral norm: u changed in eval mode")
        m.train()
        m(x)
        check(not torch.equal(m.u, u0), "spectral norm: u did not change in training mode")
        check(not m.u.requires_grad, "spectral norm: u requires grad")
    for _ in range(200):
        layer(x)
    w = layer.weight.detach().reshape(8, -1)
    from spectral_norm import spectral_sigma
    sigma = float(spectral_sigma(layer.weight, layer.u.clone(), False))
    top = float(torch.linalg.matrix_norm(w, ord=2))
    check(abs(sigma - top) < 1e-4 * top, f"spectral norm: sigma {sigma} vs svd {top}")
    # Whole models: every u moves in training mode and none in eval mode.
    for family, norm in (("dcgan", "spectral"), ("sngan", "spectral")):
        torch.manual_seed(2)
        _, d = FAMILIES[family].build(3, 32, 16, 4, 4, 3, norm)
        sd = torch.jit.script(d)
        y = torch.tensor([0, 2])
        # A u of one entry (the head's) is a unit scalar: it cannot move, only flip sign.
        us = {n: b.clone() for n, b in sd.named_buffers() if n.endswith(".u") and b.numel() > 1}
        check(len(us) > 0, f"{family}: no u buffers")
        sd.eval()
        sd(torch.randn(2, 3, 32, 32), y)
        check(all(torch.equal(b, us[n]) for n, b in sd.named_buffers() if n in us),
              f"{family}: u changed in eval mode")
        sd.train()
        sd(torch.randn(2, 3, 32, 32), y)
        moved = [n for n, b in sd.named_buffers() if n in us and not torch.equal(b, us[n])]
        check(len(moved) == len(us), f"{family}: only {moved} of {sorted(us)} moved in training")
    print("ok: spectral norm: u fixed in eval, moves in training (scripted and eager), "
          f"sigma = largest singular value ({sigma:.6f} vs {top:.6f})")


def export(out, *args):
    r = subprocess.run([sys.executable, os.path.join(MODELS, "export_models.py"), *args,
                        "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, f"export_models.py {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def test_export(tmp):
    """export_models.py: the archives load, match the eager module built from init.pt
    exactly (eval mode), and init.pt holds every parameter and float buffer."""
    for family, c, s, k, norm in (("dcgan", 3, 32, 4, "spectral"), ("dcgan", 1, 28, 0, "batch"),
                                  ("sngan", 1, 64, 0, "spectral"), ("sngan", 3, 32, 5, "spectral")):
        out = os.path.join(tmp, f"export_{family}_{s}_{k}")
        export(out, "--family", family, "--channels", str(c), "--image-size", str(s),
               "--latent-dim", "16", "--g-width", "8", "--d-width", "8", "--num-classes",
               str(k), "--d-norm", norm, "--seed", "5")
        sg = torch.jit.load(os.path.join(out, "G.pt"))
        sd = torch.jit.load(os.path.join(out, "D.pt"))
        init = torch.load(os.path.join(out, "init.pt"))
        check(type(init) is dict, "init.pt is not a plain dict")
        g, d = FAMILIES[family].build(c, s, 16, 8, 8, k, norm)
        check(sg.latent_dim == 16 and sg.num_classes == k and
              list(sg.fedgan_blocks) == g.fedgan_blocks and
              list(sd.fedgan_blocks) == d.fedgan_blocks, f"{family}: archive attributes")
        for prefix, m, sm in (("generator.", g, sg), ("discriminator.", d, sd)):
            names = [prefix + n for n, _ in values(sm)]
            check(sorted(names) == sorted(n for n in init if n.startswith(prefix)),
                  f"{family}: init.pt names differ from the archive's")
            sub = {n[len(prefix):]: t for n, t in init.items() if n.startswith(prefix)}
            result = m.load_state_dict(sub, strict=False)
            check(not result.unexpected_keys and
                  all(n.endswith("num_batches_tracked") for n in result.missing_keys),
                  f"{family}: init.pt does not fill the eager model: {result}")
            for n, t in values(sm):
                check(torch.equal(t, sub[n]), f"{family}: archive {n} differs from init.pt")
            m.eval()
            sm.eval()
        z = torch.randn(3, 16)
        y = torch.tensor([0, 1, k - 1]) if k else None
        with torch.no_grad():
            img = call(g, z, y)
            check(torch.equal(img, call(sg, z, y)), f"{family}: G archive != eager")
            check(torch.equal(call(d, img, y), call(sd, img, y)), f"{family}: D archive != eager")
            check(torch.equal(d.features(img), sd.features(img)), f"{family}: features differ")
    print("ok: export_models.py round trip: attributes kept; init.pt = archives' values; "
          "jit.load outputs == eager outputs (G, D, features), dcgan and sngan, with and "
          "without labels")


def test_cpp_dcgan(fedgan, tmp):
    """The dcgan mirror against `fedgan train --model dcgan` checkpoints (28 px, grey)."""
    import h5py
    import numpy as np
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")

    def run(*args):
        r = subprocess.run([fedgan, *args], capture_output=True, text=True, env=env)
        check(r.returncode == 0, f"fedgan {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
        return r.stdout + r.stderr

    data = os.path.join(tmp, "data.h5")
    run("prepare", "--split", "test", "--classes", "0,1", "--parties", "1", "--seed", "1",
        "--out", data)
    small = ["--data", data, "--g-width", "4", "--d-width", "8", "--latent-dim", "8",
             "--local-steps", "1", "--batch-size", "8", "--rounds", "1", "--threads", "1",
             "--seed", "7", "--sample-every", "0"]

    def mirror(f):
        arch = dict(kv.split("=") for kv in f.attrs["architecture"].decode().split()[1:])
        torch.manual_seed(7)  # what FederatedTrainer does before building its Gan
        return dcgan.build(int(arch["c"]), int(arch["s"]), int(arch["z"]), int(arch["gw"]),
                           int(arch["dw"]), int(arch["k"]), arch["dn"]), int(arch["k"])

    # Frozen blocks keep their initial parameters: G frozen in one run, D in the other, so the
    # checkpoint holds the C++ initial values of that model.
    runs = (("g_batch", ["--freeze-g", "3"], "generator"),
            ("d_spectral", ["--d-norm", "spectral", "--freeze-d", "3"], "discriminator"),
            ("g_cond", ["--conditional", "--d-norm", "none", "--freeze-g", "3"], "generator"),
            ("d_cond", ["--conditional", "--freeze-d", "3"], "discriminator"))
    for name, extra, frozen in runs:
        out = os.path.join(tmp, name)
        run("train", *small, *extra, "--out", out)
        ck = os.path.join(out, "checkpoints", "latest.h5")
        with h5py.File(ck, "r") as f:
            (g, d), k = mirror(f)
            for group, m in (("generator", g), ("discriminator", d)):
                mine = {n: tuple(t.shape) for n, t in values(m)}
                theirs = {n: f[group][n].shape for n in f[group]}
                check(mine == theirs, f"{name}: {group} names/shapes differ:\n"
                      f" python {sorted(mine.items())}\n C++    {sorted(theirs.items())}")
            # Same seed, same draws: equal values prove the order of construction and of
            # dcgan_init (which draws parameter by parameter in named_parameters() order).
            # Frozen blocks' buffers are not aggregated either: BatchNorm statistics and the
            # spectral u vectors (drawn in construction, after each weight) keep their initial
            # values too.
            m = g if frozen == "generator" else d
            blocks = tuple(p + "." for p in m.fedgan_blocks)
            compared = 0
            for n, t in values(m):
                if n.startswith(blocks):
                    check(np.array_equal(f[frozen][n][()], t.detach().numpy()),
                          f"{name}: {frozen}.{n}: initial values differ from C++")
                    compared += 1
            check(compared > 0, f"{name}: nothing compared")
            # The same images: the checkpoint's G in the mirror, `fedgan sample`'s latents.
            if frozen == "generator":
                state = {n: torch.from_numpy(f["generator"][n][()]) for n in f["generator"]}
                r = g.load_state_dict(state, strict=False)
                check(all(n.endswith("num_batches_tracked") for n in r.missing_keys), str(r))
                samples = os.path.join(tmp, name + "_samples.h5")
                run("sample", "--checkpoint", ck, "--n", "16", "--seed", "3", "--out", samples)
                with h5py.File(samples, "r") as s:
                    cpp = s["images"][()].astype(np.int32)
                zs = torch.randn(16, g.latent_dim, generator=torch.Generator().manual_seed(3))
                ys = torch.arange(16) % k if k else None
                g.eval()
                with torch.no_grad():
                    x = call(g, zs, ys)
                mine = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
                gap = int(np.abs(mine.astype(np.int32) - cpp).max())
                check(gap <= 1, f"{name}: images differ from `fedgan sample` by {gap} levels")
                print(f"ok: {name}: G(z) from the checkpoint = `fedgan sample` "
                      f"(largest pixel gap {gap} of 255)")
        print(f"ok: {name}: names and shapes of G and D = C++ checkpoint; {compared} {frozen} "
              "parameters and buffers equal the C++ initial values bit for bit")

    # Order: a checkpoint lists names sorted (HDF5 groups, written from a std::map), so it
    # cannot show the flat buffer's order; the equal initial values above do, since both sides
    # draw them parameter by parameter in named_parameters() order.

    # init.pt from export_models.py warm-starts `fedgan train` completely (no --init-map).
    out = os.path.join(tmp, "export_28")
    export(out, "--family", "dcgan", "--channels", "1", "--image-size", "28", "--latent-dim",
           "8", "--g-width", "4", "--d-width", "8", "--num-classes", "0", "--d-norm",
           "spectral", "--seed", "11")
    log = run("train", *small, "--d-norm", "spectral", "--freeze-g", "3",
              "--init", os.path.join(out, "init.pt"), "--init-strict",
              "--out", os.path.join(tmp, "warm"))
    for model in ("generator", "discriminator"):
        check(re.search(model + r": transferred .* values, 100%\)", log),
              f"warm start from init.pt: {model} not fully transferred:\n{log}")
    init = torch.load(os.path.join(out, "init.pt"))
    with h5py.File(os.path.join(tmp, "warm", "checkpoints", "latest.h5"), "r") as f:
        for n in f["generator"]:
            if "running" not in n:
                check(np.array_equal(f["generator"][n][()], init["generator." + n].numpy()),
                      f"warm start: generator.{n} is not init.pt's")
    print("ok: `fedgan train --init init.pt --init-strict` takes every value of an exported "
          "dcgan (100% of G and D; frozen G = init.pt bit for bit)")


def main():
    fedgan = sys.argv[1] if len(sys.argv) > 1 else None
    try:
        with tempfile.TemporaryDirectory(prefix="fedgan_pymodels_") as tmp:
            test_script_matrix()
            test_spectral_norm()
            test_export(tmp)
            if fedgan:
                test_cpp_dcgan(fedgan, tmp)
            else:
                print("SKIPPED: the comparison with the C++ dcgan (no fedgan binary given)")
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    print(f"PASS: {checks} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
