#!/usr/bin/python3
"""Puts the last sample grids of fedgan runs side by side with their D/G loss curves (one PNG),
and prints the per-round losses as a table. usage: compare_runs.py RUN... --labels L... --out F"""
import argparse, csv, glob, os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    labels = a.labels or a.runs
    n = len(a.runs)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 8), gridspec_kw=dict(height_ratios=[3, 2]))
    rows = {}
    for i, (run, label) in enumerate(zip(a.runs, labels)):
        grids = sorted(glob.glob(os.path.join(run, "samples", "round_*.png")))
        with open(os.path.join(run, "metrics.csv")) as f:
            metrics = list(csv.DictReader(f))
        rows[label] = metrics
        ax = axes[0][i] if n > 1 else axes[0]
        ax.imshow(plt.imread(grids[-1]), cmap="gray")
        ax.set_title(f"{label}: round {metrics[-1]['round']}")
        ax.axis("off")
        ax = axes[1][i] if n > 1 else axes[1]
        r = [int(m["round"]) for m in metrics]
        ax.plot(r, [float(m["d_loss"]) for m in metrics], label="D loss")
        ax.plot(r, [float(m["g_loss"]) for m in metrics], label="G loss")
        ax.set_xlabel("round")
        ax.legend()
        ax.set_title(label)
    fig.tight_layout()
    fig.savefig(args_out := a.out + ".tmp.png", dpi=110)
    os.replace(args_out, a.out)
    print("round  " + "  ".join(f"{l[:14]:>14s} D/G" for l in labels))
    for k in range(max(len(m) for m in rows.values())):
        cells = []
        for l in labels:
            m = rows[l]
            cells.append(f"{float(m[k]['d_loss']):8.3f}/{float(m[k]['g_loss']):.3f}" if k < len(m) else " " * 14)
        print(f"{k + 1:5d}  " + "  ".join(f"{c:>18s}" for c in cells))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
