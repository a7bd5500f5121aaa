#!/usr/bin/env bash
# End to end at 64 and 128 pixels RGB: a labelled synthetic dataset (written by h5py, partitioned
# by `fedgan prepare --dataset hdf5`) -> `fedgan evaluator` -> `fedgan train --model dcgan` on 2
# ranks with --eval-every 1 -> `fedgan eval` of the checkpoint; RGB sample grids; an evaluator
# of another shape (28 px grey) refused by train and eval, naming both shapes and the file.
# usage: rgb_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: setup (data + evaluators, shared by the others) | train | eval | mismatch | size128
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)"; common="$work/common"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
json_field() { "$python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

# synthetic OUT N SIZE CHANNELS SEED: three classes (a red horizontal bar, a green vertical bar,
# a blue box; grey images: the same shapes in white) on a noisy grey background, uint8 [N,C,S,S].
synthetic() {
  "$python" - "$@" <<'PY'
import sys, h5py, numpy as np
out, n, size, channels, seed = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(seed)
images = rng.integers(40, 100, (n, channels, size, size)).astype(np.uint8)
labels = np.arange(n) % 3
u = size // 8
for i in range(n):
    o = u + (i * 7) % (4 * u)
    c = labels[i] if channels == 3 else 0
    if labels[i] == 0:
        images[i, c, o:o + u, :] = 230
    elif labels[i] == 1:
        images[i, c, :, o:o + u] = 230
    else:
        images[i, c, 2 * u:6 * u, 2 * u:6 * u] = 220
with h5py.File(out, "w") as f:
    f["images"] = images
    f["labels"] = labels.astype(np.int64)
    f.attrs["num_classes"] = 3
PY
}

# dataset NAME N SIZE CHANNELS SEED PARTIES: $common/NAME.h5 in the dataset-file schema.
dataset() {
  synthetic "$common/$1.raw.h5" "$2" "$3" "$4" "$5"
  "$fedgan" prepare --dataset hdf5 --source "$common/$1.raw.h5" --parties "$6" --seed 1 \
    --out "$common/$1.h5" >/dev/null 2>&1 || fail "prepare $1"
}

# evaluator DATA TEST OUT: a small evaluator that must reach 90% on TEST. Batches of 16: with
# 20 steps in all (batch 64) the BatchNorm running statistics still lagged the weights and eval
# mode lost a class that training mode had learnt.
evaluator() {
  out="$("$fedgan" evaluator --data "$1" --test "$2" --epochs 4 --batch-size 16 --width 8 \
    --features 16 \
    --min-accuracy 0.9 --out "$3" --threads 2 2>&1)" || { echo "$out"; fail "evaluator $3"; }
  grep -E "test accuracy (0\.9[0-9]*|1\.0)" <<<"$out" || { echo "$out"; fail "accuracy of $3"; }
}

# png_is FILE MODE SIDE: the PNG has that PIL mode (RGB or L) and is SIDE x SIDE pixels.
png_is() {
  "$python" - "$@" <<'PY' || fail "$1 is not a $2 PNG of $3 x $3"
import sys
from PIL import Image
im = Image.open(sys.argv[1])
assert im.format == "PNG" and im.mode == sys.argv[2], (im.format, im.mode)
assert im.size == (int(sys.argv[3]), int(sys.argv[3])), im.size
if im.mode == "RGB":  # the three channels differ somewhere: colour, not grey stored three times
    r, g, b = (ch.tobytes() for ch in im.split())
    assert r != g or g != b, "R, G and B are equal"
print(sys.argv[1], im.mode, im.size)
PY
}

# train_run OUT DATA EVALUATOR ROUNDS [FLAGS...]: a tiny dcgan on 2 ranks, evaluated every round.
train_run() {
  local out="$1" data="$2" ev="$3" rounds="$4"; shift 4
  mpi 2 "$fedgan" train --model dcgan --data "$data" --out "$out" --rounds "$rounds" \
    --local-steps 2 --batch-size 16 --g-width 4 --d-width 4 --latent-dim 16 --eval-every 1 \
    --evaluator "$ev" --eval-n 100 --threads 1 "$@"
}

run="$work/run64"
case "$case" in
setup)
  rm -rf "$common"; mkdir -p "$common"
  dataset train64 600 64 3 1 2
  dataset test64 250 64 3 2 1
  dataset train28 300 28 1 3 2
  evaluator "$common/train64.h5" "$common/test64.h5" "$common/ev64.h5"
  evaluator "$common/train28.h5" "$common/train28.h5" "$common/ev28.h5"
  "$python" - "$common/ev64.h5" <<'PY' || fail "ev64.h5 does not record its input shape"
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs
text = lambda v: v.decode() if isinstance(v, bytes) else v
assert text(a["input_shape"]) == "3x64x64", a["input_shape"]
assert a["channels"] == 3 and a["image_size"] == 64
assert text(a["architecture"]) == "cnn c=3 s=64 k=3 w=8 f=16", a["architecture"]
PY
  ;;
train)
  # 2 rounds on 2 ranks at 64 px RGB, evaluated each round; RGB grids of 8 x 8 tiles.
  rm -rf "$run"
  train_run "$run" "$common/train64.h5" "$common/ev64.h5" 2 >"$work/train.log" 2>&1 \
    || { cat "$work/train.log"; fail "train at 64 px RGB"; }
  "$python" - "$run/metrics.csv" <<'PY' || fail "metrics.csv lacks the evaluations"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["round"] for r in rows] == ["1", "2"], rows
for r in rows:
    for k in ("fid_all", "fid_avg", "kid", "precision", "recall"):
        assert math.isfinite(float(r[k])), (k, r[k])
    assert r["eval_n"] == "100", r["eval_n"]
print("FID-all by round:", [r["fid_all"] for r in rows])
PY
  png_is "$run/samples/round_0002.png" RGB $((8 * (64 + 2) + 2))
  "$python" - "$run/checkpoints/latest.h5" <<'PY' || fail "checkpoint architecture"
import sys, h5py
a = h5py.File(sys.argv[1], "r").attrs["architecture"]
a = a.decode() if isinstance(a, bytes) else a
assert a.startswith("dcgan c=3 s=64 "), a
PY
  ;;
eval)
  # The trained checkpoint: finite figures, the same on 1 and 2 ranks; real test images are much
  # closer to the training data than noise.
  args=(--data "$common/train64.h5" --evaluator "$common/ev64.h5" --n 200 --json)
  "$fedgan" eval --checkpoint "$run/checkpoints/latest.h5" "${args[@]}" --threads 2 \
    >"$work/ck1.json" 2>"$work/ck1.log" || { cat "$work/ck1.log"; fail "eval of the checkpoint"; }
  mpi 2 "$fedgan" eval --checkpoint "$run/checkpoints/latest.h5" "${args[@]}" --threads 1 \
    >"$work/ck2.json" 2>/dev/null || fail "eval of the checkpoint on 2 ranks"
  "$fedgan" eval --samples "$common/test64.h5" "${args[@]}" >"$work/real.json" 2>/dev/null \
    || fail "eval of the test split"
  "$fedgan" eval --noise "${args[@]}" >"$work/noise.json" 2>/dev/null || fail "eval of noise"
  "$python" - "$work"/ck1.json "$work"/ck2.json "$work"/real.json "$work"/noise.json <<'PY'
import json, math, sys
ck1, ck2, real, noise = (json.load(open(p)) for p in sys.argv[1:5])
for k in ("fid_all", "fid_avg", "kid", "precision", "recall"):
    assert math.isfinite(ck1[k]) and ck1[k] == ck2[k], (k, ck1[k], ck2[k])
assert ck1["n"] == 200 and ck1["evaluator"].endswith("ev64.h5"), ck1
assert real["fid_all"] * 5 < noise["fid_all"], (real["fid_all"], noise["fid_all"])
print("FID-all: checkpoint", ck1["fid_all"], "test split", real["fid_all"], "noise",
      noise["fid_all"])
PY
  ;;
mismatch)
  # A 28 px grey evaluator against 64 px RGB data and models: refused before any round, and by
  # eval, with both shapes and the evaluator file.
  rm -rf "$work/mis"
  expect_fail "train64.h5 \(model dcgan c=3 s=64 [^)]*\): images are 3x64x64 but the evaluator .*ev28.h5 expects 1x28x28" \
    train_run "$work/mis" "$common/train64.h5" "$common/ev28.h5" 1
  [ ! -e "$work/mis/metrics.csv" ] || ! grep -q "^1," "$work/mis/metrics.csv" \
    || fail "a round ran with a mismatched evaluator"
  expect_fail "latest.h5 \(generator dcgan c=3 s=64 [^)]*\): images are 3x64x64 but the evaluator .*ev28.h5 expects 1x28x28" \
    mpi 2 "$fedgan" eval --checkpoint "$run/checkpoints/latest.h5" --data "$common/train28.h5" \
    --evaluator "$common/ev28.h5" --n 100
  expect_fail "train64.h5: images are 3x64x64 but the evaluator .*ev28.h5 expects 1x28x28" \
    mpi 2 "$fedgan" eval --noise --data "$common/train64.h5" --evaluator "$common/ev28.h5" --n 100
  expect_fail "train28.h5: images are 1x28x28 but the evaluator .*ev64.h5 expects 3x64x64" \
    "$fedgan" eval --samples "$common/train28.h5" --data "$common/train64.h5" \
    --evaluator "$common/ev64.h5" --n 100
  expect_fail "test64.h5: images are \[3, 64, 64\] but the training data .*train28.h5 has \[1, 28, 28\]" \
    "$fedgan" evaluator --data "$common/train28.h5" --test "$common/test64.h5" \
    --out "$work/ev_mixed.h5"
  ;;
size128)
  # 128 px RGB: evaluator, one round on 2 ranks with evaluation, an RGB grid of 8 x 8 tiles.
  dataset train128 300 128 3 4 2
  dataset test128 90 128 3 5 1
  evaluator "$common/train128.h5" "$common/test128.h5" "$common/ev128.h5"
  rm -rf "$work/run128"
  train_run "$work/run128" "$common/train128.h5" "$common/ev128.h5" 1 >"$work/train128.log" 2>&1 \
    || { cat "$work/train128.log"; fail "train at 128 px RGB"; }
  grep -E "round 1 eval \(n=100, .*FID-all [0-9]" "$work/train128.log" \
    || { cat "$work/train128.log"; fail "no evaluation at 128 px"; }
  png_is "$work/run128/samples/round_0001.png" RGB $((8 * (128 + 2) + 2))
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
