#!/usr/bin/env bash
# Time to quality on the demo's target task (issue 13): FID-all per round (n = 2000, the
# evaluator of scripts/make_evaluator.sh) for a warm start and a run from scratch, with the
# previous recipe (configs/fashion_mnist.toml) and the small-data recipe (configs/small_data.toml).
# Writes OUT/fid_per_round.png, OUT/final_grids.png, OUT/fid_table.csv and prints the table and
# the round where each warm start reaches its scratch run's final FID. About 5 min on 2 cores
# after the pretraining (the demo's, configs/pretrain_public.toml; reused when
# runs/pretrain_public/checkpoints/latest.h5 exists; PRETRAINED=CKPT picks another warm start).
# usage: scripts/quality_runs.sh [fedgan-binary] [OUT] [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"; out="${2:-runs/quality}"; ranks="${3:-2}"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() { mpirun --oversubscribe -n "$ranks" "$fedgan" "$@"; }
mkdir -p "$out" data
[ -f data/fmnist_target.h5 ] || "$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 4 \
  --partition dirichlet --alpha 0.5 --out data/fmnist_target.h5
[ -f data/fmnist_public.h5 ] || "$fedgan" prepare --split train --parties 2 --partition iid \
  --out data/fmnist_public.h5
scripts/make_evaluator.sh "$fedgan"
if [ -n "${PRETRAINED:-}" ]; then
  pre="$PRETRAINED"
  [ -f "$pre" ] || { echo "quality_runs: PRETRAINED=$pre: no such checkpoint" >&2; exit 1; }
else
  pre=runs/pretrain_public/checkpoints/latest.h5
  [ -f "$pre" ] || run --config configs/pretrain_public.toml pretrain --force --out runs/pretrain_public
fi
eval_flags=(--eval-every 1 --evaluator data/evaluator_fmnist.h5 --eval-n 2000)
for recipe in old new; do
  config=configs/small_data.toml; [ $recipe = old ] && config=configs/fashion_mnist.toml
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
