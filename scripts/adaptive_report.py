#!/usr/bin/env python3
"""The table and plot of scripts/adaptive_federation.sh (docs/results/adaptive_federation.md).

For each rank count and seed: the FID-all the synchronous run reaches in round 15 is the target;
each mode's time to reach it is the simulated clock's sim_time_s at its first evaluation with
FID-all <= target. Also the FID-all after 60 applied party updates (sync and budget: round 15;
fedbuff: server step 30, 2 updates each), the run's best and last FID, and its real wall seconds.
usage: scripts/adaptive_report.py RUNS_DIR [PLOT.png]
"""
import csv
import glob
import os
import re
import statistics
import sys


MODES = ["sync", "budget", "fedbuff", "fedbuff_lr", "fedbuff_k4", "fedbuff_bal", "fedbuff_auto", "auto"]


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def evaluated(metrics):
    return [(int(r["round"]), float(r["sim_time_s"]), float(r["fid_all"]))
            for r in metrics if r.get("fid_all")]


def main():
    root = sys.argv[1]
    plot = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "fid_vs_time.png")
    runs = {}
    for d in sorted(glob.glob(os.path.join(root, "*r*_s*_*"))):
        m = re.match(r"([a-z]*_)?r(\d+)_s(\d+)_(\w+)$", os.path.basename(d))
        if not m or m[4] not in MODES or not os.path.isfile(os.path.join(d, "metrics.csv")):
            continue
        runs[((m[1] or ""), int(m[2]), int(m[3]), m[4])] = rows(os.path.join(d, "metrics.csv"))
    print("| data | ranks | seed | mode | rounds (server steps) | target FID (sync r15) | sim time to target [s] "
          "| vs sync | FID at 60 updates | best FID | last FID | real wall [s] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    for (tag, ranks, seed, mode), metrics in sorted(
            runs.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], MODES.index(kv[0][3]))):
        sync = runs.get((tag, ranks, seed, "sync"))
        if not sync:
            continue
        target = float(sync[14]["fid_all"])
        ev = evaluated(metrics)
        hit = next(((r, t) for r, t, f in ev if f <= target), None)
        sync_hit = next(t for r, t, f in evaluated(sync) if f <= target)
        at60_round = {"fedbuff_k4": 15}.get(mode, 30 if mode.startswith("fedbuff") else 15)
        at60 = next((f for r, t, f in ev if r == at60_round), float("nan"))
        wall = sum(float(r["wall_s"]) for r in metrics)
        ratio = hit[1] / sync_hit if hit else float("nan")
        ratios.setdefault((tag, ranks, mode), []).append(ratio)
        data = tag.rstrip("_") or "non-IID"
        print(f"| {data} | {ranks} | {seed} | {mode} | {len(metrics)} | {target:.1f} | "
              f"{'%.1f (round %d)' % (hit[1], hit[0]) if hit else 'not reached'} | "
              f"{ratio:.2f} | {at60:.1f} | {min(f for _, _, f in ev):.1f} | {ev[-1][2]:.1f} | "
              f"{wall:.0f} |")
    print()
    for (tag, ranks, mode), r in sorted(ratios.items()):
        finite = [x for x in r if x == x]
        print(f"{tag or 'non-IID '}ranks {ranks} {mode}: time-to-target ratio median "
              f"{statistics.median(finite) if finite else float('nan'):.2f} over {len(r)} seeds "
              f"({', '.join('%.2f' % x for x in r)})")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    keys = sorted({(tag, ranks, seed) for tag, ranks, seed, _ in runs
                   if ranks == 2 and (tag, ranks, seed, "sync") in runs})
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, (tag, ranks, seed) in zip(axes[0], keys):
        for mode in MODES:
            if (tag, ranks, seed, mode) in runs:
                ev = evaluated(runs[(tag, ranks, seed, mode)])
                ax.plot([t for _, t, _ in ev], [f for _, _, f in ev], label=mode, marker=".")
        sync = runs.get((tag, ranks, seed, "sync"))
        if sync:
            ax.axhline(float(sync[14]["fid_all"]), color="gray", ls="--", lw=0.8,
                       label="sync round 15")
        ax.set_title(f"{tag.rstrip('_') or 'non-IID'}, {ranks} ranks, seed {seed}: parties 2, 3 x4",
                     fontsize=9)
        ax.set_xlabel("simulated time [s]")
        ax.set_ylabel("FID-all (n=2000)")
        ax.set_ylim(top=320)
        ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=90)
    print(f"plot: {plot}")


if __name__ == "__main__":
    main()
