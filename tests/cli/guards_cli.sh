#!/usr/bin/env bash
# End-to-end tests of the round's guards (issue 20) on 8 Dirichlet parties of the test split's
# classes 5-9, 2 ranks.
# usage: guards_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: trim
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 8 --partition dirichlet --alpha 0.5 \
  --seed 1 --out "$work/d8.h5" >/dev/null 2>&1 || fail "prepare"
small=(--data "$work/d8.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 3
       --batch-size 16 --threads 1)

# expect_exit CODE REGEX command...: like expect_fail, and the exit code is CODE.
expect_exit() {
  local code="$1"; shift
  expect_fail "$@"
  [ "$rc" -eq "$code" ] || { echo "$out"; fail "exit code $rc, not $code"; }
}

case "$case" in
trim)
  # The default --trim-beta 0.1 trims floor(0.8) = 0 of 8 parties: refused on every rank, with
  # the numbers and what to do (before, one x100 party made the model unusable in round 1).
  expect_exit 1 "--trim-beta 0.1 would trim floor\(beta\*m\) = floor\(0.1\*8\) = 0 updates at each end, m = 8 parties" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/default" \
    --aggregator trimmed-mean --attack scale:100 --attackers 0
  grep -q "1/m = 1/8, i.e. --trim-beta 0.125" <<<"$out" || fail "no smallest beta in: $out"
  [ ! -e "$work/default/metrics.csv" ] || fail "a refused run wrote metrics"
  # m counts the parties drawn per round: 4 of 8 at --participation 0.5.
  expect_exit 1 "floor\(0.125\*4\) = 0 updates at each end, m = 4 parties taking part in a round \(of 8, --participation 0.5\)" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/half" \
    --aggregator trimmed-mean --trim-beta 0.125 --participation 0.5
  # One per side of 8: the x100 party is trimmed and the model stays usable (grid and checkpoint).
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/one" --aggregator trimmed-mean \
    --trim-beta 0.125 --attack scale:100 --attackers 0 >"$work/one.log" 2>&1 \
    || { cat "$work/one.log"; fail "trimmed mean with beta 0.125"; }
  [ -f "$work/one/samples/round_0001.png" ] && [ -f "$work/one/checkpoints/latest.h5" ] \
    || fail "no grid or checkpoint"
  ! grep -q "unweighted mean" "$work/one.log" || fail "a warning with nothing to warn about"
  # A skipped party leaves 7 updates: floor(0.875) = 0, warned on rank 0 in every such round.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --out "$work/skip" --aggregator trimmed-mean \
    --trim-beta 0.125 --attack nan --attackers 0 --skip-nonfinite >"$work/skip.log" 2>&1 \
    || { cat "$work/skip.log"; fail "skip run"; }
  for r in 1 2; do
    n=$(grep -c "round $r: --aggregator trimmed-mean --trim-beta 0.125 trimmed floor(beta\*m) = floor(0.125\*7) = 0 updates at each end: only m = 7 of the 8 parties drawn" "$work/skip.log" || true)
    [ "$n" -eq 1 ] || { cat "$work/skip.log"; fail "round $r: $n warnings, not 1"; }
  done
  grep -q "1/m = 1/7, i.e. --trim-beta 0.1429" "$work/skip.log" || fail "no smallest beta in the warning"
  ;;
*)
  fail "unknown case $case"
  ;;
esac
echo "guards_cli $case: ok"
