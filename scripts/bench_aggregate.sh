#!/usr/bin/env bash
# Runs the aggregation micro-benchmark at 1, 2 and 4 ranks (oversubscribed past the cores).
# usage: scripts/bench_aggregate.sh [--json] [--reps N]   (needs a build: scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bench_aggregate
[ -x "$bin" ] || scripts/setup.sh release >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
for n in ${FEDGAN_BENCH_RANKS:-1 2 4}; do
  mpirun --oversubscribe -n "$n" "$bin" "$@"
done
