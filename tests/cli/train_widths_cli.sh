#!/usr/bin/env bash
# `fedgan train --width-ratios` end to end (HeteroFL: parties train the leading r of every hidden
# layer's channels): R ranks = 1 rank and resume = uninterrupted, bit for bit; sub-model sampling;
# the ratios from the dataset file; bad ratios, refused combinations and a resume with another
# ratio set, each a clear error on every rank.
# usage: train_widths_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: widths_ranks | widths_resume | widths_sample | widths_errors | widths_config
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"
# The small model at widths 8 (ratios 1, 1/2, 1/4: 8, 4 and 2 channels per base layer), FedAvg.
plain=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
       --batch-size 16 --threads 1 --sample-every 0)
wide=("${plain[@]}" --width-ratios 1,0.5,0.25,0.25)

case "${case#widths_}" in
ranks)
  # The same federation of widths on 1, 2 and 4 ranks: the same model, bit for bit (both BN
  # modes, and rolling slices).
  for bn in static shared rolling; do
    mode=(--width-bn $bn); [ $bn = rolling ] && mode=(--width-slicing rolling)
    for n in 1 2 4; do
      mpi $n "$fedgan" train "${wide[@]}" "${mode[@]}" --rounds 3 --out "$work/$bn$n" \
        >"$work/$bn$n.log" 2>&1 || { cat "$work/$bn$n.log"; fail "train on $n ranks ($bn)"; }
    done
    same_models "$work/${bn}1/checkpoints/latest.h5" "$work/${bn}2/checkpoints/latest.h5"
    same_models "$work/${bn}1/checkpoints/latest.h5" "$work/${bn}4/checkpoints/latest.h5"
  done
  # The log has the cost of each width (values, MACs, bytes) and the aggregate's rule.
  grep -Eq "ratio +parties +G values" "$work/static2.log" || fail "no cost table in the log"
  grep -Eq "^ *0.25 +2 " "$work/static2.log" || fail "the cost table lacks ratio 0.25 with 2 parties"
  grep -q "averaged over the width levels that hold it" "$work/static2.log" || fail "no aggregation line"
  # The checkpoint records every party's ratio and the modes.
  "$python" - "$work/static2/checkpoints/latest.h5" <<'PY' || fail "widths attribute"
import sys, h5py
w = h5py.File(sys.argv[1], "r").attrs["widths"]
w = w.decode() if isinstance(w, bytes) else w
assert w == "1,0.5,0.25,0.25 bn=static scaler=off slicing=leading average=holders", w
PY
  ;;
resume)
  # 4 rounds straight == 2 rounds, then resumed to 4, with kept Adam moments of the sub-models.
  keep=(--optimizer-state keep --participation 0.75)
  mpi 2 "$fedgan" train "${wide[@]}" "${keep[@]}" --rounds 4 --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1 \
    || fail "train 4 rounds"
  mpi 2 "$fedgan" train "${wide[@]}" "${keep[@]}" --rounds 2 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1 \
    || fail "train 2 rounds"
  mpi 2 "$fedgan" train "${wide[@]}" "${keep[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" --resume \
    >/dev/null 2>&1 || fail "resume"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  # Another ratio set, BN mode or scaler is another federation: refused, on every rank.
  expect_fail "trained widths '1,0.5,0.25,0.25 bn=static scaler=off slicing=leading average=holders', this run widths '1,0.5,1,0.5 bn=static scaler=off slicing=leading average=holders'" \
    mpi 2 "$fedgan" train "${plain[@]}" "${keep[@]}" --width-ratios 1,0.5 --rounds 6 --out "$work/part" --resume
  expect_fail "this run widths '.* bn=shared" \
    mpi 2 "$fedgan" train "${wide[@]}" "${keep[@]}" --width-bn shared --rounds 6 --out "$work/part" --resume
  expect_fail "this run every party at full width" \
    mpi 2 "$fedgan" train "${plain[@]}" "${keep[@]}" --rounds 6 --out "$work/part" --resume
  # Rolling slices resume exactly too (the window of round t is a function of t).
  roll=(--width-slicing rolling --participation 0.75)
  mpi 2 "$fedgan" train "${wide[@]}" "${roll[@]}" --rounds 4 --checkpoint-every 2 --out "$work/rfull" >/dev/null 2>&1 \
    || fail "rolling 4 rounds"
  mpi 2 "$fedgan" train "${wide[@]}" "${roll[@]}" --rounds 2 --checkpoint-every 2 --out "$work/rpart" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${wide[@]}" "${roll[@]}" --rounds 4 --checkpoint-every 2 --out "$work/rpart" --resume \
    >/dev/null 2>&1 || fail "rolling resume"
  same_models "$work/rfull/checkpoints/latest.h5" "$work/rpart/checkpoints/latest.h5"
  expect_fail "--width-slicing rolling with --optimizer-state keep" \
    mpi 2 "$fedgan" train "${wide[@]}" "${roll[@]}" --optimizer-state keep --rounds 1 --out "$work/rk"
  ;;
sample)
  mpi 2 "$fedgan" train "${wide[@]}" --rounds 2 --out "$work/r" >/dev/null 2>&1 || fail "train"
  ck="$work/r/checkpoints/latest.h5"
  for r in 1 0.5 0.25; do
    "$fedgan" sample --checkpoint "$ck" --width-ratio $r --n 16 --out "$work/s$r.h5" >/dev/null 2>&1 \
      || fail "sample at width $r"
  done
  # Every width makes images of the data's shape; the widths differ from each other; the same
  # width samples the same images twice (static BN's statistics come from fixed latents).
  "$fedgan" sample --checkpoint "$ck" --width-ratio 0.25 --n 16 --out "$work/again.h5" >/dev/null 2>&1
  "$python" - "$work" <<'PY' || fail "sub-model samples"
import sys, h5py, numpy as np
w = sys.argv[1]
x = {r: h5py.File(f"{w}/s{r}.h5", "r")["images"][()] for r in ("1", "0.5", "0.25")}
for r, v in x.items():
    assert v.shape == (16, 1, 28, 28), (r, v.shape)
assert not np.array_equal(x["1"], x["0.5"]) and not np.array_equal(x["0.5"], x["0.25"])
assert np.array_equal(x["0.25"], h5py.File(f"{w}/again.h5", "r")["images"][()])
PY
  expect_fail "width ratio 0 is outside \(0, 1\]" "$fedgan" sample --checkpoint "$ck" --width-ratio 0 \
    --n 4 --out "$work/bad.h5"
  expect_fail "width ratio 0.1 leaves a layer with no channel" "$fedgan" sample --checkpoint "$ck" \
    --width-ratio 0.1 --n 4 --out "$work/bad.h5"
  ;;
errors)
  run() { mpi 2 "$fedgan" train "${wide[@]}" --rounds 1 --out "$work/e" "$@"; }
  ratios() { mpi 2 "$fedgan" train "${plain[@]}" --rounds 1 --out "$work/e" "$@"; }
  expect_fail "party 1: width ratio 0 is outside \(0, 1\]" ratios --width-ratios 1,0
  expect_fail "party 0: width ratio 1.5 is outside \(0, 1\]" ratios --width-ratios 1.5
  expect_fail "party 3: width ratio 0.1 leaves a layer with no channel .*smallest ratio of this model is 0.125" \
    ratios --width-ratios 1,1,1,0.1
  expect_fail "with --server-optimizer fedavgm: its momentum would move coordinates" run --server-optimizer fedavgm
  expect_fail "--aggregator median: cannot aggregate width sub-models" run --aggregator median
  expect_fail "with --secure-agg" run --secure-agg --secagg-range 1
  expect_fail "with --client-strategy scaffold" run --client-strategy scaffold
  expect_fail "with --dp-clip" run --dp-clip 1 --dp-noise-multiplier 0.5 --participation 0.5
  expect_fail "--width-bn: .*shared" run --width-bn per-level
  expect_fail "with --federation distill: distillation shares no weights" run --federation distill
  # The dataset file's ratios: every party's or none, and used when --width-ratios is not given.
  cp "$work/data.h5" "$work/ratios.h5"
  "$python" - "$work/ratios.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    f["parties/0"].attrs["width_ratio"] = 1.0
PY
  expect_fail "ratios.h5: /parties/1 has no attribute width_ratio, but 1 other parties have one" \
    mpi 2 "$fedgan" train "${plain[@]}" --data "$work/ratios.h5" --rounds 1 --out "$work/f"
  "$python" - "$work/ratios.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    for k, r in enumerate([1.0, 0.5, 0.25, 0.25]):
        f[f"parties/{k}"].attrs["width_ratio"] = r
PY
  mpi 2 "$fedgan" train --data "$work/ratios.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2 \
    --batch-size 16 --threads 1 --sample-every 0 --rounds 1 --out "$work/f" >/dev/null 2>&1 || fail "train from the file's ratios"
  "$python" - "$work/f/checkpoints/latest.h5" <<'PY' || fail "the file's ratios were not used"
import sys, h5py
w = h5py.File(sys.argv[1], "r").attrs["widths"]
assert (w.decode() if isinstance(w, bytes) else w).startswith("1,0.5,0.25,0.25 "), w
PY
  ;;
config)
  # Per-party settings as [[party]] tables of a config file, in any order of ids.
  cat >"$work/parties.toml" <<TOML
[train]
data = "$work/data.h5"
g-width = 8
d-width = 8
latent-dim = 16
local-steps = 2
batch-size = 16
sample-every = 0
rounds = 1

[[party]]
id = 2
width-ratio = 0.25   # a quarter-width device
[[party]]
id = 0
width-ratio = 1
[[party]]
id = 3
width-ratio = 0.25
[[party]]
id = 1
width-ratio = 0.5
TOML
  mpi 2 "$fedgan" --config "$work/parties.toml" train --threads 1 --out "$work/c" >/dev/null 2>&1 \
    || fail "train from [[party]] tables"
  "$python" - "$work/c/checkpoints/latest.h5" <<'PY' || fail "the [[party]] ratios were not used"
import sys, h5py
w = h5py.File(sys.argv[1], "r").attrs["widths"]
assert (w.decode() if isinstance(w, bytes) else w).startswith("1,0.5,0.25,0.25 "), w
PY
  # The run's config.toml carries them, and runs again as it is.
  grep -q '^width-ratios="1,0.5,0.25,0.25"' "$work/c/config.toml" || { cat "$work/c/config.toml"; fail "config.toml lacks width-ratios"; }
  mpi 2 "$fedgan" --config "$work/c/config.toml" train --rounds 2 --resume >/dev/null 2>&1 \
    || fail "the run's config.toml does not run again"
  expect_fail "--width-ratios: 'x' is not a number" "$fedgan" train "${plain[@]}" --width-ratios 1,x \
    --rounds 1 --out "$work/x"
  bad() {  # bad REGEX: the file with that fault fails clearly
    expect_fail "$1" mpi 2 "$fedgan" --config "$work/bad.toml" train --threads 1 --out "$work/b"
  }
  sed 's/^id = 3/id = 0/' "$work/parties.toml" >"$work/bad.toml"
  bad "bad.toml:17: \[\[party\]\]: id 0 is given twice \(first on line 14\)"
  sed 's/^id = 3/id = 7/' "$work/parties.toml" >"$work/bad.toml"
  bad "\[\[party\]\]: id = 7: the 4 \[\[party\]\] tables must have the ids 0..3"
  sed 's/^width-ratio = 0.5/width_ratio = 0.5/' "$work/parties.toml" >"$work/bad.toml"
  bad "bad.toml:22: unknown key 'width_ratio' in \[\[party\]\].*did you mean 'width-ratio'"
  sed 's/^width-ratio = 0.5/width-ratio = half/' "$work/parties.toml" >"$work/bad.toml"
  bad "bad.toml:22: width-ratio = half is not a number"
  sed '/^width-ratio = 0.5/d' "$work/parties.toml" >"$work/bad.toml"
  bad "\[\[party\]\] 1 has no width-ratio, but 3 other parties have one"
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
