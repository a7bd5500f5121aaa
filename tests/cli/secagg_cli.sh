#!/usr/bin/env bash
# End-to-end tests of `fedgan train --secure-agg` on a small Fashion-MNIST subset.
# usage: secagg_cli.sh FEDGAN MPIEXEC WORKDIR CASE     CASE: run | drop | errors | config
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

prepare_four_parties "$work/data.h5"
small=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
       --batch-size 16 --server-optimizer fedavgm --threads 1)
secure=(--secure-agg --secagg-range 1)

case "$case" in
run)
  # The masked sum is exact, so 1 rank and 2 ranks (2 parties each, masked separately) give
  # the same model bit for bit; against plain FedAvg (float64 sum) only the fixed-point
  # rounding differs (≤ 4·2^-61·range·Σn per value of the sum, far below float32 resolution).
  mpi 2 "$fedgan" train "${small[@]}" "${secure[@]}" --rounds 3 --out "$work/s2" >"$work/s2.log" 2>&1 \
    || { cat "$work/s2.log"; fail "secure run"; }
  mpi 1 "$fedgan" train "${small[@]}" "${secure[@]}" --rounds 3 --out "$work/s1" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" --rounds 3 --out "$work/plain" >/dev/null 2>&1
  grep -q "secure aggregation (Bonawitz et al. 2017)" "$work/s2.log" || fail "no secure-aggregation line"
  compare "$work/s1/checkpoints/latest.h5" "$work/s2/checkpoints/latest.h5" 0
  compare "$work/plain/checkpoints/latest.h5" "$work/s2/checkpoints/latest.h5" 1e-5
  grep -q '^secure-agg=true' "$work/s2/config.toml" || fail "config.toml lacks secure-agg"
  # With distributed DP noise the range follows from the clip, per round:
  # C + 10*z*C/sqrt(m) = 1 + 10*0.5/2 = 3.5 at m = 4; no value of a clipped, noised update
  # (|x| <= C plus a share N(0, z^2 C^2/m)) comes near it, so nothing is clamped.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --secure-agg --dp-clip 1 --dp-noise distributed \
    --dp-noise-multiplier 0.5 --out "$work/dp" >"$work/dp.log" 2>&1 \
    || { cat "$work/dp.log"; fail "secure run with distributed DP noise"; }
  grep -q "clamped to ±(C + 10·z·C/√m) from --dp-clip (C = 1, z = 0.5)" "$work/dp.log" \
    || { cat "$work/dp.log"; fail "no range from --dp-clip"; }
  ! grep -q "were clamped" "$work/dp.log" || { cat "$work/dp.log"; fail "values clamped under the DP bound"; }
  # A range far below the updates: values are clamped (and said so), never wrapped.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --secure-agg --secagg-range 1e-6 \
    --out "$work/tiny" >"$work/tiny.log" 2>&1 || { cat "$work/tiny.log"; fail "tiny-range run"; }
  grep -Eq "[0-9]+ update values beyond the range 1e-06 were clamped in round 1" "$work/tiny.log" \
    || { cat "$work/tiny.log"; fail "no clamp warning"; }
  ;;
drop)
  # One party fails after masking in round 2: recovered, 3 parties aggregated.
  mpi 2 "$fedgan" train "${small[@]}" "${secure[@]}" --rounds 2 --secagg-drop 1@2 \
    --out "$work/one" >"$work/one.log" 2>&1 || { cat "$work/one.log"; fail "drop run"; }
  grep -q "round 2: 1 of 4 parties dropped .* rebuilt from 3-of-4 Shamir shares" "$work/one.log" \
    || { cat "$work/one.log"; fail "no recovery line"; }
  "$python" - "$work/one/metrics.csv" <<'PY' || fail "metrics of the recovered round"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["parties"] for r in rows] == ["4", "3"], [r["parties"] for r in rows]
PY
  # Two of 4 fail (t = 3): round 2 is abandoned on every rank, the model stays that of round
  # 1, and the run goes on to round 3.
  mpi 2 "$fedgan" train "${small[@]}" "${secure[@]}" --rounds 3 --checkpoint-every 1 \
    --secagg-drop 1@2,2@2 --out "$work/two" >"$work/two.log" 2>&1 \
    || { cat "$work/two.log"; fail "below-threshold run"; }
  grep -q "round 2: 2 of 4 parties survived masking, fewer than the secure-aggregation threshold t = 3" \
    "$work/two.log" || { cat "$work/two.log"; fail "no abandon message"; }
  "$python" - "$work/two/checkpoints" <<'PY' || fail "the abandoned round changed the model"
import sys, h5py, numpy as np
d = sys.argv[1]
a, b = h5py.File(f"{d}/round_0001.h5", "r"), h5py.File(f"{d}/round_0002.h5", "r")
for g in ("generator", "discriminator"):
    for k in a[g]:
        assert np.array_equal(a[g][k][()], b[g][k][()]), f"{g}/{k} changed"
c = h5py.File(f"{d}/round_0003.h5", "r")
assert any(not np.array_equal(b[g][k][()], c[g][k][()]) for g in ("generator",) for k in b[g])
PY
  ;;
errors)
  expect_fail "needs --secagg-range B > 0" mpi 2 "$fedgan" train "${small[@]}" --secure-agg \
    --out "$work/e1"
  expect_fail "needs --secagg-range B > 0" mpi 2 "$fedgan" train "${small[@]}" --secure-agg \
    --secagg-range 0 --out "$work/e2"
  expect_fail "--secagg-range: .*-1" "$fedgan" train "${small[@]}" --secure-agg --secagg-range -1 \
    --out "$work/e2b"
  expect_fail "--secagg-threshold" "$fedgan" train "${small[@]}" "${secure[@]}" \
    --secagg-threshold 0 --out "$work/e3"
  expect_fail "--secagg-drop: 'x3' is not PARTY@ROUND" "$fedgan" train "${small[@]}" "${secure[@]}" \
    --secagg-drop x3 --out "$work/e4"
  expect_fail "--secagg-drop: party 9 does not exist" mpi 2 "$fedgan" train "${small[@]}" \
    "${secure[@]}" --secagg-drop 9@1 --out "$work/e5"
  expect_fail "--secagg-drop: round 5 is beyond --rounds 2" mpi 2 "$fedgan" train "${small[@]}" \
    "${secure[@]}" --rounds 2 --secagg-drop 1@5 --out "$work/e6"
  expect_fail "--secagg-drop: needs --secure-agg" mpi 2 "$fedgan" train "${small[@]}" \
    --secagg-drop 1@1 --out "$work/e7"
  expect_fail "needs at least 2 parties per round .*draws 1" mpi 2 "$fedgan" train "${small[@]}" \
    "${secure[@]}" --participation 0.25 --out "$work/e8"
  # With --dp-clip: a given range below the clip's bound names both; adaptive clipping has no
  # fixed bound, so it needs a given range.
  expect_fail "--secagg-range 0.5 is below the bound that --dp-clip 1 implies, 1 \(C, central" \
    mpi 2 "$fedgan" train "${small[@]}" --secure-agg --secagg-range 0.5 --dp-clip 1 --out "$work/e9"
  expect_fail "--secagg-range 2 is below the bound that --dp-clip 1 implies, 6 \(C \+ 10\*z\*C/sqrt\(m\) with z = 1 and m = 4" \
    mpi 2 "$fedgan" train "${small[@]}" --secure-agg --secagg-range 2 --dp-clip 1 \
    --dp-noise distributed --out "$work/e10"
  expect_fail "--secure-agg with adaptive clipping \(--dp-clip-quantile\)" mpi 2 "$fedgan" train \
    "${small[@]}" --secure-agg --dp-clip 1 --dp-clip-quantile 0.5 --dp-clip-count-stddev 1 \
    --out "$work/e11"
  ;;
config)
  # Every --secure-agg option arrives from a config file and is written back to config.toml.
  # small_toml: the small run's settings as a config file's [train] section.
  small_toml() {
    cat <<TOML
[train]
data = "$work/data.h5"
g-width = 8
d-width = 8
latent-dim = 16
local-steps = 2
batch-size = 16
TOML
  }
  { small_toml; cat <<TOML
rounds = 2
secure-agg = true
secagg-range = 0.5
secagg-threshold = 0.7
secagg-drop = ["3@2"]
TOML
  } >"$work/run.toml"
  mpi 2 "$fedgan" --config "$work/run.toml" train --threads 1 --out "$work/run" >"$work/log" 2>&1 \
    || { cat "$work/log"; fail "config run"; }
  grep -q "clamped to ±0.5, threshold t = max(2, floor(0.7·m)+1)" "$work/log" || fail "range/threshold did not arrive"
  grep -q "round 2: 1 of 4 parties dropped" "$work/log" || fail "secagg-drop did not arrive"
  for key in 'secure-agg=true' 'secagg-range=0.5' 'secagg-threshold=0.7' 'secagg-drop=.*3@2'; do
    grep -q "^$key" "$work/run/config.toml" || fail "config.toml lacks $key"
  done
  # The run's own config.toml runs again as it is.
  mpi 2 "$fedgan" --config "$work/run/config.toml" train --threads 1 --out "$work/again" \
    >/dev/null 2>&1 || fail "config.toml of a secure run is not reusable"
  # Without secagg-range, the range comes from the config file's dp-clip and dp-noise.
  { small_toml; cat <<TOML
rounds = 1
secure-agg = true
dp-clip = 0.25
dp-noise = "distributed"
dp-noise-multiplier = 0.75
TOML
  } >"$work/dp.toml"
  mpi 2 "$fedgan" --config "$work/dp.toml" train --threads 1 --out "$work/dp" >"$work/dp.log" 2>&1 \
    || { cat "$work/dp.log"; fail "config run with DP"; }
  grep -q "clamped to ±(C + 10·z·C/√m) from --dp-clip (C = 0.25, z = 0.75)" "$work/dp.log" \
    || { cat "$work/dp.log"; fail "the range from dp-clip did not arrive"; }
  ;;
*)
  fail "unknown case $case"
  ;;
esac
echo "secagg_cli $case: ok"
