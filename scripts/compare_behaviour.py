#!/usr/bin/python3
"""Compares two folders written by scripts/behaviour_runs.sh (before and after a change):
every dataset of every checkpoint must hold the same bytes (dtype, shape and values), every
attribute the same value, and metrics.csv the same cells apart from the timing columns.
Prints one line per run and exits 1 on the first difference listed.
usage: compare_behaviour.py BEFORE_DIR AFTER_DIR"""
import csv, glob, os, sys

import h5py
import numpy as np

TIMING = {"wall_s", "local_train_s", "wait_s", "aggregate_s", "other_s", "images_per_s", "eval_s"}


def attr_bytes(key, value):
    """An attribute's bytes; the run's own folder (out=) in the stored config is left out."""
    if key == "config":
        text = value.decode() if isinstance(value, bytes) else str(value)
        value = "\n".join(line for line in text.split("\n") if not line.startswith("out="))
    return np.asarray(value).tobytes()


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            attrs = {k: attr_bytes(k, v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                a = obj[()]
                out[name] = (str(a.dtype), a.shape if hasattr(a, "shape") else (),
                             np.asarray(a).tobytes(), attrs)
            else:
                out[name] = ("group", (), b"", attrs)
        f.visititems(visit)
        out["/"] = ("group", (), b"", {k: attr_bytes(k, v) for k, v in f.attrs.items()})
    return out


def compare_checkpoint(a, b):
    da, db = datasets(a), datasets(b)
    problems = [f"only before: {n}" for n in sorted(set(da) - set(db))]
    problems += [f"only after: {n}" for n in sorted(set(db) - set(da))]
    for n in sorted(set(da) & set(db)):
        if da[n][:3] != db[n][:3]:
            problems.append(f"{n}: values differ")
        if da[n][3] != db[n][3]:
            problems.append(f"{n}: attributes differ")
    return problems, sum(1 for v in da.values() if v[0] != "group")


def compare_metrics(a, b):
    ra, rb = list(csv.DictReader(open(a))), list(csv.DictReader(open(b)))
    if len(ra) != len(rb):
        return [f"{len(ra)} rows before, {len(rb)} after"]
    problems = []
    for i, (x, y) in enumerate(zip(ra, rb), 1):
        keys = [k for k in x if k not in TIMING]
        if set(keys) != set(k for k in y if k not in TIMING):
            problems.append(f"row {i}: columns differ")
        for k in keys:
            if x.get(k) != y.get(k):
                problems.append(f"row {i} {k}: {x.get(k)} before, {y.get(k)} after")
    return problems


def main():
    before, after = sys.argv[1], sys.argv[2]
    failed = False
    for run in sorted(d for d in os.listdir(before) if os.path.isdir(os.path.join(before, d))):
        problems, n_sets, n_files = [], 0, 0
        for ck in sorted(glob.glob(os.path.join(before, run, "checkpoints", "*.h5"))):
            other = os.path.join(after, run, "checkpoints", os.path.basename(ck))
            if not os.path.exists(other):
                problems.append(f"missing {other}")
                continue
            p, n = compare_checkpoint(ck, other)
            problems += [f"{os.path.basename(ck)}: {x}" for x in p]
            n_sets += n
            n_files += 1
        problems += ["metrics.csv: " + x for x in compare_metrics(
            os.path.join(before, run, "metrics.csv"), os.path.join(after, run, "metrics.csv"))]
        status = "IDENTICAL" if not problems else "DIFFERENT"
        print(f"{run}: {status} ({n_files} checkpoints, {n_sets} datasets, metrics.csv without timing columns)")
        for x in problems[:20]:
            print("   ", x)
        failed = failed or bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
