#!/usr/bin/env bash
# Time to quality on the demo's target task (issue 13): FID-all per round (n = 2000, the
# evaluator of scripts/make_evaluator.sh) for a warm start and a run from scratch, the demo as it
# was (old: pretraining on classes 0-4 with configs/pretrain_source.toml, fine-tuning with
# configs/fashion_mnist.toml) against the demo now (new: pretraining on the public 10-class
# catalogue with configs/pretrain_public.toml, fine-tuning with configs/small_data.toml).
# Writes OUT/fid_per_round.png, OUT/final_grids.png, OUT/fid_table.csv and prints the table and
# the round where each warm start reaches its scratch run's final FID. About 5 min on 2 cores
# after the two pretrainings (reused when runs/pretrain_{source,public}/checkpoints/latest.h5
# exist).
# usage: scripts/quality_runs.sh [fedgan-binary] [OUT] [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"; out="${2:-runs/quality}"; ranks="${3:-2}"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { mpirun --oversubscribe -n "$ranks" "$fedgan" "$@"; }
mkdir -p "$out"
scripts/demo_data.sh "$fedgan" target public source
scripts/make_evaluator.sh "$fedgan"
for source in source public; do
  [ -f runs/pretrain_$source/checkpoints/latest.h5 ] ||
    run --config configs/pretrain_$source.toml pretrain --force --out runs/pretrain_$source
done
eval_flags=(--eval-every 1 --evaluator data/evaluator_fmnist.h5 --eval-n 2000)
for recipe in old new; do
  config=configs/small_data.toml source=public
  [ $recipe = old ] && config=configs/fashion_mnist.toml source=source
  pre=runs/pretrain_$source/checkpoints/latest.h5
  for init in warm scratch; do
    extra=(); [ $init = warm ] && extra=(--init "$pre")
    echo "== $recipe recipe, $init ($config)"
    run --config $config train --force --out "$out/${recipe}_$init" "${eval_flags[@]}" \
      "${extra[@]}" >"$out/${recipe}_$init.log" 2>&1 || { tail -20 "$out/${recipe}_$init.log"; exit 1; }
  done
done
/usr/bin/python3 scripts/fid_plot.py "$out"/{old_warm,old_scratch,new_warm,new_scratch} \
  --labels "old warm" "old scratch" "new warm" "new scratch" --out "$out/fid_per_round.png" \
  --grids "$out/final_grids.png" --csv "$out/fid_table.csv" --target "new warm" "new scratch"
/usr/bin/python3 scripts/fid_plot.py "$out"/{old_warm,old_scratch} --labels "old warm" "old scratch" \
  --out "$out/fid_old.png" --target "old warm" "old scratch" | tail -2
