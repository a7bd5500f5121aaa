#!/usr/bin/env bash
# Your own GAN on your own images, end to end (README, "Your own GAN on your own images"):
#   folders of JPEGs, one per party (here: synthetic coloured shapes from scripts/make_shapes.py,
#   three "hospitals" with their own palette, lighting and background)
#   -> a dataset file (fedgan prepare --dataset folder --partition folders)
#   -> a GAN written in PyTorch, scripted (examples/models/export_models.py)
#   -> an evaluator for these images (fedgan evaluator, on a held-out set for its accuracy)
#   -> federated training on 2 ranks with FID/KID/precision/recall every few rounds
#   -> the trained model back in PyTorch (fedgan export; torch.jit.load).
# usage: examples/own_gan.sh [OUT] [extra train flags]   (OUT: runs/own_gan)
#   FAMILY=dcgan|sngan SIZE=64 SEED=0 ROUNDS=30 PER_PARTY=600 examples/own_gan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/own_gan}"; shift || true
family="${FAMILY:-dcgan}" size="${SIZE:-64}" seed="${SEED:-0}" rounds="${ROUNDS:-30}"
per_party="${PER_PARTY:-600}"
fedgan="${FEDGAN:-build/release/fedgan}"
py=/usr/bin/python3
[ -x "$fedgan" ] || scripts/setup.sh release fedgan
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}" OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
mkdir -p "$out"

# 1. Images: OUT/images/party_<k>/<class>/<i>.jpg, and a held-out set of other images in the
#    same parties' styles (the same seed, later image indices).
[ -d "$out/images" ] || $py scripts/make_shapes.py --parties 3 --per-party "$per_party" --size "$size" \
  --seed 100 --format jpg --out "$out/images"
[ -d "$out/heldout" ] || $py scripts/make_shapes.py --parties 3 --per-party 300 --size "$size" \
  --seed 100 --first "$per_party" --format jpg --out "$out/heldout"

# 2. Dataset files: each top-level folder is one party; labels from the class subfolders.
for set in images heldout; do
  [ -f "$out/$set.h5" ] || "$fedgan" prepare --dataset folder --source "$out/$set" \
    --partition folders --image-size "$size" --channels 3 --out "$out/$set.h5"
done

# 3. The GAN, written in PyTorch and scripted (G.pt, D.pt).
if [ "$family" = sngan ]; then widths=(--g-width 8 --d-width 8); else widths=(--g-width 32 --d-width 32); fi
$py examples/models/export_models.py --family "$family" --channels 3 --image-size "$size" \
  --latent-dim 64 "${widths[@]}" --seed "$seed" --out "$out/model_$family"

# 4. The evaluator: a classifier of the shape classes, whose features give FID/KID/P-R.
[ -f "$out/evaluator.h5" ] || "$fedgan" evaluator --data "$out/images.h5" --test "$out/heldout.h5" \
  --seed 0 --out "$out/evaluator.h5"

# 5. Federated training: 3 parties on 2 ranks.
run="$out/run_${family}_s$seed"
loss=(); [ "$family" = sngan ] && loss=(--loss hinge)
mpirun --oversubscribe -n 2 "$fedgan" train --data "$out/images.h5" --model torchscript \
  --generator "$out/model_$family/G.pt" --discriminator "$out/model_$family/D.pt" "${loss[@]}" \
  --rounds "$rounds" --local-steps 20 --batch-size 32 --seed "$seed" --threads 1 \
  --eval-every 10 --evaluator "$out/evaluator.h5" --eval-n 1000 --out "$run" --force "$@"

# 6. Back to PyTorch.
"$fedgan" export --checkpoint "$run/checkpoints/latest.h5" --out "$run/export" --force
$py - "$run/export" <<'PY'
import sys, torch
G = torch.jit.load(sys.argv[1] + "/G.pt").eval()
with torch.no_grad():
    x = G(torch.randn(4, 64))
print(f"own_gan: torch.jit.load({sys.argv[1]}/G.pt) -> G(z) of shape {list(x.shape)}, "
      f"range [{x.min().item():.2f}, {x.max().item():.2f}]")
PY
echo "own_gan: metrics in $run/metrics.csv, samples in $run/samples/"
