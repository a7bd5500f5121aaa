#!/usr/bin/env bash
# GPU paths of `fedgan train`. Without a GPU: the refusals (--device cuda, --comm nccl,
# --precision bf16 say what is missing) and every GPU case skips visibly (exit code 77).
# usage: gpu_cli.sh FEDGAN MPIEXEC WORKDIR CASE      CASE: refuse | train | ranks
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_fail() {  # expect_fail REGEX command...
  local regex="$1"; shift
  set +e; out="$("$@" 2>&1)"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "expected failure of: $*"
  grep -Eq -- "$regex" <<<"$out" || { echo "$out"; fail "output lacks '$regex'"; }
  echo "ok: failed as expected ($regex)"
}
gpus=$("$fedgan" info 2>&1 | sed -n 's/.*visible GPUs \([0-9]*\).*/\1/p' | head -1)
echo "visible GPUs: ${gpus:-?}"
"$fedgan" prepare --split test --classes 0,1 --parties 2 --partition iid --seed 1 \
  --out "$work/data.h5" >/dev/null 2>&1 || fail "prepare"
small=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 4
       --batch-size 16 --rounds 3 --threads 1 --seed 5)

case "$case" in
refuse)
  if [ "${gpus:-0}" -eq 0 ]; then
    expect_fail "no CUDA device is visible" "$fedgan" train "${small[@]}" --device cuda --out "$work/a"
    expect_fail "needs a CUDA device" "$fedgan" train "${small[@]}" --precision bf16 --out "$work/b"
  else
    # Two ranks on one GPU: NCCL refuses that, so fedgan says so before NCCL is asked.
    expect_fail "NCCL refuses two ranks on one GPU" "$mpiexec" --oversubscribe -n 2 "$fedgan" train \
      "${small[@]}" --device cuda --comm nccl --out "$work/c"
  fi
  expect_fail "--comm nccl needs --device cuda" "$fedgan" train "${small[@]}" --device cpu --comm nccl --out "$work/d"
  expect_fail "^--device: tpu not in \{auto,cpu,cuda\}$" "$fedgan" train "${small[@]}" --device tpu \
    --out "$work/e"
  ;;
train|ranks)
  [ "${gpus:-0}" -gt 0 ] || { echo "SKIP: no GPU visible"; exit 77; }
  if [ "$case" = train ]; then
    "$fedgan" train "${small[@]}" --device cuda --out "$work/gpu" >"$work/gpu.log" 2>&1 || { cat "$work/gpu.log"; fail "GPU run"; }
    "$fedgan" train "${small[@]}" --device cpu --out "$work/cpu" >"$work/cpu.log" 2>&1 || fail "CPU run"
    grep -q "devices: rank 0: cuda" "$work/gpu.log" || fail "the GPU run did not use the GPU"
    a="$work/gpu/metrics.csv"; b="$work/cpu/metrics.csv"; tol=0.25
  else
    "$mpiexec" --oversubscribe -n 2 "$fedgan" train "${small[@]}" --device cuda --comm mpi \
      --out "$work/mpi" >"$work/mpi.log" 2>&1 || { cat "$work/mpi.log"; fail "2 ranks over MPI"; }
    "$fedgan" train "${small[@]}" --device cuda --comm nccl --out "$work/nccl" >"$work/nccl.log" 2>&1 \
      || { cat "$work/nccl.log"; fail "1 rank over NCCL"; }
    grep -q "summed by NCCL" "$work/nccl.log" || fail "NCCL was not used"
    a="$work/mpi/metrics.csv"; b="$work/nccl/metrics.csv"; tol=0.02
  fi
  # Same seeds, same initial weights, same batches: the curves agree closely but not exactly
  # (GPU kernels round differently and 2 ranks sum in another order).
  py=/usr/bin/python3; [ -x "$py" ] || py=python3  # any python3: csv only
  "$py" - "$a" "$b" "$tol" <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
# GPU vs CPU: the CUDA generator draws other latent vectors than the CPU one, so only the
# trend agrees; two GPU runs draw the same ones and differ only by rounding.
tol = float(sys.argv[3])
assert len(a) == len(b) == 3, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("d_loss", "g_loss"):
        u, v = float(x[k]), float(y[k])
        print(f"round {x['round']} {k}: {u:.5f} vs {v:.5f}")
        assert abs(u - v) <= tol * max(1.0, abs(v)), f"{k} differs by more than {tol:.0%}"
PY
  ;;
*) fail "unknown case $case" ;;
esac
