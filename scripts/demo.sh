#!/usr/bin/env bash
# The whole fedgan story on Fashion-MNIST, on 2 MPI ranks (about 4 minutes on 2 cores):
#  1. pretrain a DCGAN on the source classes 0-4 (data-parallel over IID shards),
#  2. federated fine-tuning on the target classes 5-9, held by 4 non-IID parties with little
#     data each, warm-started from the pretrained checkpoint (rank 0 reads, all ranks receive),
#  3. the same federated run from scratch,
#  4. the two sample grids side by side, and the D/G loss of both runs.
# usage: scripts/demo.sh [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
scripts/setup.sh release fedgan
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fedgan=build/release/fedgan
run() { mpirun --oversubscribe -n "$ranks" "$fedgan" "$@"; }
mkdir -p data runs

[ -f data/fmnist_source.h5 ] || "$fedgan" prepare --classes 0,1,2,3,4 --parties 2 \
  --partition iid --out data/fmnist_source.h5
[ -f data/fmnist_target.h5 ] || "$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 4 \
  --partition dirichlet --alpha 0.5 --out data/fmnist_target.h5

echo "== 1/3 pretraining on the source classes 0-4"
run --config configs/pretrain_source.toml pretrain --force
echo "== 2/3 federated fine-tuning on classes 5-9, warm start"
run --config configs/fashion_mnist.toml train --force --out runs/target_warm \
  --init runs/pretrain_source/checkpoints/latest.h5
echo "== 3/3 the same federated run from scratch"
run --config configs/fashion_mnist.toml train --force --out runs/target_scratch

/usr/bin/python3 scripts/compare_runs.py runs/target_warm runs/target_scratch \
  --labels "warm start" "from scratch" --out runs/transfer_comparison.png
echo
echo "demo: side-by-side sample grids: runs/transfer_comparison.png"
echo "      per-round grids: runs/target_warm/samples/ and runs/target_scratch/samples/"
echo "      metrics: runs/target_*/metrics.csv; checkpoints: runs/target_*/checkpoints/latest.h5"
