# Shared by the CLI test scripts (train_*_cli.sh through train_common.sh, secagg_cli.sh,
# privacy_cli.sh, eval_cli.sh):
# the MPI environment, fail/expect_fail, the 4-party test dataset and a checkpoint comparison.
# Sourced after the script has set fedgan, mpiexec and work.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi() { "$mpiexec" --oversubscribe -n "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
python="${FEDGAN_PYTHON:-/usr/bin/python3}"  # Debian's (h5py, numpy, torch); FEDGAN_PYTHON overrides

expect_fail() {  # expect_fail REGEX command... (leaves the output in $out)
  local regex="$1"; shift
  set +e; out="$("$@" 2>&1)"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "expected failure of: $*"
  grep -Eq -- "$regex" <<<"$out" || { echo "$out"; fail "output lacks '$regex'"; }
  # A clean message: no LibTorch backtrace, no abort of the job, no 309-digit range.
  ! grep -Eq "Exception raised from|frame #|MPI_ABORT|ORTE_ERROR_LOG|179769313" <<<"$out" \
    || { echo "$out"; fail "unclean error output"; }
  echo "ok: failed as expected ($regex)"
}

# prepare_four_parties FILE: 2 classes of the test split (2000 images), 4 non-IID parties with
# unequal n_k (so FedAvg's weights matter).
prepare_four_parties() {
  "$fedgan" prepare --split test --classes 0,1 --parties 4 --partition dirichlet --alpha 1 \
    --seed 1 --out "$1" >/dev/null 2>&1 || fail "prepare $1"
}

# compare A.h5 B.h5 [TOL]: the checkpoints' rounds are equal and every model tensor is equal
# bit for bit (TOL 0, the default) or within TOL; prints the largest gap.
compare() {
  "$python" - "$1" "$2" "${3:-0}" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
tol = float(sys.argv[3])
assert a.attrs["round"] == b.attrs["round"], (a.attrs["round"], b.attrs["round"])
gap, n = 0.0, 0
for g in ("generator", "discriminator"):
    assert sorted(a[g]) == sorted(b[g])
    for k in a[g]:
        x, y = a[g][k][()], b[g][k][()]
        gap = max(gap, float(np.abs(x.astype(np.float64) - y).max()))
        if tol == 0 and not np.array_equal(x, y):
            sys.exit(f"{g}/{k} differs by {gap}")
        n += 1
if gap > tol:
    sys.exit(f"largest difference {gap} > {tol}")
print(f"{n} tensors, largest difference {gap} (tolerance {tol}) at round {a.attrs['round']}")
PY
}
same_models() { compare "$1" "$2" 0; }
