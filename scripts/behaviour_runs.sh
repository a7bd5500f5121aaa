#!/usr/bin/env bash
# Three fixed-seed 3-round runs of the demo's fine-tune (configs/small_data.toml, 4 Dirichlet
# parties of the test split's classes 5-9, 2 ranks) that a redesign must not change: FedAvg, a
# robust aggregator (trimmed mean, beta 0.25) and client-level DP with secure aggregation.
# Run it with the binary before and after a change, then compare the two folders:
#   scripts/behaviour_runs.sh OLD_FEDGAN /tmp/before_runs
#   scripts/behaviour_runs.sh build/release/fedgan /tmp/after_runs
#   /usr/bin/python3 scripts/compare_behaviour.py /tmp/before_runs /tmp/after_runs
# usage: scripts/behaviour_runs.sh FEDGAN OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="$(realpath "$1")"; out="$2"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
scripts/demo_data.sh "$fedgan" target
common=(--config configs/small_data.toml train --force --rounds 3 --local-steps 40 --eval-every 0
        --checkpoint-every 1 --threads 1 --seed 0)
run() { local name=$1; shift
  mpirun --oversubscribe -n 2 "$fedgan" "${common[@]}" --out "$out/$name" "$@" >"$out/$name.log" 2>&1 \
    || { echo "behaviour_runs: $name failed, see $out/$name.log" >&2; tail -5 "$out/$name.log" >&2; exit 1; }
  echo "behaviour_runs: $name done"; }
mkdir -p "$out"
run fedavg
run trimmed_mean --aggregator trimmed-mean --trim-beta 0.25
run dp_secagg --dp-clip 1.0 --dp-noise-multiplier 0.5 --dp-noise distributed --participation 1 \
  --secure-agg
