#!/usr/bin/python3
"""Synthetic RGB images for `fedgan prepare --dataset folder`: coloured shapes and textures, one
class each (circle, square, triangle, star, stripes, checker), drawn procedurally with numpy,
with a style of its own per party (palette, background, lighting gradient, noise), so the
parties differ in style as hospitals or devices do (feature skew) while sharing the classes.

Writes OUT/party_<k>/<class>/<i>.<format> (k and i zero-padded, so names sort in number order),
or OUT/party_<k>/<i>.<format> with --flat (unlabelled). Deterministic: each image is drawn from
a generator seeded by (seed, party, index), whatever --jobs is.

usage: scripts/make_shapes.py --out DIR [--parties 4] [--per-party 100] [--size 64]
                              [--seed 0] [--first 0] [--format jpg|png] [--flat] [--jobs 1]"""
import argparse
import colorsys
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
from PIL import Image

CLASSES = ("circle", "square", "triangle", "star", "stripes", "checker")
SUPERSAMPLE = 2  # shapes are drawn at twice the size and averaged down: smooth edges


@lru_cache(maxsize=None)
def party_style(seed, party):
    """The party's look: foreground hues, background kind and colours, light, noise."""
    rng = np.random.default_rng([seed, party, 7])
    hue = rng.uniform()
    return {
        "hue": hue,                                   # centre of the foreground hues
        "hue_spread": rng.uniform(0.03, 0.12),
        "saturation": rng.uniform(0.5, 1.0),
        "background": int(rng.integers(4)),           # solid, gradient, noise, dots
        "bg_rgb": np.array(colorsys.hsv_to_rgb((hue + 0.5 + rng.uniform(-0.15, 0.15)) % 1,
                                               rng.uniform(0.0, 0.5), rng.uniform(0.2, 0.9)),
                           dtype=np.float32),
        "bg_rgb2": np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.6),
                                                rng.uniform(0.2, 0.9)), dtype=np.float32),
        "light_angle": rng.uniform(0, 2 * np.pi),     # lighting gradient across the image
        "light": rng.uniform(0.0, 0.6),
        "noise": rng.uniform(0.0, 0.06),
    }


@lru_cache(maxsize=None)
def grid(n, centred):
    """(y, x) pixel coordinates in [0, 1]: pixel centres, or corners to corners."""
    y, x = np.mgrid[0:n, 0:n].astype(np.float32)
    return ((y + 0.5) / n, (x + 0.5) / n) if centred else (y / max(n - 1, 1), x / max(n - 1, 1))


@lru_cache(maxsize=None)
def lighting(seed, party, n):
    """The party's light: a gain per pixel, falling across the image from one side."""
    style = party_style(seed, party)
    y, x = grid(n, False)
    t = (x - 0.5) * np.cos(style["light_angle"]) + (y - 0.5) * np.sin(style["light_angle"])
    return (1 + style["light"] * t)[..., None].astype(np.float32)


def background(style, rng, n):
    kind = style["background"]
    a, b = style["bg_rgb"], style["bg_rgb2"]
    if kind == 0:
        return np.broadcast_to(a, (n, n, 3))
    if kind == 1:
        y, x = grid(n, False)
        t = x * np.cos(style["light_angle"] + 1) + y * np.sin(style["light_angle"] + 1)
        t = ((t - t.min()) / max(np.ptp(t), 1e-6))[..., None]
        return a * (1 - t) + b * t
    if kind == 2:
        cells = max(n // 8, 2)
        t = rng.uniform(size=(cells, cells)).astype(np.float32)
        t = np.repeat(np.repeat(t, -(-n // cells), 0), -(-n // cells), 1)[:n, :n, None]
        return a * (1 - 0.5 * t) + b * (0.5 * t)
    period = 6 + int(rng.integers(6))
    y, x = np.mgrid[0:n, 0:n]
    dots = ((y % period) < 2) & ((x % period) < 2)
    return np.where(dots[..., None], b, a)


def shape_mask(name, rng, n):
    """Where the class's shape is, at n x n (n already supersampled)."""
    y, x = grid(n, True)
    cx, cy = rng.uniform(0.35, 0.65, size=2)
    r = rng.uniform(0.18, 0.32)
    angle = rng.uniform(0, 2 * np.pi)
    dx, dy = x - cx, y - cy
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = dx * c + dy * s
    v = dy * c - dx * s
    if name == "circle":
        return (dx * dx + dy * dy) < r * r
    if name == "square":
        return (np.abs(u) < r * 0.85) & (np.abs(v) < r * 0.85)
    if name == "triangle":
        # Three half-planes at 120 degrees around the centre.
        inside = np.ones(u.shape, dtype=bool)
        for k in range(3):
            t = angle + k * 2 * np.pi / 3
            inside &= (dx * np.float32(np.cos(t)) + dy * np.float32(np.sin(t))) < r * 0.5
        return inside
    if name == "star":
        theta = np.arctan2(v, u)
        rho = np.sqrt(u * u + v * v)
        wave = np.cos(5 * theta)
        edge = r * (0.55 + 0.45 * wave * wave * (wave > 0))
        return rho < np.maximum(edge, r * 0.45)
    if name == "stripes":
        period = rng.uniform(0.08, 0.18)
        return ((u / period) % 1.0) < 0.5
    if name == "checker":
        period = rng.uniform(0.12, 0.25)
        return (np.floor(u / period) + np.floor(v / period)) % 2 == 0
    raise ValueError(name)


def draw(seed, party, index, cls, size):
    style = party_style(seed, party)
    rng = np.random.default_rng([seed, party, index])
    img = background(style, rng, size)
    hue = (style["hue"] + rng.uniform(-1, 1) * style["hue_spread"]) % 1
    fg = np.array(colorsys.hsv_to_rgb(hue, style["saturation"], rng.uniform(0.6, 1.0)),
                  dtype=np.float32)
    # Coverage of each pixel by the shape, from a supersampled mask: smooth edges.
    mask = shape_mask(CLASSES[cls], rng, size * SUPERSAMPLE).astype(np.float32)
    cover = mask.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))[..., None]
    img = (img * (1 - cover) + fg * cover) * lighting(seed, party, size)
    img += style["noise"] * rng.standard_normal(img.shape, dtype=np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_party(job):
    args, party = job
    pad_i = len(str(max(args.first + args.per_party - 1, 0)))
    root = os.path.join(args.out, f"party_{party:0{len(str(max(args.parties - 1, 0)))}d}")
    for i in range(args.first, args.first + args.per_party):
        cls = i % args.classes
        folder = root if args.flat else os.path.join(root, CLASSES[cls])
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"{i:0{pad_i}d}.{args.format}")
        image = Image.fromarray(draw(args.seed, party, i, cls, args.size))
        if args.format == "jpg":
            image.save(path, quality=92)
        else:
            image.save(path, compress_level=1)
    return args.per_party


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (made if missing)")
    p.add_argument("--parties", type=int, default=4)
    p.add_argument("--per-party", type=int, default=100, help="images per party")
    p.add_argument("--size", type=int, default=64, choices=(32, 64, 128))
    p.add_argument("--classes", type=int, default=len(CLASSES), choices=range(1, 7),
                   help=f"the first K of {', '.join(CLASSES)} (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first", type=int, default=0,
                   help="index of the first image: with the same --seed (the same party styles) "
                        "and --first past another set's images, a disjoint held-out set")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"))
    p.add_argument("--flat", action="store_true",
                   help="no class folders: OUT/party_<k>/<i>.<format> (unlabelled)")
    p.add_argument("--jobs", type=int, default=1, help="processes (parties are shared out)")
    args = p.parse_args()
    if args.parties < 1 or args.per_party < 1 or args.jobs < 1 or args.first < 0:
        p.error("--parties, --per-party and --jobs must be at least 1, --first at least 0")
    start = time.perf_counter()
    jobs = [(args, k) for k in range(args.parties)]
    if args.jobs == 1:
        total = sum(map(write_party, jobs))
    else:
        with ProcessPoolExecutor(args.jobs) as pool:
            total = sum(pool.map(write_party, jobs))
    seconds = time.perf_counter() - start
    print(f"make_shapes: wrote {total} images ({args.parties} parties x {args.per_party}, "
          f"{args.size} px {args.format}) to {args.out} in {seconds:.1f} s "
          f"({total / seconds:.0f} images/s)")


if __name__ == "__main__":
    sys.exit(main())
