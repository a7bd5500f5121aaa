#!/usr/bin/env bash
# The whole fedgan story on Fashion-MNIST, on 2 MPI ranks (about 5 minutes on 2 cores after setup):
#  0. the evaluator for FID (a small Fashion-MNIST classifier), trained once and reused,
#  1. pretrain a DCGAN on the source classes 0-4 (data-parallel over IID shards),
#  2. federated fine-tuning on the target classes 5-9, held by 4 non-IID parties with little
#     data each, warm-started from the pretrained checkpoint (rank 0 reads, all ranks receive),
#     with the small-data recipe (configs/small_data.toml) and FID every round,
#  3. the same federated run from scratch,
#  4. the two sample grids side by side, FID per round of both runs (plot and table), and the
#     round where the warm start reaches the scratch run's final FID.
# usage: scripts/demo.sh [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
t_all=$(date +%s); t_step=$t_all
step() {  # step "what (usual time)": prints the step and the time the previous one took
  local now; now=$(date +%s)
  [ "$now" -gt "$t_all" ] && echo "   (took $((now - t_step)) s)"
  t_step=$now
  echo "== $*"
}
step "setup: apt-get installs what is missing (about 3 min the first time, else seconds), then the \
build of fedgan (about 1.5 min on 2 cores from clean, seconds after)"
scripts/setup.sh release fedgan
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fedgan=build/release/fedgan
run() { mpirun --oversubscribe -n "$ranks" "$fedgan" "$@"; }
mkdir -p data runs

step "data: Fashion-MNIST split into source (classes 0-4) and target (5-9) parties (seconds)"
[ -f data/fmnist_source.h5 ] || "$fedgan" prepare --classes 0,1,2,3,4 --parties 2 \
  --partition iid --out data/fmnist_source.h5
[ -f data/fmnist_target.h5 ] || "$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 4 \
  --partition dirichlet --alpha 0.5 --out data/fmnist_target.h5

step "evaluator: a Fashion-MNIST classifier whose features give FID (about 2 min the first \
time, then reused)"
scripts/make_evaluator.sh "$fedgan"

step "1/3 pretraining on the source classes 0-4 (under a minute on 2 cores)"
run --config configs/pretrain_source.toml pretrain --force
step "2/3 federated fine-tuning on classes 5-9, warm start, FID every round (about 1 min)"
run --config configs/small_data.toml train --force --out runs/target_warm \
  --init runs/pretrain_source/checkpoints/latest.h5
step "3/3 the same federated run from scratch (about 1 min)"
run --config configs/small_data.toml train --force --out runs/target_scratch

step "plots: the two runs side by side, FID per round (seconds)"
/usr/bin/python3 scripts/compare_runs.py runs/target_warm runs/target_scratch \
  --labels "warm start" "from scratch" --out runs/transfer_comparison.png >/dev/null
/usr/bin/python3 scripts/fid_plot.py runs/target_warm runs/target_scratch \
  --labels "FID warm" "FID scratch" --out runs/fid_per_round.png --grids runs/final_grids.png \
  --target "FID warm" "FID scratch"
step "done in $(( $(date +%s) - t_all )) s"
echo
echo "demo: side-by-side sample grids and losses: runs/transfer_comparison.png"
echo "      FID per round: runs/fid_per_round.png (table above); final grids: runs/final_grids.png"
echo "      per-round grids: runs/target_warm/samples/ and runs/target_scratch/samples/"
echo "      metrics: runs/target_*/metrics.csv; checkpoints: runs/target_*/checkpoints/latest.h5"
