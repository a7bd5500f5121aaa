#!/usr/bin/env python3
"""Writes a G/D pair as TorchScript archives for fedgan (DIR/G.pt, DIR/D.pt) and its initial
values as a plain state dict (DIR/init.pt: {"generator.<name>": tensor,
"discriminator.<name>": tensor}, every parameter and floating buffer, as `fedgan train --init`
reads it), then loads the archives back and runs one forward as a check.

usage: export_models.py --family dcgan|sngan --channels C --image-size S --latent-dim Z
                        --g-width W --d-width W --num-classes K --d-norm N --seed N --out DIR
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dcgan  # noqa: E402
import sngan  # noqa: E402

FAMILIES = {"dcgan": dcgan, "sngan": sngan}


def state_values(module: torch.nn.Module, prefix: str) -> dict:
    """Parameters and floating buffers (what fedgan trains and averages), detached copies."""
    out = {prefix + n: p.detach().clone() for n, p in module.named_parameters()}
    out.update({prefix + n: b.detach().clone() for n, b in module.named_buffers()
                if b.is_floating_point()})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=sorted(FAMILIES), required=True)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--latent-dim", type=int, default=64)
    ap.add_argument("--g-width", type=int, default=64)
    ap.add_argument("--d-width", type=int, default=64)
    ap.add_argument("--num-classes", type=int, default=0)
    ap.add_argument("--d-norm", default=None,
                    help="dcgan: batch (default) | none | spectral; "
                    "sngan: spectral (default) | none")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="folder for G.pt, D.pt and init.pt")
    a = ap.parse_args(argv)

    family = FAMILIES[a.family]
    d_norm = a.d_norm or ("batch" if a.family == "dcgan" else "spectral")
    torch.manual_seed(a.seed)
    g, d = family.build(a.channels, a.image_size, a.latent_dim, a.g_width, a.d_width,
                        a.num_classes, d_norm)
    os.makedirs(a.out, exist_ok=True)
    paths = {k: os.path.join(a.out, k + ".pt") for k in ("G", "D", "init")}
    torch.jit.script(g).save(paths["G"])
    torch.jit.script(d).save(paths["D"])
    values = state_values(g, "generator.")
    values.update(state_values(d, "discriminator."))
    torch.save(values, paths["init"])

    # The archives as fedgan will see them: load, one forward in eval mode, check the contract.
    sg, sd = torch.jit.load(paths["G"]), torch.jit.load(paths["D"])
    sg.eval()
    sd.eval()
    z = torch.randn(2, sg.latent_dim)
    y = torch.arange(2) % max(1, a.num_classes)
    conditional = a.num_classes > 0
    with torch.no_grad():
        x = sg(z, y) if conditional else sg(z)
        logit = sd(x, y) if conditional else sd(x)
    size = a.image_size
    assert x.shape == (2, a.channels, size, size), f"G made {tuple(x.shape)}"
    assert x.dtype == torch.float32 and float(x.abs().max()) <= 1.0, "G output not in [-1, 1]"
    assert logit.shape == (2,), f"D made {tuple(logit.shape)}, expected [2]"
    for name, m in (("G", g), ("D", d)):
        n_par = sum(p.numel() for p in m.parameters())
        n_buf = sum(b.numel() for b in m.buffers() if b.is_floating_point())
        print(f"{name}: {n_par} parameters + {n_buf} float buffer values; "
              f"blocks {m.fedgan_blocks}")
    print(f"wrote {paths['G']}, {paths['D']}, {paths['init']} "
          f"({a.family}, {'conditional' if conditional else 'unconditional'}, {d_norm}); "
          f"G(z[2, {a.latent_dim}]) -> {list(x.shape)}, D -> {list(logit.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
