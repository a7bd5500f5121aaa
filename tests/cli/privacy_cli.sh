#!/usr/bin/env bash
# End-to-end tests of `fedgan privacy` and of `fedgan train` with client-level DP.
# usage: privacy_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: command | resume | budget | badflags | scale
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi() { "$mpiexec" --oversubscribe -n "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
python=/usr/bin/python3

expect_fail() {  # expect_fail REGEX command... (leaves the output in $out)
  local regex="$1"; shift
  set +e; out="$("$@" 2>&1)"; rc=$?; set -e
  [ $rc -ne 0 ] || fail "expected failure of: $*"
  grep -Eq -- "$regex" <<<"$out" || { echo "$out"; fail "output lacks '$regex'"; }
  ! grep -Eq "Exception raised from|frame #|MPI_ABORT|ORTE_ERROR_LOG|179769313" <<<"$out" \
    || { echo "$out"; fail "unclean error output"; }
  echo "ok: failed as expected ($regex)"
}

# json FIELD: one field of the JSON object on stdin.
json() { "$python" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

case "$case" in
command)
  # The issue's example; epsilon from scripts/rdp_reference.py (mpmath): 1.7252908180449548.
  j="$(mpi 2 "$fedgan" privacy --q 0.01 --noise-multiplier 1.1 --rounds 1000 --delta 1e-5 --json)"
  [ "$(wc -l <<<"$j")" -eq 1 ] || fail "one JSON line expected (rank 0 only): $j"
  "$python" - "$j" <<'PY' || fail "epsilon"
import json, sys
j = json.loads(sys.argv[1])
assert abs(j["epsilon"] / 1.7252908180449548 - 1) < 1e-6, j
assert j["order"] == 9 and abs(j["epsilon_classic"] / 2.0867961135743039 - 1) < 1e-6, j
PY
  "$fedgan" privacy --q 0.01 --noise-multiplier 1.1 --rounds 1000 --delta 1e-5 \
    | grep -q "DP at the party level for 1000 rounds" || fail "text output"
  # Bisection: the z found reaches the target, and 0.1% less noise does not.
  z="$("$fedgan" privacy --q 0.01 --rounds 1000 --delta 1e-5 --target-epsilon 3 --json | json noise_multiplier)"
  e="$("$fedgan" privacy --q 0.01 --rounds 1000 --delta 1e-5 --noise-multiplier "$z" --json | json epsilon)"
  z2="$("$python" -c "print($z * 0.999)")"
  e2="$("$fedgan" privacy --q 0.01 --rounds 1000 --delta 1e-5 --noise-multiplier "$z2" --json | json epsilon)"
  "$python" -c "assert $e <= 3 < $e2, ($e, $e2)" || fail "bisection: z=$z eps=$e, 0.999z eps=$e2"
  echo "ok: target 3 -> z = $z (eps $e; 0.999 z gives $e2)"
  expect_fail "--noise-multiplier z .*or --target-epsilon" "$fedgan" privacy --q 0.1 --rounds 10 --delta 1e-5
  expect_fail "excludes" "$fedgan" privacy --q 0.1 --rounds 10 --delta 1e-5 --noise-multiplier 1 --target-epsilon 2
  expect_fail "--delta.*outside \(0, 1\)" "$fedgan" privacy --q 0.1 --rounds 10 --delta 1 --noise-multiplier 1
  expect_fail "--q.*outside \(0, 1\]" "$fedgan" privacy --q 0 --rounds 10 --delta 1e-5 --noise-multiplier 1
  expect_fail "--noise-multiplier.*not >= 0|--noise-multiplier.*expected" "$fedgan" privacy --q 0.1 --rounds 10 --delta 1e-5 --noise-multiplier -1
  expect_fail "--target-epsilon: .*not reached" mpi 2 "$fedgan" privacy --q 1 --rounds 100000000 --delta 1e-9 --target-epsilon 1e-9
  ;;
*)
  fail "unknown case $case"
  ;;
esac
