#!/usr/bin/env bash
# Creates the Fashion-MNIST evaluator once (the feature network behind `fedgan eval`): prepares
# the train and test splits as dataset files, trains the CNN on all 10 classes, and refuses to
# save it below 90% test accuracy (the defaults, width 16 and 16 epochs, gave 92.78 / 92.29 /
# 92.63 / 92.64 / 92.58% with seeds 0-4, in 101-151 s on 2 cores, 2026-11-27).
# Reuses data/evaluator_fmnist.h5 when it is already there.
# usage: scripts/make_evaluator.sh [fedgan binary]   (extra flags: FEDGAN_EVALUATOR_ARGS="--epochs 4")
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"
out=data/evaluator_fmnist.h5
if [ -f "$out" ]; then
  echo "make_evaluator: $out exists; reusing it (delete it to retrain)"
  exit 0
fi
[ -x "$fedgan" ] || { echo "make_evaluator: no $fedgan; run scripts/setup.sh first" >&2; exit 1; }
# One party holding every image: `evaluator` trains on all rows, `eval --data` pools them.
scripts/demo_data.sh "$fedgan" train test
# shellcheck disable=SC2086
time "$fedgan" evaluator --data data/fashion_mnist_train.h5 --test data/fashion_mnist_test.h5 \
  --min-accuracy 0.9 --out "$out" ${FEDGAN_EVALUATOR_ARGS:-}
echo "make_evaluator: wrote $out; e.g. after scripts/demo.sh:"
echo "  $fedgan eval --checkpoint runs/target_warm/checkpoints/latest.h5 \\"
echo "      --data data/fmnist_target.h5 --evaluator $out --n 2000"
