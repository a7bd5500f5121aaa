#!/usr/bin/python3
"""Scaling report: reads the runs of scripts/scaling.sh (OUT/runs/*/metrics.csv + point.txt) and
OUT/bench_aggregate.jsonl, writes OUT/scaling.csv, OUT/bench_aggregate.csv, PNG plots and
OUT/report.md (also printed).

usage: /usr/bin/python3 scripts/scaling_report.py OUT [--cores N] [--threads T]

Round 1 is warm-up (allocator, first collectives, page faults) and is left out of every summary;
the rest are summarised by their median, which the last round's checkpoint and sample grid
(written only then) and a noisy shared machine hardly move.
Throughput is end to end: real images of all parties in a round / round wall time (the
metrics.csv column images_per_s is per rank over local training only; kept as local_ips_per_rank).
Efficiency against the smallest rank count R0 of each mode (R0 = 1 gives the usual formulas):
  strong (fixed total parties):    E(R) = T(R0)·R0 / (T(R)·R)     (T: median round time)
  weak (fixed parties per rank):   E(R) = X(R)·R0 / (X(R0)·R)     (X: images/s)
"""
import argparse
import csv
import json
import pathlib
import statistics
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

SPLIT = [("own_local_s", "local train (rank 0)", "tab:blue"),
         ("wait_s", "wait for slowest rank", "tab:orange"),
         ("aggregate_s", "aggregation (allreduce + server step)", "tab:red"),
         ("other_s", "other (metrics, I/O)", "tab:gray")]
COLUMNS = ["mode", "ranks", "parties_per_rank", "parties", "threads", "oversubscribed", "launcher",
           "nodes", "rounds_timed", "round_s", "round_s_min", "round_s_max", "local_train_s",
           "own_local_s", "wait_s", "aggregate_s", "other_s", "aggregate_frac", "images_per_round",
           "images_per_s", "local_ips_per_rank", "speedup", "efficiency", "ideal_round_s",
           "ideal_images_per_s"]


def read_point(run: pathlib.Path):
    """One grid point: its point.txt and the median of its timed rounds (round >= 2)."""
    info = dict(line.split("=", 1) for line in (run / "point.txt").read_text().splitlines() if "=" in line)
    with open(run / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    timed = [r for r in rows if int(r["round"]) >= 2]
    if not timed:
        sys.exit(f"{run}/metrics.csv: needs at least 2 rounds (round 1 is warm-up), has {len(rows)}")

    def med(key, rs=timed):
        return statistics.median(float(r[key]) for r in rs)

    wall = [float(r["wall_s"]) for r in timed]
    p = {"mode": info["mode"], "ranks": int(info["ranks"]),
         "parties_per_rank": int(info["parties_per_rank"]), "parties": int(info["parties"]),
         "threads": int(info["threads"]), "oversubscribed": int(info["oversubscribed"]),
         "launcher": info.get("launcher", ""), "nodes": int(info.get("nodes", 1)),
         "rounds_timed": len(timed), "round_s": med("wall_s"), "round_s_min": min(wall),
         "round_s_max": max(wall), "local_train_s": med("local_train_s"),
         "wait_s": med("wait_s"), "aggregate_s": med("aggregate_s"), "other_s": med("other_s"),
         "images_per_round": med("images"), "local_ips_per_rank": med("images_per_s")}
    # metrics.csv's local_train_s is the slowest rank's; rank 0's own is what the wall is made of.
    p["own_local_s"] = max(0.0, p["round_s"] - p["wait_s"] - p["aggregate_s"] - p["other_s"])
    p["aggregate_frac"] = p["aggregate_s"] / p["round_s"]
    p["images_per_s"] = p["images_per_round"] / p["round_s"]
    return p


def add_efficiency(points):
    for mode in {p["mode"] for p in points}:
        ps = sorted((p for p in points if p["mode"] == mode), key=lambda p: p["ranks"])
        base = ps[0]
        r0 = base["ranks"]
        for p in ps:
            scale = p["ranks"] / r0
            if mode == "strong":
                p["ideal_round_s"] = base["round_s"] / scale
                p["efficiency"] = base["round_s"] / (p["round_s"] * scale)
            else:
                p["ideal_round_s"] = base["round_s"]
                p["efficiency"] = p["images_per_s"] / (base["images_per_s"] * scale)
            p["ideal_images_per_s"] = base["images_per_s"] * scale
            p["speedup"] = p["images_per_s"] / base["images_per_s"]


def fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow([fmt(r[c]) for c in columns])


def tick(p):
    return f"{p['ranks']}*" if p["oversubscribed"] else str(p["ranks"])


def mode_title(p):
    if p["mode"] == "strong":
        return f"strong scaling: {p['parties']} parties in all"
    return f"weak scaling: {p['parties_per_rank']} parties per rank"


def by_mode(points):
    modes = [m for m in ("strong", "weak") if any(p["mode"] == m for p in points)]
    return [(m, sorted((p for p in points if p["mode"] == m), key=lambda p: p["ranks"])) for m in modes]


def footnote(fig, points, cores):
    notes = ["round 1 (warm-up) excluded; medians of the other rounds"]
    if any(p["oversubscribed"] for p in points):
        notes.append(f"* oversubscribed: ranks × threads > {cores} cores, timings share cores")
    fig.text(0.01, 0.005, "\n".join(notes), fontsize=7, color="dimgray", va="bottom")


def line_plot(points, out, cores, key, ideal_key, ylabel, name, logy=False):
    groups = by_mode(points)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (mode, ps) in zip(axes[0], groups):
        x = [p["ranks"] for p in ps]
        ax.plot(x, [p[key] for p in ps], "o-", label="measured")
        for p in ps:  # hollow markers over oversubscribed points
            if p["oversubscribed"]:
                ax.plot(p["ranks"], p[key], "o", ms=11, mfc="none", mec="tab:red")
        if key == "round_s":
            ax.vlines(x, [p["round_s_min"] for p in ps], [p["round_s_max"] for p in ps],
                      color="tab:blue", alpha=0.4, label="min–max over timed rounds")
        ax.plot(x, [p[ideal_key] for p in ps], "--", color="gray", label="ideal")
        ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_xticks(x, [tick(p) for p in ps])
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel(ylabel)
        ax.set_title(mode_title(ps[0]), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    footnote(fig, points, cores)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def efficiency_plot(points, out, cores):
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for mode, ps in by_mode(points):
        ax.plot([p["ranks"] for p in ps], [p["efficiency"] for p in ps], "o-", label=mode_title(ps[0]))
        for p in ps:
            if p["oversubscribed"]:
                ax.plot(p["ranks"], p["efficiency"], "o", ms=11, mfc="none", mec="tab:red")
    ax.axhline(1.0, ls="--", color="gray", label="ideal")
    xs = sorted({p["ranks"] for p in points})
    over = {p["ranks"] for p in points if p["oversubscribed"]}
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [f"{r}*" if r in over else str(r) for r in xs])
    ax.set_ylim(0, max(1.1, max(p["efficiency"] for p in points) * 1.1))
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("parallel efficiency")
    ax.set_title("efficiency vs ideal", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    footnote(fig, points, cores)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "scaling_efficiency.png", dpi=110)
    plt.close(fig)
    return "scaling_efficiency.png"


def split_plot(points, out, cores):
    groups = by_mode(points)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (mode, ps) in zip(axes[0], groups):
        x = range(len(ps))
        bottom = [0.0] * len(ps)
        for key, label, color in SPLIT:
            vals = [p[key] for p in ps]
            ax.bar(x, vals, bottom=bottom, color=color, label=label, edgecolor="white")
            bottom = [b + v for b, v in zip(bottom, vals)]
        for i, p in enumerate(ps):
            ax.text(i, bottom[i], f"agg {100 * p['aggregate_frac']:.1f}%", ha="center",
                    va="bottom", fontsize=7)
        ax.set_xticks(list(x), [tick(p) for p in ps])
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel("median round time (s)")
        ax.set_title(mode_title(ps[0]), fontsize=10)
        ax.margins(y=0.12)
        ax.legend(fontsize=7)
    footnote(fig, points, cores)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "scaling_split.png", dpi=110)
    plt.close(fig)
    return "scaling_split.png"


def read_bench(path):
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def bench_plot(rows, out, cores):
    models = sorted({r["model"] for r in rows})
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models):
        rs = [r for r in rows if r["model"] == model]
        for method in sorted({r["method"] for r in rs}):
            m = sorted((r for r in rs if r["method"] == method), key=lambda r: r["ranks"])
            ax.plot([r["ranks"] for r in m], [r["median_s"] * 1e6 for r in m], "o-", label=method)
        xs = sorted({r["ranks"] for r in rs})
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs, [f"{x}*" if x > cores else str(x) for x in xs])
        ax.set_xlabel("MPI ranks")
        ax.set_ylabel("median time per aggregation (µs)")
        r0 = rs[0]
        ax.set_title(f"{model}: {r0['tensors']} tensors, {r0['bytes'] / 1e6:.1f} MB", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if any(r["ranks"] > cores for r in rows):
        fig.text(0.01, 0.005, f"* oversubscribed: more ranks than the {cores} cores",
                 fontsize=7, color="dimgray")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "bench_aggregate.png", dpi=110)
    plt.close(fig)
    return "bench_aggregate.png"


def md_table(rows, columns, headers=None):
    lines = ["| " + " | ".join(headers or columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(c(r) if callable(c) else fmt(r[c]) for c in columns) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=pathlib.Path, help="the --out folder of scripts/scaling.sh")
    ap.add_argument("--cores", type=int, default=0, help="cores of the machine (for labels)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    out = args.out

    runs = sorted(p.parent for p in out.glob("runs/*/point.txt"))
    points = [read_point(r) for r in runs if (r / "metrics.csv").exists()]
    if not points:
        sys.exit(f"{out}/runs: no finished grid points (point.txt + metrics.csv)")
    add_efficiency(points)
    points.sort(key=lambda p: (p["mode"] != "strong", p["ranks"]))
    cores = args.cores or max(p["ranks"] * p["threads"] for p in points)
    write_csv(out / "scaling.csv", points, COLUMNS)
    pngs = [line_plot(points, out, cores, "round_s", "ideal_round_s", "median round time (s)",
                      "scaling_round_time.png"),
            split_plot(points, out, cores),
            line_plot(points, out, cores, "images_per_s", "ideal_images_per_s",
                      "images/s (all ranks, end to end)", "scaling_images_per_s.png"),
            efficiency_plot(points, out, cores)]

    report = ["# fedgan scaling", "",
              f"{len(points)} grid points; round 1 (warm-up) excluded, medians of rounds 2..N. "
              "Ranks marked * are oversubscribed (ranks × threads > cores); their times share "
              "cores and are not a scaling result.", "",
              md_table(points, [lambda p: p["mode"], tick, "parties_per_rank", "parties",
                                "round_s", "own_local_s", "wait_s", "aggregate_s", "other_s",
                                "images_per_s", "speedup", "efficiency"],
                       ["mode", "ranks", "parties/rank", "parties", "round s", "local s",
                        "wait s", "agg s", "other s", "images/s", "speedup", "efficiency"]), ""]

    bench_path = out / "bench_aggregate.jsonl"
    if bench_path.exists() and (bench := read_bench(bench_path)):
        bcols = list(bench[0].keys())
        write_csv(out / "bench_aggregate.csv", bench, bcols)
        pngs.append(bench_plot(bench, out, cores))
        report += ["## Aggregation micro-benchmark (bench_aggregate)", "",
                   "Median time of one aggregation of the model's buffers: raw MPI_Allreduce, "
                   "fedgan's fused allreduce, and a per-tensor loop (vs_raw: time / raw).", "",
                   md_table(bench, ["model", lambda r: f"{r['ranks']}*" if r["ranks"] > cores else str(r["ranks"]),
                                    "method", lambda r: f"{r['median_s'] * 1e6:.1f}",
                                    "bus_bw_gbs", "vs_raw"],
                            ["model", "ranks", "method", "median µs", "bus GB/s", "vs raw"]), ""]
    report += ["Plots: " + ", ".join(pngs), ""]
    (out / "report.md").write_text("\n".join(report))
    print("\n".join(report))
    print(f"wrote {out}/scaling.csv" + (f", {out}/bench_aggregate.csv" if bench_path.exists() else "")
          + ", " + ", ".join(f"{out}/{p}" for p in pngs))


if __name__ == "__main__":
    main()
