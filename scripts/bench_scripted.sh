#!/usr/bin/env bash
# Issue 21's speed table: one local GAN step (fedgan's step form: a D update on detached fakes, a
# G update on a fresh fake batch; non-saturating loss, Adam) at 64 px RGB, batch 64, 1 thread:
#   fedgan-fresh          the built-in dcgan (C++ modules)
#   fedgan-script-fresh   examples/models' DCGAN / residual SNGAN, TorchScript, as
#                         `fedgan train --model torchscript` runs them
#   pytorch-fresh-<model> the same models in eager PyTorch (benchmarks/local_step_pytorch.py)
# Runs alternate (every variant once per repetition), so load hits all alike; prints each run's
# JSON line, then medians over repetitions and the ratios. Nothing else should run meanwhile.
# usage: scripts/bench_scripted.sh [REPS] [extra args for every run, e.g. --batch-size 32]
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-3}"; shift || true
bin="${FEDGAN_BENCH_BIN:-build/release/bench_local_step}"  # or build/ci's (the same -O2 build)
if [ -z "${FEDGAN_BENCH_BIN:-}" ]; then
  if [ -d build/release ]; then cmake --build build/release --target bench_local_step >/dev/null
  else scripts/setup.sh release >/dev/null; fi
fi
work="${BENCH_DIR:-$(mktemp -d)}"
size=(--channels 3 --image-size 64 --latent-dim 64)
# Widths: the DCGAN at 32 (the demo's); the SNGAN's ImageNet layout multiplies its width by up to
# 16 per block, so width 8 there is already a larger model (~10x the DCGAN's step time).
widths() { if [ "$1" = sngan ]; then echo "--g-width 8 --d-width 8"; else echo "--g-width 32 --d-width 32"; fi; }
for family in dcgan sngan; do
  /usr/bin/python3 examples/models/export_models.py --family "$family" "${size[@]}" $(widths "$family") \
    --seed 0 --out "$work/$family" >/dev/null
done
export OMP_NUM_THREADS=1
for rep in $(seq "$reps"); do
  "$bin" --threads 1 "${size[@]}" $(widths dcgan) --json "$@" | sed 's/"impl":"fedgan-fresh"/"impl":"fedgan-fresh-builtin"/'
  for family in dcgan sngan; do
    "$bin" --threads 1 "${size[@]}" $(widths "$family") --generator "$work/$family/G.pt" \
      --discriminator "$work/$family/D.pt" --json "$@" |
      sed "s/\"impl\":\"fedgan-script-fresh\"/\"impl\":\"fedgan-script-fresh-$family\"/"
    /usr/bin/python3 benchmarks/local_step_pytorch.py --family "$family" --threads 1 "${size[@]}" $(widths "$family") \
      --json "$@"
  done
done | tee "$work/results.jsonl"
/usr/bin/python3 - "$work/results.jsonl" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs.setdefault(r["impl"], []).append(r["images_per_s"])
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"\n{'variant':32s} {'runs':>4s} {'median img/s':>13s}")
for k in sorted(med):
    print(f"{k:32s} {len(runs[k]):4d} {med[k]:13.1f}")
for fam in ("dcgan", "sngan"):
    a, b = med.get(f"fedgan-script-fresh-{fam}"), med.get(f"pytorch-fresh-{fam}")
    if a and b:
        print(f"{fam}: fedgan (TorchScript) / eager PyTorch = {a / b:.2f}")
a, b = med.get("fedgan-script-fresh-dcgan"), med.get("fedgan-fresh-builtin")
if a and b:
    print(f"dcgan: TorchScript / built-in = {a / b:.2f}")
PY
