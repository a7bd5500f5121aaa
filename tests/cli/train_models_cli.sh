#!/usr/bin/env bash
# `fedgan train` / `sample` / `distill` end to end on a small Fashion-MNIST subset: models.
# Architecture checks on resume, sampling, warm starts from PyTorch files, distillation, the
# limited-data options (EMA, ADA, R1, spectral norm, DiffAugment, schedules).
# usage: train_models_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: arch | sample | pytorch | distill | small_data
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

case "$case" in
arch)
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  expect_fail "architecture" mpi 2 "$fedgan" train "${small[@]}" --g-width 12 --rounds 2 \
    --out "$work/run" --resume
  printf 'not a checkpoint' >"$work/run/checkpoints/latest.h5"
  expect_fail "not an HDF5 file" "$fedgan" train "${small[@]}" --rounds 2 --out "$work/run" --resume
  ;;
sample)
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" --conditional >/dev/null 2>&1
  "$fedgan" sample --checkpoint "$work/run/checkpoints/latest.h5" --n 10 --out "$work/s.h5" >/dev/null 2>&1
  "$fedgan" sample --checkpoint "$work/run/checkpoints/latest.h5" --n 16 --out "$work/s.png" >/dev/null 2>&1
  [ -s "$work/s.png" ] || fail "no PNG"
  "$python" -c "import h5py,sys; f=h5py.File(sys.argv[1]); assert f['images'].shape==(10,1,28,28) \
    and f['images'].dtype=='uint8' and f['labels'].shape==(10,), f['images']" "$work/s.h5"
  expect_fail "exists" "$fedgan" sample --checkpoint "$work/run/checkpoints/latest.h5" --out "$work/s.png"
  expect_fail "missing|no such file" "$fedgan" sample --checkpoint "$work/none.h5" --out "$work/t.png"
  ;;
pytorch)
  # A PyTorch state dict (plain dict) with other prefixes warm-starts a run exactly;
  # an OrderedDict is refused with a message that says how to save it.
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: Debian's python3-torch is not installed"; exit 77; }
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/src" >/dev/null 2>&1
  "$python" - "$work/src/checkpoints/latest.h5" "$work" <<'PY'
import sys, collections, h5py, torch
f = h5py.File(sys.argv[1], "r")
sd = {}
for group, prefix in (("generator", "gen."), ("discriminator", "disc.")):
    for k in f[group]:
        sd[prefix + k] = torch.from_numpy(f[group][k][()])
torch.save(dict(sd), sys.argv[2] + "/plain.pt")
torch.save(collections.OrderedDict(sd), sys.argv[2] + "/ordered.pt")
PY
  out=$("$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm" --init "$work/plain.pt" \
    --init-map gen.=generator.,disc.=discriminator. --init-strict 2>&1) || { echo "$out"; fail "warm start from .pt"; }
  grep -q "generator: transferred .* values, 100%)" <<<"$out" || { echo "$out"; fail "not everything transferred"; }
  expect_fail "OrderedDict" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm2" \
    --init "$work/ordered.pt" --init-map gen.=generator.,disc.=discriminator.
  expect_fail "neither 'generator.' nor" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm3" \
    --init "$work/plain.pt"
  expect_fail "no such file" mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm4" \
    --init "$work/missing.h5"
  head -c 300 "$work/src/checkpoints/latest.h5" >"$work/truncated.h5"
  expect_fail "truncated|not an HDF5|not a readable" mpi 2 "$fedgan" train "${small[@]}" --rounds 1 \
    --out "$work/warm5" --init "$work/truncated.h5"
  expect_fail "has 3 blocks" mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm6" \
    --init "$work/src/checkpoints/latest.h5" --freeze-g 4
  expect_fail "matches no parameter" mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/warm7" \
    --init "$work/src/checkpoints/latest.h5" --train-only "nothing.*"
  ;;
distill)
  # A smaller student learns the teacher: fewer parameters, lower held-out pixel error than at
  # its start, and a checkpoint that `sample` reads.
  "$fedgan" train "${small[@]}" --g-width 16 --rounds 3 --local-steps 10 --out "$work/teacher" >/dev/null 2>&1
  out=$("$fedgan" distill --teacher "$work/teacher/checkpoints/latest.h5" --g-width 4 --steps 150 \
    --out "$work/student.h5" 2>&1) || { echo "$out"; fail "distill"; }
  echo "$out"
  DISTILL_OUT="$out" "$python" - <<'PY' || fail "distillation did not reduce the error or the size"
import os, re
text = os.environ["DISTILL_OUT"]
t, s = map(int, re.search(r"generator (\d+) -> (\d+) parameters", text).groups())
after, before = map(float, re.search(r"pixel MSE ([0-9.e-]+) \(before ([0-9.e-]+)\)", text).groups())
assert s < t / 3, (t, s)
assert after < 0.8 * before, (after, before)
PY
  "$fedgan" sample --checkpoint "$work/student.h5" --n 4 --out "$work/s.png" >/dev/null 2>&1 || fail "sample from student"
  expect_fail "exists" "$fedgan" distill --teacher "$work/teacher/checkpoints/latest.h5" --out "$work/student.h5"
  ;;
small_data)
  # The limited-data options together, at 2 ranks: 4 rounds straight == stopped in round 3 (the
  # preemption checkpoint of round 2) and resumed to 4. Checks the generator EMA (/generator is
  # the EMA, the trained G is /state/server/g_raw), ADA's p, lazy R1, the spectral D's u
  # vectors, DiffAugment's draws and the cosine schedule's round.
  q=(--diffaug translation,cutout,color --ada-target 0.6 --ada-kimg 0.1 --r1-gamma 1
     --r1-every 2 --d-norm spectral --lr-schedule cosine --g-ema 0.9 --rounds 4)
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1 \
    || fail "small-data run"
  set +e
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/part" \
    --debug-stop-round 3 >/dev/null 2>&1
  rc=$?; set -e
  [ $rc -eq 3 ] || fail "the stopped run exited $rc, not 3"
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/part" --resume \
    >/dev/null 2>&1 || fail "resume"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  "$python" - "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5" \
    "$work/full/metrics.csv" <<'PY' || fail "EMA / ADA state"
import csv, sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for k in ("state/server/g_raw", "state/server/ada_p"):
    assert np.array_equal(a[k][()], b[k][()]), k + " differs after resume"
assert "discriminator/head.u" in a and "discriminator/blocks.1.conv.u" in a, "no u vectors"
ema = np.concatenate([a["generator"][k][()].ravel() for k in a["generator"]])
raw = a["state/server/g_raw"][()]
assert raw.size >= ema.size and not np.allclose(np.sort(raw), np.sort(ema)), "/generator is not an EMA"
p = float(a["state/server/ada_p"][0])
assert 0 < p <= 1, p
rows = list(csv.DictReader(open(sys.argv[3])))
assert all(r["ada_p"] for r in rows) and abs(float(rows[-1]["ada_p"]) - p) < 1e-5, rows[-1]
assert float(rows[0]["lr_factor"]) == 1.0 and float(rows[-1]["lr_factor"]) < 0.2, rows[-1]
print("EMA, g_raw, ada_p", p, "and the schedule as expected")
PY
  # The EMA checkpoint samples like any other.
  "$fedgan" sample --checkpoint "$work/full/checkpoints/latest.h5" --n 16 --out "$work/s.png" \
    --threads 1 >/dev/null 2>&1 || fail "sample from an EMA checkpoint"
  # Bad values name the option and what it accepts; ADA without augmentation is an agreed error.
  expect_fail "--diffaug: .*unknown augmentation 'flip'.*translation, cutout, color" \
    "$fedgan" train "${small[@]}" --out "$work/bad" --diffaug translation,flip
  expect_fail "--g-ema: 1 is outside \[0, 1\)" "$fedgan" train "${small[@]}" --out "$work/bad" --g-ema 1
  expect_fail "--lr-schedule: .*step" "$fedgan" train "${small[@]}" --out "$work/bad" --lr-schedule step
  expect_fail "--ada-target adapts the probability of the --diffaug augmentations" \
    mpi 2 "$fedgan" train "${small[@]}" --out "$work/bad" --ada-target 0.6
  # Every new option comes from a config file too.
  printf '[train]\ndiffaug = "cutout"\ng-ema = 0.5\nr1-gamma = 2\nlr-schedule = "linear"\nd-norm = "spectral"\n' \
    >"$work/q.toml"
  "$fedgan" --config "$work/q.toml" train "${small[@]}" --rounds 1 --out "$work/cfg" >/dev/null 2>&1 \
    || fail "config run"
  for kv in 'diffaug="cutout"' 'g-ema=0.5' 'r1-gamma=2' 'lr-schedule="linear"' 'd-norm="spectral"'; do
    grep -qx "$kv" "$work/cfg/config.toml" || fail "config value $kv did not arrive"
  done
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
