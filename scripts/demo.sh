#!/usr/bin/env bash
# Sets up fedgan, prepares Fashion-MNIST as 8 non-IID parties and trains a federated DCGAN on
# 2 MPI ranks (configs/fashion_mnist.toml), then prints where the sample grids are.
# usage: scripts/demo.sh [ranks]     (extra train flags: FEDGAN_DEMO_ARGS="--rounds 5")
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
scripts/setup.sh release fedgan
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fedgan=build/release/fedgan
mkdir -p data runs
if [ ! -f data/fashion_mnist_8.h5 ]; then
  "$fedgan" prepare --dataset fashion-mnist --split train --parties 8 --partition dirichlet \
    --alpha 0.5 --seed 0 --out data/fashion_mnist_8.h5
fi
# shellcheck disable=SC2086
mpirun --oversubscribe -n "$ranks" "$fedgan" --config configs/fashion_mnist.toml train --force \
  ${FEDGAN_DEMO_ARGS:-}
echo
echo "demo: sample grids (one per round) are in runs/fashion_mnist/samples/;"
echo "      the last: $(ls runs/fashion_mnist/samples/*.png | tail -n 1)"
echo "      metrics: runs/fashion_mnist/metrics.csv, checkpoint: runs/fashion_mnist/checkpoints/latest.h5"
