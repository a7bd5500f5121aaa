#!/usr/bin/env bash
# The whole fedgan story on Fashion-MNIST, on 2 MPI ranks (about 5 minutes on 2 cores after setup):
#  0. the evaluator for FID (a small Fashion-MNIST classifier), trained once and reused,
#  1. pretrain a DCGAN "elsewhere", on a public catalogue: the train split's 60,000 images of all
#     10 classes (data-parallel over IID shards; configs/pretrain_public.toml),
#  2. federated fine-tuning on the target classes 5-9, held by 4 non-IID parties with little
#     data each (the test split's images: none of them is in the catalogue), warm-started from
#     the pretrained checkpoint (rank 0 reads, all ranks receive), with the small-data recipe
#     (configs/small_data.toml) and FID every round,
#  3. the same federated run from scratch,
#  4. the two sample grids side by side, FID per round of both runs (plot and table), and the
#     round where the warm start reaches the scratch run's final FID.
# With source `disjoint` the pretraining sees only classes 0-4 (tops, trousers, dresses, coats),
# none of the target's classes: the harder transfer (docs/results/transfer.md has both measured),
# and a third fine-tune with the few-shot method that measured best from that source
# (docs/results/fewshot.md) runs beside plain fine-tuning and scratch.
# usage: scripts/demo.sh [ranks] [public|disjoint]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
source="${2:-public}"
case "$source" in
  public) source_set=public suffix="" ;;
  disjoint) source_set=source suffix="_disjoint"
    method_label="cross-domain correspondence"; method=(--cdc-weight 10) ;;
  *) echo "demo.sh: source must be public or disjoint, got '$source'" >&2; exit 2 ;;
esac
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

step "data: Fashion-MNIST split into the source (train split) and the target parties (test split, \
classes 5-9) (seconds)"
scripts/demo_data.sh "$fedgan" "$source_set" target
source_data=data/fmnist_$source_set.h5

step "evaluator: a Fashion-MNIST classifier whose features give FID (about 2 min the first \
time, then reused)"
scripts/make_evaluator.sh "$fedgan"

step "1/3 pretraining on the source ($source_data; under a minute on 2 cores)"
pre=runs/pretrain_$source
run --config configs/pretrain_public.toml pretrain --force --data "$source_data" --out "$pre"
warm=runs/target_warm$suffix
step "2/3 federated fine-tuning on classes 5-9, warm start, FID every round (about 1 min)"
run --config configs/small_data.toml train --force --out "$warm" \
  --init "$pre/checkpoints/latest.h5"
step "3/3 the same federated run from scratch (about 1 min)"
run --config configs/small_data.toml train --force --out runs/target_scratch
runs=("$warm" runs/target_scratch); labels=("warm start" "from scratch")
fids=("FID warm" "FID scratch"); targets=(--target "FID warm" "FID scratch")
if [ -n "${method_label:-}" ]; then
  step "3+/3 the warm start again, with $method_label (${method[*]}; about 1 min)"
  run --config configs/small_data.toml train --force --out "runs/target_method$suffix" \
    --init "$pre/checkpoints/latest.h5" "${method[@]}"
  runs+=("runs/target_method$suffix"); labels+=("$method_label"); fids+=("FID $method_label")
  targets+=(--target "FID $method_label" "FID scratch" --target "FID $method_label" "FID warm")
fi

step "plots: the runs side by side, FID per round (seconds)"
/usr/bin/python3 scripts/compare_runs.py "${runs[@]}" \
  --labels "${labels[@]}" --out runs/transfer_comparison$suffix.png >/dev/null
/usr/bin/python3 scripts/fid_plot.py "${runs[@]}" \
  --labels "${fids[@]}" --out runs/fid_per_round$suffix.png \
  --grids runs/final_grids$suffix.png "${targets[@]}"
step "done in $(( $(date +%s) - t_all )) s"
echo
echo "demo: side-by-side sample grids and losses: runs/transfer_comparison$suffix.png"
echo "      FID per round: runs/fid_per_round$suffix.png (table above); final grids: \
runs/final_grids$suffix.png"
echo "      per-round grids: RUN/samples/ of ${runs[*]}; pretrained: $pre/samples/"
echo "      metrics: runs/target_*/metrics.csv; checkpoints: runs/target_*/checkpoints/latest.h5"
