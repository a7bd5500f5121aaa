#!/usr/bin/python3
"""FID per round of fedgan runs (metrics.csv with --eval-every) in one plot, their last sample
grids side by side, and a table (round, FID-all of each run) on stdout. With --target A B it
also says in which round run A first reached run B's final FID.
usage: fid_plot.py RUN... --labels L... --out PNG [--grids PNG] [--target A B]... [--csv CSV]"""
import argparse, csv, glob, os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_fid(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        rows = [r for r in csv.DictReader(f) if r.get("fid_all")]
    if not rows:
        raise SystemExit(f"fid_plot: {run}/metrics.csv has no fid_all values "
                         "(train with --eval-every K --evaluator FILE)")
    n = {r["eval_n"] for r in rows}
    return {int(r["round"]): float(r["fid_all"]) for r in rows}, n


def save(fig, path):
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--out", required=True, help="the FID-per-round plot (PNG)")
    ap.add_argument("--grids", help="the runs' last sample grids side by side (PNG)")
    ap.add_argument("--target", nargs=2, metavar=("A", "B"), action="append",
                    help="labels: the round where A first reaches B's final FID (repeatable)")
    ap.add_argument("--csv", help="also write the table as CSV")
    ap.add_argument("--title", default="FID-all per round (lower is better)")
    a = ap.parse_args()
    labels = a.labels or a.runs
    if len(labels) != len(a.runs):
        raise SystemExit("fid_plot: give one --labels entry per run")
    fids, ns = {}, set()
    for run, label in zip(a.runs, labels):
        fids[label], n = read_fid(run)
        ns |= n
    if len(ns) > 1:
        raise SystemExit(f"fid_plot: the runs were evaluated with different n ({sorted(ns)}); "
                         "FIDs at different n are not comparable")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        r = sorted(fids[label])
        ax.plot(r, [fids[label][k] for k in r], marker="o", ms=3, label=label)
    ax.set_xlabel("round")
    ax.set_ylabel(f"FID-all (n = {ns.pop() if ns else '?'})")
    ax.set_title(a.title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, a.out)

    if a.grids:
        fig, axes = plt.subplots(1, len(a.runs), figsize=(3.6 * len(a.runs), 4.2))
        for i, (run, label) in enumerate(zip(a.runs, labels)):
            grids = sorted(glob.glob(os.path.join(run, "samples", "round_*.png")))
            ax = axes[i] if len(a.runs) > 1 else axes
            if grids:
                ax.imshow(plt.imread(grids[-1]), cmap="gray")
                last = os.path.basename(grids[-1])[6:10].lstrip("0")
                final = fids[label].get(int(last)) if last else None
                ax.set_title(f"{label}\nround {last}" +
                             (f", FID {final:.1f}" if final is not None else ""), fontsize=9)
            ax.axis("off")
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        save(fig, a.grids)

    rounds = sorted(set().union(*[set(f) for f in fids.values()]))
    header = ["round"] + labels
    table = [[str(r)] + [f"{fids[l][r]:.1f}" if r in fids[l] else "" for l in labels]
             for r in rounds]
    widths = [max(len(h), 7) for h in header]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for row in table:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            csv.writer(f).writerows([header] + table)
    for name_a, name_b in a.target or []:
        fa, fb = fids[name_a], fids[name_b]
        last_b = max(fb)
        goal = fb[last_b]
        reached = [r for r in sorted(fa) if fa[r] <= goal]
        if reached:
            print(f"{name_a} reaches {name_b}'s final FID {goal:.1f} (round {last_b}) "
                  f"in round {reached[0]}: {reached[0] / last_b:.2f} of the rounds")
        else:
            print(f"{name_a} never reaches {name_b}'s final FID {goal:.1f} "
                  f"(its best: {min(fa.values()):.1f})")
    print(f"wrote {a.out}" + (f" and {a.grids}" if a.grids else ""))


if __name__ == "__main__":
    main()
