#!/usr/bin/env bash
# End-to-end tests of `fedgan train` / `sample` on a small Fashion-MNIST subset.
# usage: train_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: resume | resume_keep | preempt | fault | pytorch | distill | refuse | config | arch | sample | nonfinite | ranks
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi() { "$mpiexec" --oversubscribe -n "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
python=/usr/bin/python3

# 2 classes of the test split (2000 images), 4 non-IID parties.
"$fedgan" prepare --split test --classes 0,1 --parties 4 --partition dirichlet --alpha 1 \
  --seed 1 --out "$work/data.h5" >/dev/null 2>&1 || fail "prepare"
small=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
       --batch-size 16 --server-optimizer fedavgm --threads 1)

# Compares two checkpoints' models bit for bit (and their rounds).
same_models() {
  "$python" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert a.attrs["round"] == b.attrs["round"], (a.attrs["round"], b.attrs["round"])
n = 0
for g in ("generator", "discriminator"):
    assert sorted(a[g]) == sorted(b[g])
    for k in a[g]:
        if not np.array_equal(a[g][k][()], b[g][k][()]):
            sys.exit(f"{g}/{k} differs: max |a-b| = {np.abs(a[g][k][()] - b[g][k][()]).max()}")
        n += 1
print(f"{n} tensors equal at round {a.attrs['round']}")
PY
}

expect_fail() {  # expect_fail REGEX command...
  local regex="$1"; shift
  set +e; out="$("$@" 2>&1)"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "expected failure of: $*"
  grep -Eq "$regex" <<<"$out" || { echo "$out"; fail "output lacks '$regex'"; }
  echo "ok: failed as expected ($regex)"
}

case "$case" in
resume)
  # 4 rounds straight == 2 rounds, then resumed to 4 (model, server momentum, RNG).
  mpi 2 "$fedgan" train "${small[@]}" --rounds 4 --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" --resume \
    2>&1 | grep -q "resuming after round 2" || fail "resume did not start after round 2"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  [ "$(wc -l <"$work/part/metrics.csv")" -eq 5 ] || fail "metrics.csv should hold 4 rounds"
  ;;
resume_keep)
  # Per-party Adam moments and local BN statistics survive a resume too (3 ranks: uneven split).
  keep=(--optimizer-state keep --local-bn --participation 0.75)
  mpi 3 "$fedgan" train "${small[@]}" "${keep[@]}" --rounds 4 --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1
  mpi 3 "$fedgan" train "${small[@]}" "${keep[@]}" --rounds 2 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1
  mpi 3 "$fedgan" train "${small[@]}" "${keep[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" \
    --resume >/dev/null 2>&1
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  ;;
preempt)
  # SIGUSR1 to a running 2-rank mpirun job: exit 3 within seconds, a readable checkpoint, and
  # `--resume auto` continues from it to the same model as an uninterrupted run.
  long=(--rounds 6 --checkpoint-every 100 --local-steps 30)
  # mpirun itself in the background (not a function), so $! is its pid: it forwards SIGUSR1.
  "$mpiexec" --oversubscribe -n 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/run" \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "round 2/6" "$work/log" 2>/dev/null && break; sleep 0.1; done
  grep -q "round 2/6" "$work/log" || fail "the run did not reach round 2"
  start=$(date +%s%N)
  kill -USR1 "$pid"
  set +e; wait "$pid"; rc=$?; set -e
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "exit $rc ${ms} ms after SIGUSR1"
  [ "$rc" -eq 3 ] || { cat "$work/log"; fail "expected exit code 3, got $rc"; }
  [ "$ms" -lt 15000 ] || fail "took ${ms} ms to stop"
  "$python" -c "import h5py,sys; r=h5py.File(sys.argv[1]).attrs['round']; assert r>=2, r; print('checkpoint round', r)" \
    "$work/run/checkpoints/latest.h5"
  mpi 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/run" --resume auto 2>&1 \
    | grep -q "resuming after round" || fail "--resume auto did not resume"
  mpi 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/straight" --resume auto >/dev/null 2>&1
  same_models "$work/straight/checkpoints/latest.h5" "$work/run/checkpoints/latest.h5"
  ;;
fault)
  # SIGKILL of one rank ends the job; latest.h5 stays readable; --resume loses at most the
  # rounds since the last checkpoint and ends at the same model as an uninterrupted run.
  long=(--rounds 6 --checkpoint-every 1 --local-steps 30)
  "$mpiexec" --oversubscribe -n 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/run" \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "round 3/6" "$work/log" 2>/dev/null && break; sleep 0.1; done
  victim=$(pgrep -P "$pid" -f "fedgan" | tail -n 1)
  [ -n "$victim" ] || fail "no rank process found"
  kill -KILL "$victim"
  set +e; wait "$pid"; rc=$?; set -e
  [ "$rc" -ne 0 ] || fail "the job should fail when a rank is killed"
  "$python" -c "import h5py,sys; r=h5py.File(sys.argv[1]).attrs['round']; assert r>=3, r; print('latest.h5 round', r)" \
    "$work/run/checkpoints/latest.h5" || fail "latest.h5 unreadable after SIGKILL"
  mpi 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/run" --resume >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/straight" >/dev/null 2>&1
  same_models "$work/straight/checkpoints/latest.h5" "$work/run/checkpoints/latest.h5"
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
refuse)
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  expect_fail "holds another run" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run"
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" --force >/dev/null 2>&1
  expect_fail "latest.h5.*missing" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/new" --resume
  ;;
config)
  cat >"$work/run.toml" <<TOML
[train]
data = "$work/data.h5"
out = "$work/run"
rounds = 1
g-width = 6
d-width = 8
latent-dim = 16
local-steps = 1
TOML
  mpi 2 "$fedgan" --config "$work/run.toml" train --threads 1 >/dev/null 2>&1 || fail "config run"
  grep -q '^g-width=6' "$work/run/config.toml" || fail "config value did not arrive"
  "$python" -c "import h5py,sys; a=h5py.File(sys.argv[1])['/'].attrs['architecture']; \
    a=a.decode() if isinstance(a,bytes) else a; assert 'gw=6' in a, a" \
    "$work/run/checkpoints/latest.h5" || fail "checkpoint does not have g-width 6"
  # Flags override the file; the run's own config.toml runs again.
  "$fedgan" --config "$work/run/config.toml" train --rounds 2 --resume --threads 1 >/dev/null 2>&1 \
    || fail "config.toml of a run is not reusable"
  echo "bogus-key = 1" >>"$work/run.toml"
  expect_fail "bogus-key" "$fedgan" --config "$work/run.toml" train --force
  ;;
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
nonfinite)
  expect_fail "party 3 produced a non-finite update in round 2" mpi 2 "$fedgan" train "${small[@]}" \
    --rounds 3 --out "$work/stop" --debug-nan-party 3 --debug-nan-round 2
  [ ! -e "$work/stop/checkpoints/round_0002.h5" ] || fail "a checkpoint was written after NaN"
  mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --out "$work/skip" --skip-nonfinite \
    --debug-nan-party 3 --debug-nan-round 2 2>&1 | grep -q "(1 skipped)" || fail "no skip reported"
  ;;
ranks)
  expect_fail "fewer than the 4 ranks|need" mpi 4 "$fedgan" train "${small[@]}" --rounds 1 \
    --parties-per-rank 2 --out "$work/run"
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
