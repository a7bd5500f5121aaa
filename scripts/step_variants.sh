#!/usr/bin/env bash
# Time to quality of the two local-step forms (issue 14.6): `--g-fake fresh` (a new G(z) for the
# G step, fedgan's original step) vs `--g-fake reuse` (the D step's fake batch, as
# pytorch/examples' dcgan), on the demo's target task (4 Dirichlet parties, classes 5-9),
# from scratch and warm-started, with FID every 3 rounds from one evaluator trained here.
# Writes runs/step_variants/{report.md,*.csv}. About 15 min on 2 cores.
# usage: scripts/step_variants.sh [fedgan-binary] [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"; ranks="${2:-2}"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=runs/step_variants; mkdir -p "$out"
run() { mpirun --oversubscribe -n "$ranks" "$fedgan" "$@"; }
scripts/demo_data.sh "$fedgan" target source train test
ev=$out/evaluator_1epoch.h5
[ -f $ev ] || "$fedgan" evaluator --data data/fashion_mnist_train.h5 \
  --test data/fashion_mnist_test.h5 --epochs 1 --out $ev
[ -f runs/pretrain_source/checkpoints/latest.h5 ] || run --config configs/pretrain_source.toml pretrain --force
for init in scratch warm; do
  for fake in fresh reuse; do
    extra=(); [ $init = warm ] && extra=(--init runs/pretrain_source/checkpoints/latest.h5)
    run --config configs/fashion_mnist.toml train --force --out "$out/${init}_$fake" \
      --g-fake $fake --eval-every 3 --evaluator $ev --eval-n 1000 "${extra[@]}" >"$out/${init}_$fake.log" 2>&1
    cp "$out/${init}_$fake/metrics.csv" "$out/${init}_$fake.csv"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import csv, sys, os
o = sys.argv[1]
lines = ["| start | G step | round | train s (cumulative, local+agg) | FID-all | FID-avg | recall |",
         "|---|---|---|---|---|---|---|"]
for init in ("scratch", "warm"):
    for fake in ("fresh", "reuse"):
        t = 0.0
        for r in csv.DictReader(open(os.path.join(o, f"{init}_{fake}.csv"))):
            t += float(r["local_train_s"]) + float(r["aggregate_s"])
            if r["fid_all"]:
                lines.append(f"| {init} | {fake} | {r['round']} | {t:.1f} | {float(r['fid_all']):.1f} | "
                             f"{float(r['fid_avg']):.1f} | {float(r['recall']):.3f} |")
text = "\n".join(lines)
open(os.path.join(o, "report.md"), "w").write(text + "\n")
print(text)
PY
