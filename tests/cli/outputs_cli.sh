#!/usr/bin/env bash
# End-to-end tests of what `fedgan train` writes when outputs are switched off (issue 20).
# usage: outputs_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: sample_off
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

prepare_four_parties "$work/data.h5"
small=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
       --batch-size 16 --threads 1)
pngs() { find "$1" -name '*.png' 2>/dev/null | wc -l; }

case "$case" in
sample_off)
  # --sample-every 0: no sample grid at all, also not at the last round (as --eval-every 0);
  # checkpoints and metrics as usual.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 3 --sample-every 0 --checkpoint-every 1 \
    --out "$work/off" >"$work/off.log" 2>&1 || { cat "$work/off.log"; fail "--sample-every 0 run"; }
  [ "$(pngs "$work/off")" -eq 0 ] || fail "a grid was written with --sample-every 0"
  [ -f "$work/off/checkpoints/round_0003.h5" ] || fail "no checkpoint of round 3"
  [ "$(wc -l <"$work/off/metrics.csv")" -eq 4 ] || fail "metrics.csv should hold 3 rounds"
  grep -q "samples none (--sample-every 0)" "$work/off.log" || fail "the last line names a grid"
  grep -q '^sample-every=0$' "$work/off/config.toml" || fail "config.toml lacks sample-every=0"
  # The run's config.toml runs again as it is: still no grid, and it says so again.
  "$fedgan" --config "$work/off/config.toml" train --out "$work/again" --rounds 2 \
    >"$work/again.log" 2>&1 || { cat "$work/again.log"; fail "config.toml with sample-every=0"; }
  [ "$(pngs "$work/again")" -eq 0 ] || fail "a grid was written from config.toml"
  grep -q '^sample-every=0$' "$work/again/config.toml" || fail "sample-every=0 did not round-trip"
  # Other values as before: every K rounds and the last.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 3 --sample-every 2 --out "$work/two" \
    >/dev/null 2>&1 || fail "--sample-every 2 run"
  [ -f "$work/two/samples/round_0002.png" ] && [ -f "$work/two/samples/round_0003.png" ] \
    && [ "$(pngs "$work/two")" -eq 2 ] || fail "--sample-every 2 should write rounds 2 and 3"
  expect_fail "--sample-every: -1 is negative \(expected a number >= 0\)" \
    "$fedgan" train "${small[@]}" --out "$work/bad" --sample-every -1
  ;;
*)
  fail "unknown case $case"
  ;;
esac
echo "outputs_cli $case: ok"
