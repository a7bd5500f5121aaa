#!/usr/bin/env bash
# One local GAN step, fedgan (LibTorch) vs the identical step in PyTorch, side by side, at
# the demo's model size, for 1 and 2 threads (alternating runs, so load hits both alike).
# usage: scripts/bench_local_step.sh [extra args for both, e.g. --batch-size 128]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bench_local_step
[ -x "$bin" ] || scripts/setup.sh release >/dev/null
for t in 1 2; do
  for rep in 1 2; do
    OMP_NUM_THREADS=$t "$bin" --threads "$t" "$@"
    OMP_NUM_THREADS=$t /usr/bin/python3 benchmarks/local_step_pytorch.py --threads "$t" "$@"
  done
done
