#!/usr/bin/env bash
# End-to-end tests of `fedgan privacy` and of `fedgan train` with client-level DP.
# usage: privacy_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: command | resume | budget | badflags | scale
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# json FIELD: one field of the JSON object on stdin.
json() { "$python" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# A small DP run: 2 classes of the test split, 4 parties, q = 0.5 (delta default 1/40).
setup_small() {
  prepare_four_parties "$work/data.h5"
  small=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
         --batch-size 16 --threads 1 --participation 0.5 --dp-clip 0.5 --dp-noise-multiplier 1)
}

# Compares two checkpoints' models and DP accounts bit for bit.
same_checkpoints() {
  "$python" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert a.attrs["round"] == b.attrs["round"], (a.attrs["round"], b.attrs["round"])
for g in ("generator", "discriminator", "state/privacy"):
    assert sorted(a[g]) == sorted(b[g]), g
    for k in a[g]:
        if not np.array_equal(a[g][k][()], b[g][k][()]):
            sys.exit(f"{g}/{k} differs")
print(f"models and DP account equal at round {a.attrs['round']}")
PY
}

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
resume)
  # 4 rounds straight == 2 rounds + resume to 4: model, RDP vector, adaptive clip, metrics.
  setup_small
  dp=("${small[@]}" --dp-clip-quantile 0.5 --dp-clip-count-stddev 1 --checkpoint-every 2)
  mpi 2 "$fedgan" train "${dp[@]}" --rounds 4 --out "$work/full" >/dev/null 2>&1 || fail "full run"
  mpi 2 "$fedgan" train "${dp[@]}" --rounds 2 --out "$work/part" >/dev/null 2>&1 || fail "part run"
  mpi 2 "$fedgan" train "${dp[@]}" --rounds 4 --out "$work/part" --resume >"$work/log" 2>&1 \
    || { cat "$work/log"; fail "resume"; }
  grep -q "resuming after round 2" "$work/log" || fail "resume did not start after round 2"
  same_checkpoints "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  # The epsilon and dp_clip columns, found by name (other options add columns after them).
  col_of() { head -1 "$work/full/metrics.csv" | tr , '\n' | grep -nx "$1" | cut -d: -f1; }
  e_col=$(col_of epsilon); c_col=$(col_of dp_clip)
  [ -n "$e_col" ] && [ -n "$c_col" ] && [ "$c_col" -eq $((e_col + 1)) ] || fail "metrics.csv header"
  cols() { cut -d, -f1,"$e_col","$c_col" "$1"; }
  [ "$(cols "$work/full/metrics.csv")" = "$(cols "$work/part/metrics.csv")" ] \
    || { cols "$work/full/metrics.csv"; cols "$work/part/metrics.csv"; fail "epsilon/dp_clip columns differ"; }
  # The clip moved (adaptive) and epsilon grows every round.
  "$python" - "$work/full/metrics.csv" <<'PY' || fail "metrics"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
eps = [float(r["epsilon"]) for r in rows]
clip = [float(r["dp_clip"]) for r in rows]
assert all(a < b for a, b in zip(eps, eps[1:])), eps
assert len(set(clip)) > 1, clip
print("epsilon", eps, "clip", clip)
PY
  # The guarantee line at the end names the rounds and the epsilon of the last metrics row.
  "$python" - "$work/log" "$work/part/metrics.csv" <<'PY' || fail "final guarantee line"
import re, sys
lines = [l for l in open(sys.argv[1]) if "DP: (" in l]
m = re.search(r"DP: \(([0-9.]+), 0.025\)-DP at the party level for 4 rounds", lines[-1])
assert m, lines[-1]
last = float(open(sys.argv[2]).read().strip().splitlines()[-1].split(",")[20])
assert abs(float(m.group(1)) / last - 1) < 1e-3, (m.group(1), last)
PY
  # A DP run does not resume without DP.
  expect_fail "dp-clip" mpi 2 "$fedgan" train --data "$work/data.h5" --g-width 8 --d-width 8 \
    --latent-dim 16 --local-steps 2 --batch-size 16 --threads 1 --participation 0.5 \
    --rounds 6 --out "$work/part" --resume
  ;;
budget)
  # The budget lies between the epsilon of 2 and of 3 rounds: the run stops after round 2,
  # with a checkpoint of round 2 (not a checkpoint round here), and exit code 0.
  setup_small
  e() { "$fedgan" privacy --q 0.5 --noise-multiplier 1 --delta 0.025 --rounds "$1" --json | json epsilon; }
  budget="$("$python" -c "print(($(e 2) + $(e 3)) / 2)")"
  mpi 2 "$fedgan" train "${small[@]}" --rounds 6 --checkpoint-every 5 --epsilon-budget "$budget" \
    --out "$work/run" >"$work/log" 2>&1 || { cat "$work/log"; fail "budget run"; }
  grep -q "round 3 would take epsilon" "$work/log" || { cat "$work/log"; fail "no budget stop"; }
  [ "$(wc -l <"$work/run/metrics.csv")" -eq 3 ] || fail "metrics.csv should hold 2 rounds"
  "$python" -c "import h5py; assert h5py.File('$work/run/checkpoints/latest.h5')['/'].attrs['round'] == 2" \
    || fail "latest.h5 is not round 2"
  [ -f "$work/run/checkpoints/round_0002.h5" ] || fail "round_0002.h5 missing"
  # Resuming with the same budget: already spent, a clear error on every rank.
  expect_fail "epsilon-budget .*already spent.*after round 2" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 6 --checkpoint-every 5 --epsilon-budget "$budget" \
    --out "$work/run" --resume
  # A larger budget continues the account from round 2.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 3 --checkpoint-every 5 --epsilon-budget 100 \
    --out "$work/run" --resume >"$work/log2" 2>&1 || { cat "$work/log2"; fail "resume with a larger budget"; }
  e3="$(tail -1 "$work/run/metrics.csv" | cut -d, -f21)"
  "$python" -c "assert abs($e3 / $(e 3) - 1) < 1e-5, ($e3, $(e 3))" || fail "epsilon after resume"
  ;;
badflags)
  setup_small
  run() { mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --out "$work/bad" --force "$@"; }
  expect_fail "--dp-clip: 0 is not > 0" run --dp-clip 0
  expect_fail "--dp-clip: -1 is not > 0" run --dp-clip -1
  expect_fail "--dp-clip: 'x' is neither off nor" run --dp-clip x
  expect_fail "--dp-noise-multiplier: -1 is negative" run --dp-noise-multiplier -1
  expect_fail "--dp-delta 0.3: must be below 1/parties = 0.25" run --dp-delta 0.3
  expect_fail "--dp-noise distributed with --skip-nonfinite" run --dp-noise distributed --skip-nonfinite
  expect_fail "--dp-clip-count-stddev" run --dp-clip-quantile 0.5
  expect_fail "--dp-clip-quantile: 1 is outside" run --dp-clip-quantile 1
  expect_fail "below the epsilon of a single round" run --epsilon-budget 0.01
  expect_fail "DP options without --dp-clip: --epsilon-budget" \
    mpi 2 "$fedgan" train --data "$work/data.h5" --rounds 2 --out "$work/bad" --force --epsilon-budget 3
  # Values from a config file arrive.
  printf '[train]\ndp-clip = 0.7\ndp-noise-multiplier = 1.3\n' >"$work/dp.toml"
  mpi 2 "$fedgan" --config "$work/dp.toml" train --data "$work/data.h5" --g-width 8 --d-width 8 \
    --latent-dim 16 --local-steps 1 --batch-size 16 --threads 1 --rounds 1 --out "$work/cfg" \
    >"$work/log" 2>&1 || { cat "$work/log"; fail "config run"; }
  grep -q "z = 1.3, C = 0.7" "$work/log" || { grep DP "$work/log"; fail "config values did not arrive"; }
  grep -q '^dp-clip="0.7"\|^dp-clip=0.7' "$work/cfg/config.toml" || fail "config.toml lacks dp-clip"
  # ... and the written config.toml runs again as it is.
  mpi 2 "$fedgan" --config "$work/cfg/config.toml" train --out "$work/cfg2" >/dev/null 2>&1 \
    || fail "the run's own config.toml does not run again"
  ;;
scale)
  # 1,000 parties on 2 ranks with DP (q = 0.01: about 10 parties a round).
  "$fedgan" prepare --split test --parties 1000 --partition iid --seed 2 \
    --out "$work/p1000.h5" >/dev/null 2>&1 || fail "prepare 1000 parties"
  mpi 2 "$fedgan" train --data "$work/p1000.h5" --g-width 8 --d-width 8 --latent-dim 16 \
    --local-steps 1 --batch-size 8 --threads 1 --rounds 3 --participation 0.01 --dp-clip 1 \
    --dp-noise distributed --out "$work/run" >"$work/log" 2>&1 || { tail -20 "$work/log"; fail "1000 parties"; }
  grep -q "1000 parties" "$work/log" || fail "not 1000 parties"
  [ "$(wc -l <"$work/run/metrics.csv")" -eq 4 ] || fail "3 rounds expected"
  ;;
*)
  fail "unknown case $case"
  ;;
esac
