#!/usr/bin/env bash
# One local GAN step: fedgan (LibTorch) in both forms (--g-fake fresh | reuse) vs PyTorch in
# fedgan's fresh form and in pytorch/examples' dcgan form, side by side at the demo's model
# size, for 1 and 2 threads (alternating runs, so load hits all alike). On a GPU machine add
# `--device cuda` (the PyTorch script then also runs with --graph in scripts/gpu_check.sh).
# usage: scripts/bench_local_step.sh [extra args for all, e.g. --batch-size 128]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/bench_local_step
[ -x "$bin" ] || scripts/setup.sh release >/dev/null
for t in 1 2; do
  for rep in 1 2; do
    for fake in fresh reuse; do
      OMP_NUM_THREADS=$t "$bin" --threads "$t" --g-fake $fake "$@"
    done
    for form in fresh examples; do
      OMP_NUM_THREADS=$t /usr/bin/python3 benchmarks/local_step_pytorch.py --threads "$t" --form $form "$@"
    done
  done
done
