#!/usr/bin/env bash
# Parties of different speeds on the demo task (docs/results/adaptive_federation.md): the
# small-data fine-tune (configs/small_data.toml, 4 parties, warm start from the demo's public
# pretraining) with parties 2 and 3 slowed 4x on the simulated clock (at 2 ranks: rank 1; at 4
# ranks: two of the four ranks), in four modes:
#   sync     synchronous FedAvg, 15 rounds (the reference: every round waits for the slow parties)
#   budget   compute-aware rounds: --round-time-budget = 160 factor-1 steps, --client-strategy
#            fednova (fast parties 160 steps, slow ones 40), ROUNDS_BUDGET rounds
#   fedbuff  buffered asynchronous aggregation, --async-buffer 2, staleness 1/sqrt(1+tau),
#            ROUNDS_ASYNC server steps (2 updates each)
#   auto     sync with the controller (--auto all), 2 ranks only
#   fedbuff_lr, fedbuff_k4, fedbuff_auto, fedbuff_bal  fedbuff with --server-lr 0.5, with
#            --async-buffer 4, with the controller's FID rule and quarantine (--auto
#            server-lr,quarantine), and with --async-weighting balanced
# FID-all every round (fedbuff: every 2nd server step), n = 2000, the demo's evaluator.
# Time is the simulated clock's: a factor-1 step takes STEP seconds (--sim-step-seconds; the
# default is this machine's measured mean local step of the demo, 2.1 s for 320 steps), so
# the time axis is deterministic and the same at any rank count; real wall seconds are in each
# run's metrics.csv (wall_s) and are not comparable across modes (the replay runs in lockstep).
# usage: scripts/adaptive_federation.sh [FEDGAN] [OUT]
#   SEEDS="0 1", RANKS="2 4", MODES="sync budget fedbuff auto", STEP=0.0066,
#   ROUNDS_BUDGET=40, ROUNDS_ASYNC=60, DATA=data/fmnist_target.h5 (TAG names its runs: e.g.
#   DATA=data/fmnist_target_iid.h5 TAG=iid_ for IID parties); FEDGAN_LOCK=FILE runs each training
#   under `flock FILE`.
# Then: /usr/bin/python3 scripts/adaptive_report.py OUT (the table and the plot).
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"
out="${2:-runs/adaptive}"
seeds="${SEEDS:-0 1}"
ranks_list="${RANKS:-2 4}"
modes="${MODES:-sync budget fedbuff auto}"
step="${STEP:-0.0066}"
rounds_budget="${ROUNDS_BUDGET:-40}"
rounds_async="${ROUNDS_ASYNC:-60}"
data="${DATA:-data/fmnist_target.h5}"
tag="${TAG:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
lock=(); [ -n "${FEDGAN_LOCK:-}" ] && lock=(flock "$FEDGAN_LOCK")
mkdir -p "$out"
scripts/demo_data.sh "$fedgan" target public >/dev/null
[ "$data" = data/fmnist_target.h5 ] || [ -f "$data" ] || { echo "$data: missing" >&2; exit 2; }
scripts/make_evaluator.sh "$fedgan" >/dev/null
init=runs/pretrain_public/checkpoints/latest.h5
if [ ! -f "$init" ]; then
  echo "== pretraining the public source (as scripts/demo.sh does)"
  "${lock[@]}" mpirun --oversubscribe -n 2 "$fedgan" --config configs/pretrain_public.toml \
    pretrain --force --data data/fmnist_public.h5 --out runs/pretrain_public >/dev/null
fi
budget=$(/usr/bin/python3 -c "print(160 * $step)")
slow=(--party-speed 2=4,3=4 --sim-step-seconds "$step")
for ranks in $ranks_list; do
  for seed in $seeds; do
    for mode in $modes; do
      case "$mode" in
        sync) args=(--rounds 15) ;;
        budget) args=(--rounds "$rounds_budget" --round-time-budget "$budget" --client-strategy fednova) ;;
        fedbuff) args=(--rounds "$rounds_async" --async-buffer 2 --eval-every 2) ;;
        auto) [ "$ranks" = 2 ] || continue; args=(--rounds 15 --auto all) ;;
        fedbuff_lr) args=(--rounds "$rounds_async" --async-buffer 2 --eval-every 2 --server-lr 0.5) ;;
        fedbuff_k4) args=(--rounds $((rounds_async / 2)) --async-buffer 4) ;;
        fedbuff_bal) args=(--rounds "$rounds_async" --async-buffer 2 --eval-every 2
                           --async-weighting balanced) ;;
        fedbuff_auto) args=(--rounds "$rounds_async" --async-buffer 2 --eval-every 2
                            --auto server-lr,quarantine) ;;
        *) echo "unknown mode $mode" >&2; exit 2 ;;
      esac
      dir="$out/${tag}r${ranks}_s${seed}_$mode"
      echo "== $dir: ${args[*]}"
      "${lock[@]}" mpirun --oversubscribe -n "$ranks" "$fedgan" --config configs/small_data.toml \
        train --force --data "$data" --out "$dir" --init "$init" --seed "$seed" --sample-every 0 \
        "${slow[@]}" "${args[@]}" >"$dir.log" 2>&1 || { tail -5 "$dir.log"; exit 1; }
      tail -1 "$dir/metrics.csv" | cut -d, -f1,14
    done
  done
done
