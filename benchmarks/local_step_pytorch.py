#!/usr/bin/python3
"""The same local GAN step as bench_local_step.cpp, written in PyTorch (Debian's python3-torch on
the CPU; the GPU machine's PyTorch 2.x with --device cuda): DCGAN for 28x28, torch.optim.Adam
(lr 2e-4, betas 0.5/0.999), non-saturating BCE loss. --form fresh is fedgan's step (one D update on
detached fakes, one G update on a fresh fake batch with D frozen); --form examples is
pytorch/examples' dcgan step. Prints the median time per step."""
import argparse, contextlib, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Up(nn.Module):
    def __init__(self, cin, cout, k, s, p):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, k, s, p, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Down(nn.Module):
    def __init__(self, cin, cout, norm):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)
        self.bn = nn.BatchNorm2d(cout) if norm else None

    def forward(self, x):
        h = self.conv(x)
        if self.bn is not None:
            h = self.bn(h)
        return F.leaky_relu(h, 0.2)


class G(nn.Module):
    def __init__(self, z, w):
        super().__init__()
        self.blocks = nn.ModuleList([Up(z, 2 * w, 7, 1, 0), Up(2 * w, w, 4, 2, 1)])
        self.out = nn.ConvTranspose2d(w, 1, 4, 2, 1)

    def forward(self, z):
        h = z.view(z.size(0), z.size(1), 1, 1)
        for b in self.blocks:
            h = b(h)
        return torch.tanh(self.out(h))


class D(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.blocks = nn.ModuleList([Down(1, w, False), Down(w, 2 * w, True)])
        self.head = nn.Linear(2 * w * 49, 1)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x.flatten(1)).squeeze(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--g-width", type=int, default=32)
    ap.add_argument("--d-width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--form", default="fresh", choices=["fresh", "examples"],
                    help="fresh: a new fake batch for G (fedgan's default step); examples: "
                         "pytorch/examples dcgan's step (G(z) once, reused for G's loss, D's "
                         "weight gradients computed in the G step, .item() of the losses)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: forward passes under CUDA autocast")
    ap.add_argument("--graph", action="store_true",
                    help="CUDA only: capture the whole step in a CUDA graph and replay it "
                         "(capturable Adam, no host reads)")
    ap.add_argument("--family", default="builtin", choices=["builtin", "dcgan", "sngan"],
                    help="builtin: the 28 px DCGAN above; dcgan / sngan: examples/models' G and "
                         "D (eager) at --channels / --image-size")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--latent-dim", type=int, default=64)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.family == "builtin" and (a.channels, a.image_size) != (1, 28):
        ap.error("--family builtin is 1x28x28; use --family dcgan for other sizes")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if a.graph and not cuda:
        ap.error("--graph needs --device cuda")
    z_dim, b = a.latent_dim, a.batch_size
    if a.family == "builtin":
        g, d = G(z_dim, a.g_width), D(a.d_width)
    else:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                        "examples", "models"))
        family = __import__(a.family)
        g, d = family.build(channels=a.channels, image_size=a.image_size, latent_dim=z_dim,
                            g_width=a.g_width, d_width=a.d_width)
    g, d = g.to(dev), d.to(dev)
    kw = dict(lr=2e-4, betas=(0.5, 0.999))
    if a.graph:
        kw["capturable"] = True
    og = torch.optim.Adam(g.parameters(), **kw)
    od = torch.optim.Adam(d.parameters(), **kw)
    real = (torch.rand(b, a.channels, a.image_size, a.image_size) * 2 - 1).to(dev)
    use_ac = cuda and a.precision == "bf16"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_ac else contextlib.nullcontext

    def step_fresh():
        with autocast():
            with torch.no_grad():
                fake = g(torch.randn(b, z_dim, device=dev))
            od.zero_grad(set_to_none=False)
            loss_d = F.softplus(-d(real).float()).mean() + F.softplus(d(fake).float()).mean()
        loss_d.backward()
        od.step()
        for p in d.parameters():
            p.requires_grad_(False)
        og.zero_grad(set_to_none=False)
        with autocast():
            loss_g = F.softplus(-d(g(torch.randn(b, z_dim, device=dev))).float()).mean()
        loss_g.backward()
        for p in d.parameters():
            p.requires_grad_(True)
        og.step()
        return loss_d, loss_g

    criterion = nn.BCEWithLogitsLoss()  # examples use BCELoss on a sigmoid output: the same
    ones, zeros = torch.ones(b, device=dev), torch.zeros(b, device=dev)

    def step_examples():
        # pytorch/examples/dcgan/main.py, one iteration (D: real then fake; G on the same fake).
        d.zero_grad(set_to_none=False)
        with autocast():
            err_real = criterion(d(real).float(), ones)
        err_real.backward()
        with autocast():
            fake = g(torch.randn(b, z_dim, device=dev))
            err_fake = criterion(d(fake.detach()).float(), zeros)
        err_fake.backward()
        od.step()
        g.zero_grad(set_to_none=False)
        with autocast():
            err_g = criterion(d(fake).float(), ones)
        err_g.backward()
        og.step()
        return err_real + err_fake, err_g

    step = step_fresh if a.form == "fresh" else step_examples
    read = (lambda r: (r[0].item(), r[1].item())) if not a.graph else (lambda r: r)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    if a.graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(5):
                step()
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            step()
        run = graph.replay
    else:
        for _ in range(10):
            read(step())
        run = lambda: read(step())
    sync()
    # CPU: every step timed alone; GPU: 5 repetitions of steps/5 queued steps (as bench_local_step).
    reps, per = (5, max(1, a.steps // 5)) if cuda else (a.steps, 1)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(per):
            run()
        sync()
        times.append((time.perf_counter() - t0) / per)
    times.sort()
    med = times[len(times) // 2]
    impl = f"pytorch-{a.form}" + ("-graph" if a.graph else "")
    if a.family != "builtin":
        impl += "-" + a.family
    if a.json:
        print(json.dumps(dict(impl=impl, torch=torch.__version__, device=str(dev),
                              precision=a.precision, threads=a.threads, batch=b,
                              g_width=a.g_width, d_width=a.d_width, size=a.image_size,
                              channels=a.channels, median_step_s=med,
                              images_per_s=b / med)))
    else:
        print(f"{impl:16s} torch {torch.__version__:8s} {str(dev):6s} {a.precision} threads "
              f"{a.threads} batch {b} G/D width {a.g_width}/{a.d_width}: median step "
              f"{med*1e3:.3f} ms, {b/med:.0f} images/s")


if __name__ == "__main__":
    main()
