#!/usr/bin/python3
"""The same local GAN step as bench_local_step.cpp, written in PyTorch (Debian's python3-torch):
DCGAN for 28x28, one D update on detached fakes, one G update with D frozen, torch.optim.Adam
(lr 2e-4, betas 0.5/0.999), non-saturating BCE loss. Prints the median step time."""
import argparse, json, time

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
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    z_dim = 64
    g, d = G(z_dim, a.g_width), D(a.d_width)
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(a.batch_size, 1, 28, 28) * 2 - 1

    def step():
        with torch.no_grad():
            fake = g(torch.randn(a.batch_size, z_dim))
        od.zero_grad()
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        loss_d.backward()
        od.step()
        for p in d.parameters():
            p.requires_grad_(False)
        og.zero_grad()
        loss_g = F.softplus(-d(g(torch.randn(a.batch_size, z_dim)))).mean()
        loss_g.backward()
        for p in d.parameters():
            p.requires_grad_(True)
        og.step()
        return loss_d.item(), loss_g.item()

    for _ in range(5):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    if a.json:
        print(json.dumps(dict(impl="pytorch", torch=torch.__version__, threads=a.threads,
                              batch=a.batch_size, g_width=a.g_width, d_width=a.d_width,
                              median_step_s=med, images_per_s=a.batch_size / med)))
    else:
        print(f"{'pytorch':16s} torch {torch.__version__:8s} threads {a.threads} batch "
              f"{a.batch_size} G/D width {a.g_width}/{a.d_width}: median step {med*1e3:.2f} ms, "
              f"{a.batch_size/med:.0f} images/s")


if __name__ == "__main__":
    main()
