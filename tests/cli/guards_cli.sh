#!/usr/bin/env bash
# End-to-end tests of the round's guards (issue 20) on 8 Dirichlet parties of the test split's
# classes 5-9, 2 ranks.
# usage: guards_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: trim | model
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
model)
  # --attack scale:1e30 under FedAvg: the global model's values stay finite (about 1e28) but
  # every image and logit it makes is NaN/inf. The round stops every rank right after the server
  # step, naming the round and the attack, before anything of the round is written. Round 1 is
  # clean and checkpointed; round 2 (resumed, attacked) must leave it as it was.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1 || fail "round 1"
  expect_exit 1 "round 2: the global model is unusable after the server step: its values are finite .* but G's images of 8 fixed latents hold" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 3 --checkpoint-every 1 --sample-every 1 \
    --out "$work/run" --resume --attack scale:1e30 --attackers 0
  for want in "The model of round 1 was put back and nothing of round 2 is written" \
      "--attack scale:1e\+30 by parties 0 is active" "largest \|mean update\| of [0-9.e+]+ in G" \
      "--server-optimizer fedavg, --server-lr 1" "--lr-g 0.0002, --lr-d 0.0002"; do
    grep -Eq -- "$want" <<<"$out" || { echo "$out"; fail "the message lacks '$want'"; }
  done
  [ "$(grep -c "the global model is unusable" <<<"$out")" -eq 1 ] || fail "not one message"
  [ ! -e "$work/run/checkpoints/round_0002.h5" ] || fail "a checkpoint of round 2 was written"
  [ ! -e "$work/run/samples/round_0002.png" ] || fail "a grid of round 2 was written"
  [ "$(wc -l <"$work/run/metrics.csv")" -eq 2 ] || fail "metrics.csv should hold round 1 only"
  # latest.h5 still holds round 1, finite.
  "$python" - "$work/run/checkpoints/latest.h5" <<'PY' || fail "latest.h5"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["round"] == 1, f.attrs["round"]
for g in ("generator", "discriminator"):
    for k in f[g]:
        x = f[g][k][()]
        assert np.isfinite(x).all() and np.abs(x).max() < 100, (g, k)
print("latest.h5: round 1, finite")
PY
  # From the start: no file of round 1 at all.
  expect_exit 1 "round 1: the global model is unusable after the server step" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --out "$work/fresh" --attack scale:1e30 --attackers 0
  [ -z "$(find "$work/fresh/checkpoints" "$work/fresh/samples" -type f 2>/dev/null)" ] \
    || fail "files were written for round 1"
  [ ! -s "$work/fresh/metrics.csv" ] || [ "$(wc -l <"$work/fresh/metrics.csv")" -le 1 ] \
    || fail "a metrics row was written"
  ;;
*)
  fail "unknown case $case"
  ;;
esac
echo "guards_cli $case: ok"
