#!/usr/bin/env bash
# End-to-end tests of `fedgan evaluator` / `fedgan eval` on three Fashion-MNIST classes.
# usage: eval_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: setup (data + a small evaluator, shared by the others) | sanity | ranks | rounds | errors
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)"; common="$work/common"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
json_field() { "$python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

data=(--data "$common/train.h5" --evaluator "$common/ev.h5")
case "$case" in
setup)
  # T-shirt, trouser, sneaker: 18000 training images in 3 parties, 3000 test images.
  rm -rf "$common"; mkdir -p "$common"
  "$fedgan" prepare --split train --classes 0,1,7 --parties 3 --seed 1 --out "$common/train.h5" \
    >/dev/null 2>&1 || fail "prepare train"
  "$fedgan" prepare --split test --classes 0,1,7 --parties 1 --out "$common/test.h5" \
    >/dev/null 2>&1 || fail "prepare test"
  out="$("$fedgan" evaluator --data "$common/train.h5" --test "$common/test.h5" --epochs 1 \
    --width 8 --features 32 --min-accuracy 0.9 --out "$common/ev.h5" --threads 2 2>&1)" \
    || { echo "$out"; fail "evaluator"; }
  echo "$out" | grep -E "test accuracy 0\.9[0-9]*|test accuracy 1" || { echo "$out"; fail "accuracy"; }
  ;;
sanity)
  # Test split vs train split: small. Uniform noise vs train: large. n and evaluator printed.
  rm -f "$common"/train.h5.stats-*.h5
  "$fedgan" eval --samples "$common/test.h5" "${data[@]}" --n 1000 --json >"$work/real.json" \
    2>"$work/real.log" || { cat "$work/real.log"; fail "eval test split"; }
  grep -q "cached real statistics" "$work/real.log" || fail "no cache written"
  "$fedgan" eval --noise "${data[@]}" --n 1000 --json >"$work/noise.json" 2>"$work/noise.log"
  grep -q "from cache" "$work/noise.log" || fail "the cache was not reused"
  real="$(json_field "$work/real.json" fid_all)"; noise="$(json_field "$work/noise.json" fid_all)"
  echo "FID test-vs-train $real, noise-vs-train $noise (n=1000)"
  "$python" -c "import sys; r,n=map(float,sys.argv[1:]); assert n > 20*r and r < 5, (r,n)" \
    "$real" "$noise" || fail "sanity figures out of order"
  [ "$(json_field "$work/real.json" n)" = 1000 ] || fail "n not reported"
  table="$("$fedgan" eval --samples "$common/test.h5" "${data[@]}" --n 1000 2>/dev/null)"
  echo "$table"
  grep -Eq "^FID-all .* 1000 +18000  ev\.h5#" <<<"$table" || fail "table lacks n/evaluator"
  grep -Eq "^FID-avg .*mean over 3 parties" <<<"$table" || fail "no FID-avg"
  grep -Eq "^(KID|precision|recall) " <<<"$table" || fail "no KID/precision/recall"
  ;;
ranks)
  # The same figures to the last digit on 1 rank with 2 threads and on 2 and 4 ranks with 1:
  # every chunk of samples is computed the same way whichever rank or thread computes it.
  # 700 samples are 3 chunks of 256, the last of 188, so at 4 ranks one rank has none; the real
  # statistics are recomputed each time (--no-cache).
  args=(--samples "$common/test.h5" "${data[@]}" --n 700 --json --no-cache)
  "$fedgan" eval "${args[@]}" --threads 2 >"$work/r1.json" 2>/dev/null || fail "eval on 1 rank"
  mpi 2 "$fedgan" eval "${args[@]}" --threads 1 >"$work/r2.json" 2>/dev/null \
    || fail "eval on 2 ranks"
  mpi 4 "$fedgan" eval "${args[@]}" --threads 1 >"$work/r4.json" 2>/dev/null \
    || fail "eval on 4 ranks"
  "$python" - "$work/r1.json" "$work/r2.json" "$work/r4.json" <<'PY'
import json, math, sys
runs = [json.load(open(p)) for p in sys.argv[1:4]]
keys = ("n", "n_real", "n_real_subset", "fid_all", "fid_avg", "fid_parties", "kid", "precision",
        "recall")
for k in keys:
    values = [r[k] for r in runs]
    assert values[0] == values[1] == values[2], (k, values)
assert math.isfinite(runs[0]["kid"]) and runs[0]["fid_all"] > 0, runs[0]
print("1 rank x 2 threads == 2 ranks == 4 ranks:",
      {k: runs[0][k] for k in ("fid_all", "fid_avg", "kid", "precision", "recall")})
PY
  ;;
rounds)
  # A briefly trained generator beats its architecture freshly initialised (round 0).
  rm -rf "$work/run"
  mpi 2 "$fedgan" train --data "$common/train.h5" --out "$work/run" --rounds 4 --local-steps 25 \
    --batch-size 32 --g-width 16 --d-width 16 --latent-dim 32 --beta1 0.5 --lr-g 0.0005 \
    --lr-d 0.0005 --threads 1 >/dev/null 2>&1 || fail "train"
  ck="$work/run/checkpoints/latest.h5"
  mpi 2 "$fedgan" eval --checkpoint "$ck" "${data[@]}" --n 500 --json >"$work/last.json" 2>/dev/null
  mpi 2 "$fedgan" eval --checkpoint "$ck" --round0 "${data[@]}" --n 500 --json \
    >"$work/first.json" 2>/dev/null
  last="$(json_field "$work/last.json" fid_all)"; first="$(json_field "$work/first.json" fid_all)"
  echo "FID round 0: $first, round 4: $last (n=500)"
  "$python" -c "import sys; f,l=map(float,sys.argv[1:]); assert l < f, (f,l)" "$first" "$last" \
    || fail "training did not lower FID"
  # --eval-data: the run trains on one file and is evaluated against another's images.
  rm -rf "$work/other"
  mpi 2 "$fedgan" train --data "$common/train.h5" --eval-data "$common/test.h5" --init "$ck" \
    --out "$work/other" --rounds 1 --local-steps 2 --batch-size 32 --g-width 16 --d-width 16 \
    --latent-dim 32 --eval-every 1 --evaluator "$common/ev.h5" --eval-n 500 --threads 1 \
    >"$work/other.log" 2>&1 || { cat "$work/other.log"; fail "train with --eval-data"; }
  grep -q "real statistics of $common/test.h5" "$work/other.log" || fail "--eval-data not used"
  expect_fail "nothing.h5" mpi 2 "$fedgan" train --data "$common/train.h5" \
    --eval-data "$work/nothing.h5" --out "$work/other2" --rounds 1 --eval-every 1 \
    --evaluator "$common/ev.h5" --threads 1
  ;;
errors)
  expect_fail "FID is undefined .* 32 features" "$fedgan" eval --noise "${data[@]}" --n 20
  expect_fail "FID is undefined" mpi 2 "$fedgan" eval --noise "${data[@]}" --n 32
  expect_fail "exactly one of --checkpoint, --samples and --noise" "$fedgan" eval "${data[@]}"
  expect_fail "nothing.h5" "$fedgan" eval --noise --data "$common/train.h5" \
    --evaluator "$work/nothing.h5"
  expect_fail "train.h5: not a fedgan evaluator" "$fedgan" eval --noise \
    --data "$common/train.h5" --evaluator "$common/train.h5"
  "$python" - "$work" <<'PY'
import sys, h5py, numpy as np
w = sys.argv[1]
with h5py.File(w + "/rgb.h5", "w") as f:
    f["images"] = np.zeros((200, 3, 28, 28), np.uint8)
with h5py.File(w + "/unlabelled.h5", "w") as f:
    f["images"] = np.zeros((20, 1, 28, 28), np.uint8)
PY
  expect_fail "rgb.h5: images are 3x28x28 but the evaluator .*ev.h5 expects 1x28x28" \
    mpi 2 "$fedgan" eval --samples "$work/rgb.h5" "${data[@]}" --n 100
  expect_fail "rgb.h5: images are 3x28x28 but the evaluator" "$fedgan" eval --noise \
    --data "$work/rgb.h5" --evaluator "$common/ev.h5" --n 100
  expect_fail "unlabelled.h5: missing dataset /labels" "$fedgan" evaluator \
    --data "$work/unlabelled.h5" --out "$work/ev2.h5"
  [ ! -e "$work/ev2.h5" ] || fail "an evaluator was written for unlabelled data"
  expect_fail "ev.h5: exists already" "$fedgan" evaluator --data "$common/test.h5" \
    --out "$common/ev.h5"
  expect_fail "--augment: unknown augmentation 'rotate' in 'flip,rotate'" "$fedgan" evaluator \
    --data "$common/test.h5" --out "$work/ev3.h5" --augment flip,rotate
  # --augment comes from a config file too, and the evaluator file records it.
  printf '[evaluator]\naugment = "translate"\n' >"$work/aug.toml"
  "$fedgan" --config "$work/aug.toml" evaluator --data "$common/test.h5" --out "$work/ev3.h5" \
    --epochs 1 --width 2 --features 4 --force >/dev/null 2>&1 || fail "evaluator with --config"
  "$python" - "$work/ev3.h5" <<'PY' || fail "--augment from the config file did not arrive"
import sys, h5py
d = h5py.File(sys.argv[1], "r").attrs["description"]
d = d.decode() if isinstance(d, bytes) else d
assert "augment translate," in d, d
PY
  expect_fail "holds 3000 images, fewer than --n 5000" "$fedgan" eval \
    --samples "$common/test.h5" "${data[@]}" --n 5000
  # Precision/recall sizes are checked up front, with the same message on every rank (they used
  # to fail inside the metric and end in MPI_ABORT).
  expect_fail "--knn 500: precision/recall need more than k samples, but --n 300 generates 300" \
    mpi 2 "$fedgan" eval --noise "${data[@]}" --n 300 --knn 500
  expect_fail "--knn 3: precision/recall need more than k real samples, but --real-subset 2 keeps 2" \
    mpi 2 "$fedgan" eval --noise "${data[@]}" --n 300 --real-subset 2
  expect_fail "--eval-n 10: FID needs more samples than the evaluator's 32 features" \
    "$fedgan" train --data "$common/test.h5" --out "$work/evaln" --rounds 1 --eval-every 1 \
    --evaluator "$common/ev.h5" --eval-n 10 --threads 1
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
