#!/usr/bin/env bash
# End-to-end tests of `fedgan train` / `sample` on a small Fashion-MNIST subset.
# usage: train_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: resume | resume_keep | preempt | sigterm | fault | pytorch | distill | refuse | config | configs |
#         settings | arch | sample | nonfinite | ranks | badflags | baddata | badckpt | strategies | small_data | robust
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# 2 classes of the test split (2000 images), 4 non-IID parties.
prepare_four_parties "$work/data.h5"
base=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 2
      --batch-size 16 --server-optimizer fedavgm)
small=("${base[@]}" --threads 1)

# A 6-round 2-rank run in the background, waited for until round 2: mpirun itself is the
# background job (not a function), so $pid is mpirun's pid and it forwards SIGUSR1.
start_long_run() {
  long=(--rounds 6 --checkpoint-every 100 --local-steps 30)
  "$mpiexec" --oversubscribe -n 2 "$fedgan" train "${small[@]}" "${long[@]}" --out "$work/run" \
    >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "round 2/6" "$work/log" 2>/dev/null && break; sleep 0.1; done
  grep -q "round 2/6" "$work/log" || fail "the run did not reach round 2"
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
small_data)
  # The limited-data options together, at 2 ranks: 4 rounds straight == stopped in round 3 (the
  # preemption checkpoint of round 2) and resumed to 4. Checks the generator EMA (/generator is
  # the EMA, the trained G is /state/server/g_raw), ADA's p, lazy R1, the spectral D's u
  # vectors, DiffAugment's draws and the cosine schedule's round.
  q=(--diffaug translation,cutout,color --ada-target 0.6 --ada-kimg 0.1 --r1-gamma 1
     --r1-every 2 --d-norm spectral --lr-schedule cosine --g-ema 0.9 --rounds 4)
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/full" >/dev/null 2>&1 \
    || fail "small-data run"
  set +e
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/part" \
    --debug-stop-round 3 >/dev/null 2>&1
  rc=$?; set -e
  [ $rc -eq 3 ] || fail "the stopped run exited $rc, not 3"
  mpi 2 "$fedgan" train "${small[@]}" "${q[@]}" --checkpoint-every 2 --out "$work/part" --resume \
    >/dev/null 2>&1 || fail "resume"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  "$python" - "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5" \
    "$work/full/metrics.csv" <<'PY' || fail "EMA / ADA state"
import csv, sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for k in ("state/server/g_raw", "state/server/ada_p"):
    assert np.array_equal(a[k][()], b[k][()]), k + " differs after resume"
assert "discriminator/head.u" in a and "discriminator/blocks.1.conv.u" in a, "no u vectors"
ema = np.concatenate([a["generator"][k][()].ravel() for k in a["generator"]])
raw = a["state/server/g_raw"][()]
assert raw.size >= ema.size and not np.allclose(np.sort(raw), np.sort(ema)), "/generator is not an EMA"
p = float(a["state/server/ada_p"][0])
assert 0 < p <= 1, p
rows = list(csv.DictReader(open(sys.argv[3])))
assert all(r["ada_p"] for r in rows) and abs(float(rows[-1]["ada_p"]) - p) < 1e-5, rows[-1]
assert float(rows[0]["lr_factor"]) == 1.0 and float(rows[-1]["lr_factor"]) < 0.2, rows[-1]
print("EMA, g_raw, ada_p", p, "and the schedule as expected")
PY
  # The EMA checkpoint samples like any other.
  "$fedgan" sample --checkpoint "$work/full/checkpoints/latest.h5" --n 16 --out "$work/s.png" \
    --threads 1 >/dev/null 2>&1 || fail "sample from an EMA checkpoint"
  # Bad values name the option and what it accepts; ADA without augmentation is an agreed error.
  expect_fail "--diffaug: .*unknown augmentation 'flip'.*translation, cutout, color" \
    "$fedgan" train "${small[@]}" --out "$work/bad" --diffaug translation,flip
  expect_fail "--g-ema: 1 is outside \[0, 1\)" "$fedgan" train "${small[@]}" --out "$work/bad" --g-ema 1
  expect_fail "--lr-schedule: .*step" "$fedgan" train "${small[@]}" --out "$work/bad" --lr-schedule step
  expect_fail "--ada-target adapts the probability of the --diffaug augmentations" \
    mpi 2 "$fedgan" train "${small[@]}" --out "$work/bad" --ada-target 0.6
  # Every new option comes from a config file too.
  printf '[train]\ndiffaug = "cutout"\ng-ema = 0.5\nr1-gamma = 2\nlr-schedule = "linear"\nd-norm = "spectral"\n' \
    >"$work/q.toml"
  "$fedgan" --config "$work/q.toml" train "${small[@]}" --rounds 1 --out "$work/cfg" >/dev/null 2>&1 \
    || fail "config run"
  for kv in 'diffaug="cutout"' 'g-ema=0.5' 'r1-gamma=2' 'lr-schedule="linear"' 'd-norm="spectral"'; do
    grep -qx "$kv" "$work/cfg/config.toml" || fail "config value $kv did not arrive"
  done
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
preempt|preempt_keep)
  # SIGUSR1 to a running 2-rank mpirun job: exit 3 within seconds, a readable checkpoint, and
  # `--resume auto` continues from it to the same model as an uninterrupted run. preempt_keep:
  # with per-party Adam moments and BN statistics, which the stopped round had already changed
  # (they are restored to the last complete round and saved with the checkpoint).
  [ "$case" = preempt_keep ] && small+=(--optimizer-state keep --local-bn --participation 0.75)
  start_long_run
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
configs)
  # Every config the repository ships is read whole (no unknown key, every value valid) and runs:
  # one round on the small data, its own size and data overridden by flags.
  shipped="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../configs" && pwd)"
  for cfg in "$shipped"/*.toml; do
    sub=$(sed -n 's/^\[\(train\|pretrain\)\]$/\1/p' "$cfg" | head -1)
    [ -n "$sub" ] || fail "$cfg has no [train] or [pretrain] section"
    name=$(basename "$cfg" .toml)
    "$fedgan" --config "$cfg" "$sub" "${base[@]}" --threads 1 --rounds 1 --local-steps 1 \
      --eval-every 0 --out "$work/$name" >"$work/$name.log" 2>&1 \
      || { tail -5 "$work/$name.log"; fail "$cfg: one round did not run"; }
    # A value the flags leave alone, and not the default (2e-4), arrives from the file.
    want=$(grep -m1 '^lr-g *=' "$cfg" | tr -d ' ')
    [ -n "$want" ] || fail "$cfg: no lr-g to check"
    grep -qx "$want" "$work/$name/config.toml" || fail "$cfg: $want did not arrive"
  done
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
  # A dotted key outside the sections is read too, and the value arrives.
  printf 'train.d-width = 6\n[train]\ndata = "%s"\nout = "%s"\nrounds = 1\nlocal-steps = 1\n' \
    "$work/data.h5" "$work/dotted" >"$work/dotted.toml"
  "$fedgan" --config "$work/dotted.toml" train --threads 1 --g-width 8 --latent-dim 16 >/dev/null 2>&1 \
    || fail "dotted key run"
  grep -q '^d-width=6' "$work/dotted/config.toml" || fail "the dotted key's value did not arrive"
  echo "bogus-key = 1" >>"$work/run.toml"
  expect_fail "run.toml:9: unknown key 'bogus-key' in \[train\]" "$fedgan" --config "$work/run.toml" train --force
  # What CLI11 2.1 would accept silently: each is an error naming the file and line.
  head='[train]\ndata = "x.h5"\n'
  bad() { printf "$head$2" >"$work/$1.toml"; }
  bad dup 'rounds = 2\nrounds = 3\n'
  expect_fail "dup.toml:4: 'rounds' is set a second time in \[train\] \(first on line 3\)" \
    mpi 2 "$fedgan" --config "$work/dup.toml" train
  bad dupsection 'rounds = 2\n[train]\nlr-g = 0.1\n'
  expect_fail "dupsection.toml:4: \[train\] appears a second time \(first on line 1\)" \
    "$fedgan" --config "$work/dupsection.toml" train
  bad array 'lr-g = [0.1, 0.2]\n'
  expect_fail "array.toml:3: 'lr-g' takes one value, but the file gives 2" \
    "$fedgan" --config "$work/array.toml" train
  bad spaces 'out = runs/my run\n'
  expect_fail "spaces.toml:3: 'out' takes one value, but the file gives 2 .*quote it" \
    "$fedgan" --config "$work/spaces.toml" train
  printf '[trian]\nrounds = 2\n' >"$work/typo.toml"
  expect_fail "typo.toml:1: unknown section \[trian\] \(did you mean 'train'\?\)" \
    "$fedgan" --config "$work/typo.toml" train --data x.h5
  bad key 'round = 2\n'
  expect_fail "key.toml:3: unknown key 'round' in \[train\] \(did you mean 'rounds'\?\)" \
    "$fedgan" --config "$work/key.toml" train
  printf 'rounds = 2\n[train]\ndata = "x.h5"\n' >"$work/root.toml"
  expect_fail "root.toml:1: unknown key 'rounds' outside any \[section\]; it is an option of \[train\], \[pretrain\]" \
    "$fedgan" --config "$work/root.toml" train
  bad hash 'out = "runs/#1"\n'
  expect_fail "hash.toml:3: a '#' inside a quoted value" "$fedgan" --config "$work/hash.toml" train
  bad value 'rounds = 0\n'
  expect_fail "config file .*value.toml:3: rounds = 0: --rounds: 0 is not > 0" \
    mpi 2 "$fedgan" --config "$work/value.toml" train
  bad flag 'force = maybe\n'
  expect_fail "config file .*flag.toml:3: force = maybe: " "$fedgan" --config "$work/flag.toml" train
  # The same value on the command line is the command line's fault, not the file's.
  set +e; out=$("$fedgan" --config "$work/value.toml" train --rounds -1 2>&1); set -e
  grep -q "value.toml" <<<"$out" && { echo "$out"; fail "a flag's error was blamed on the file"; }
  expect_fail "nothing.toml: cannot read the --config file" "$fedgan" --config "$work/nothing.toml" train
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
  # One party in all (1 rank x 1 party) and it is skipped: the run stops instead of going on with
  # zero losses and saving the unchanged model as round 2.
  expect_fail "round 2: every participating party \(1\) produced a non-finite update and was skipped" \
    "$fedgan" train "${small[@]}" --parties-per-rank 1 --rounds 3 --out "$work/all" \
    --skip-nonfinite --debug-nan-party 0 --debug-nan-round 2
  [ ! -e "$work/all/checkpoints/round_0002.h5" ] || fail "a checkpoint was written for round 2"
  ;;
robust)
  # Robust aggregators and simulated attacks end to end (4 parties, 2 ranks): each rule runs
  # and says so in the log; settings that cannot work and bad flags fail clearly on every rank;
  # a NaN attack meets the non-finite handling; values from a config file arrive.
  # (--trim-beta 0.25: the default 0.1 trims nothing of 4 parties, which is refused.)
  for agg in median trimmed-mean norm-bound; do
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/$agg" --aggregator "$agg" \
      --trim-beta 0.25 --attack scale:10 --attackers 1 >"$work/$agg.log" 2>&1 \
      || { cat "$work/$agg.log"; fail "$agg run"; }
    grep -q "values; $agg: " "$work/$agg.log" || fail "the log does not name $agg"
    grep -q "simulated attack: parties 1 send scale:10 updates" "$work/$agg.log" || fail "no attack warning"
    [ -f "$work/$agg/checkpoints/latest.h5" ] || fail "$agg wrote no checkpoint"
  done
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/krum" --aggregator krum \
    --krum-f 0 >"$work/krum.log" 2>&1 || fail "krum run"
  grep -q "values; krum: " "$work/krum.log" || fail "the log does not name krum"
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/multi" --aggregator multi-krum \
    --krum-f 0 --krum-m 2 >"$work/multi.log" 2>&1 || fail "multi-krum run"
  grep -q "values; multi-krum: " "$work/multi.log" || fail "the log does not name multi-krum"
  # The median of the attacked run differs from FedAvg's attacked run (the rule is applied).
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/fedavg" --attack scale:10 \
    --attackers 1 >/dev/null 2>&1 || fail "fedavg run"
  ! same_models "$work/fedavg/checkpoints/latest.h5" "$work/median/checkpoints/latest.h5" \
    >/dev/null 2>&1 || fail "median and FedAvg gave the same model"
  expect_fail "--aggregator krum --krum-f 1 needs more than 2f \+ 2 = 4 parties in a round, but 4 of the 4" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/x" --aggregator krum
  expect_fail "--krum-m 5 is more than the 4 updates Multi-Krum may average" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/x" --aggregator multi-krum \
    --krum-f 0 --krum-m 5
  expect_fail "--attackers: party 4 does not exist \(the run has 4 parties, ids 0..3\)" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/x" --attack sign-flip --attackers 4
  expect_fail "--attack sign-flip needs --attackers" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/x" --attack sign-flip
  expect_fail "--attack: 'flip' is not an attack \(expected none, sign-flip" \
    "$fedgan" train "${small[@]}" --out "$work/x" --attack flip --attackers 1
  expect_fail "--attack: .*'x' is not a finite number" \
    "$fedgan" train "${small[@]}" --out "$work/x" --attack scale:x --attackers 1
  expect_fail "--attackers: .*'1;2' is not a party id" \
    "$fedgan" train "${small[@]}" --out "$work/x" --attack nan --attackers '1;2'
  expect_fail "--trim-beta: 0.5 is outside \[0, 0.5\)" \
    "$fedgan" train "${small[@]}" --out "$work/x" --trim-beta 0.5
  expect_fail "--aggregator: .*bogus" "$fedgan" train "${small[@]}" --out "$work/x" --aggregator bogus
  # NaN from an attacker: the run stops naming it, or skips it with --skip-nonfinite.
  expect_fail "party 1 produced a non-finite update in round 1" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/nan" --aggregator median \
    --attack nan --attackers 1
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/nanskip" --aggregator median \
    --attack nan --attackers 1 --skip-nonfinite >"$work/nanskip.log" 2>&1 || fail "nan skip run"
  grep -q "(1 skipped)" "$work/nanskip.log" || fail "no skip reported"
  # From a config file: the values arrive (log, the run's config.toml).
  printf '[train]\naggregator = "trimmed-mean"\ntrim-beta = 0.25\nattack = "sign-flip"\nattackers = "2"\n' \
    >"$work/robust.toml"
  mpi 2 "$fedgan" --config "$work/robust.toml" train "${small[@]}" --rounds 1 --out "$work/cfg" \
    >"$work/cfg.log" 2>&1 || { cat "$work/cfg.log"; fail "config run"; }
  grep -q "values; trimmed-mean: " "$work/cfg.log" || fail "aggregator from the config file"
  grep -q "parties 2 send sign-flip updates" "$work/cfg.log" || fail "attack from the config file"
  grep -q '^trim-beta=0.25' "$work/cfg/config.toml" || fail "trim-beta did not arrive"
  grep -Eq '^attackers="?2"?$' "$work/cfg/config.toml" || fail "attackers did not arrive"
  # A run's config.toml with a list of attackers runs again as it is.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/two" --attack sign-flip \
    --attackers 1,2 >/dev/null 2>&1 || fail "two attackers"
  "$fedgan" --config "$work/two/config.toml" train --out "$work/two_again" >"$work/two.log" 2>&1 \
    || { cat "$work/two.log"; fail "config.toml with two attackers does not run again"; }
  grep -q "parties 1,2 send sign-flip updates" "$work/two.log" || fail "two attackers not named"
  ;;
ranks)
  expect_fail "fewer than the 4 ranks|need" mpi 4 "$fedgan" train "${small[@]}" --rounds 1 \
    --parties-per-rank 2 --out "$work/run"
  ;;
sigterm)
  # SIGTERM to one rank (as srun or a scheduler delivers it): the job stops cooperatively, exit 3,
  # and the log names the signal and the rank (the signal number used to be lost: "signal 0").
  start_long_run
  victim=$(pgrep -P "$pid" -f "fedgan" | tail -n 1)
  [ -n "$victim" ] || fail "no rank process found"
  kill -TERM "$victim"
  set +e; wait "$pid"; rc=$?; set -e
  cat "$work/log" | grep -E "stop signal|exit"
  [ "$rc" -eq 3 ] || { cat "$work/log"; fail "expected exit code 3, got $rc"; }
  grep -Eq "stop signal SIGTERM \(15\) on rank [01]: stopped in round [0-9]+" "$work/log" \
    || fail "the log does not name SIGTERM and the rank"
  grep -q "came from mpirun" "$work/log" && fail "a SIGTERM to one rank was blamed on mpirun"
  # SIGTERM to mpirun itself: Open MPI aborts the job (SIGTERM to the ranks, SIGKILL about a second
  # later) and exits 1 whatever the ranks return; the log says so when it gets that far.
  "$mpiexec" --oversubscribe -n 2 "$fedgan" train "${small[@]}" "${long[@]}" --rounds 100 \
    --out "$work/run2" >"$work/log2" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do grep -q "round 2/100" "$work/log2" 2>/dev/null && break; sleep 0.1; done
  grep -q "round 2/100" "$work/log2" || fail "the second run did not reach round 2"
  kill -TERM "$pid"
  set +e; wait "$pid"; rc=$?; set -e
  grep -E "stop signal" "$work/log2" || echo "(the ranks were killed before they logged)"
  [ "$rc" -eq 1 ] || { cat "$work/log2"; fail "mpirun's exit code after SIGTERM changed: $rc"; }
  if grep -q "stop signal" "$work/log2"; then
    grep -q "stop signal SIGTERM (15) on rank 0: .*came from mpirun.*exits with code 1" "$work/log2" \
      || fail "the log does not say that mpirun itself was stopped"
  fi
  ;;
settings)
  # --resume continues the same run: other data is refused (naming both files) unless allowed;
  # config.toml never records `resume`, so it can be reused for a fresh run elsewhere.
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  ! grep -Eq "^(resume|force|allow-change)=" "$work/run/config.toml" \
    || fail "config.toml records an action: $(grep -E '^(resume|force)' "$work/run/config.toml")"
  "$fedgan" --config "$work/run/config.toml" train --out "$work/again" --threads 1 >/dev/null 2>&1 \
    || fail "config.toml of a run does not start a fresh run elsewhere"
  "$fedgan" train --help | grep -E -- "--resume" | grep -q "=yes" && fail "--help shows --resume =yes"
  cp "$work/data.h5" "$work/other.h5"
  ln -s "$work/data.h5" "$work/link.h5"
  expect_fail "data: '$work/other.h5' now, '$work/data.h5' in the run being resumed" \
    mpi 2 "$fedgan" train "${small[@]}" --data "$work/other.h5" --rounds 2 --out "$work/run" --resume
  expect_fail "seed: '7' now, '0'" "$fedgan" train "${small[@]}" --seed 7 --rounds 2 \
    --out "$work/run" --resume
  # The same file through another path, or an allowed change, resumes.
  # (Output captured first: grep -q may leave early and end fedgan with SIGPIPE under pipefail.)
  out=$("$fedgan" train "${small[@]}" --data "$work/link.h5" --rounds 2 --out "$work/run" --resume 2>&1) \
    || { echo "$out"; fail "the same data through a link was refused"; }
  grep -q "resuming after round 1" <<<"$out" || { echo "$out"; fail "no resume through a link"; }
  out=$("$fedgan" train "${small[@]}" --data "$work/other.h5" --rounds 3 --out "$work/run" --resume \
    --allow-change data 2>&1) || { echo "$out"; fail "--allow-change data"; }
  grep -q "resuming after round 2" <<<"$out" || { echo "$out"; fail "--allow-change data did not resume"; }
  grep -q "^data=\"$work/other.h5\"" "$work/run/config.toml" || fail "config.toml not updated on resume"
  expect_fail "allow-change: .*not in" "$fedgan" train "${small[@]}" --out "$work/run" --resume \
    --allow-change colour
  ;;
badflags)
  # Ranges print readably, NaN is refused, --threads is bounded, and every rank agrees.
  expect_fail "--rounds: 0 is not > 0" "$fedgan" train "${small[@]}" --rounds 0 --out "$work/x"
  expect_fail "--participation: 0 is outside \(0, 1\]" "$fedgan" train "${small[@]}" \
    --participation 0 --out "$work/x"
  expect_fail "--lr-g: 'nan' is not a finite number" "$fedgan" train "${small[@]}" --lr-g nan \
    --out "$work/x"
  expect_fail "--server-momentum: 5 is outside \[0, 1\)" "$fedgan" train "${small[@]}" \
    --server-momentum 5 --out "$work/x"
  expect_fail "--server-lr: 1e39 exceeds the float32 range" "$fedgan" train "${small[@]}" \
    --server-lr 1e39 --out "$work/x"
  expect_fail "--g-width: Value 5000 not in range 2 to 4096" "$fedgan" train "${small[@]}" \
    --g-width 5000 --out "$work/x"
  expect_fail "--threads 1000: more than the [0-9]+ cores of this node" \
    mpi 2 "$fedgan" train "${base[@]}" --threads 1000 --rounds 1 --out "$work/x"
  expect_fail "--lr-mult-g: prefix 'blocks.9' matches no parameter of the generator" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/x" --lr-mult-g blocks.9=0.1
  expect_fail "--kd-weight needs --init" mpi 2 "$fedgan" train "${small[@]}" --rounds 1 \
    --out "$work/x2" --kd-weight 1
  ;;
baddata)
  # Parties that share rows or name rows the file lacks are refused, naming party and row; a
  # batch larger than a party's shard is a warning naming both sizes.
  "$python" - "$work" <<'PY'
import sys, shutil, h5py, numpy as np
w = sys.argv[1]
shutil.copy(w + "/data.h5", w + "/shared.h5")
with h5py.File(w + "/shared.h5", "r+") as f:
    row = int(f["parties/0/indices"][0])
    one = f["parties/1/indices"][()]
    del f["parties/1/indices"]
    f["parties/1/indices"] = np.append(one, row).astype(np.int64)
    print("shared row", row)
shutil.copy(w + "/data.h5", w + "/range.h5")
with h5py.File(w + "/range.h5", "r+") as f:
    two = f["parties/2/indices"][()]
    del f["parties/2/indices"]
    f["parties/2/indices"] = np.append(two, 999999).astype(np.int64)
PY
  expect_fail "shared.h5: parties 0 and 1 both hold row [0-9]+ .*disjoint" \
    mpi 2 "$fedgan" train "${small[@]}" --data "$work/shared.h5" --rounds 1 --out "$work/x"
  expect_fail "range.h5: /parties/2/indices holds row 999999, outside the 2000 rows .*\(party 2\)" \
    mpi 2 "$fedgan" train "${small[@]}" --data "$work/range.h5" --rounds 1 --out "$work/x"
  out=$(mpi 2 "$fedgan" train "${small[@]}" --batch-size 1000 --local-steps 1 --rounds 1 \
    --out "$work/big" 2>&1) || { echo "$out"; fail "a large batch"; }
  grep -Eq "party [0-3] holds [0-9]+ samples, fewer than --batch-size 1000" <<<"$out" \
    || { echo "$out"; fail "no warning for a batch larger than a shard"; }
  ;;
badckpt)
  # Checkpoints that lie about their architecture, hold NaN, or are not checkpoints at all.
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: Debian's python3-torch is not installed"; exit 77; }
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  ck="$work/run/checkpoints/latest.h5"
  "$python" - "$ck" "$work" <<'PY'
import sys, shutil, h5py, numpy as np, torch
ck, w = sys.argv[1:3]
def variant(name, edit):
    shutil.copy(ck, f"{w}/{name}.h5")
    with h5py.File(f"{w}/{name}.h5", "r+") as f:
        edit(f)
def architecture(old, new):
    def edit(f):
        a = f.attrs["architecture"]
        a = a.decode() if isinstance(a, bytes) else a
        f.attrs["architecture"] = a.replace(old, new)
    return edit
def nan(f):
    v = f["discriminator/head.bias"][()]
    v[0] = np.nan
    f["discriminator/head.bias"][...] = v
variant("wide", architecture("gw=8", "gw=4096"))
variant("absurd", architecture("gw=8", "gw=99999999999999"))
variant("nan", nan)
open(f"{w}/garbage.pt", "wb").write(b"this is not a model\n" * 10)
open(f"{w}/text.h5", "wb").write(b"plain text, not HDF5\n")
# Two entries: LibTorch's unpickler lacks SETITEM, which pickle uses for a one-entry dict.
tiny = {"generator.out.bias": torch.zeros(1), "generator.unknown": torch.zeros(1)}
torch.save(tiny, f"{w}/tiny.pt")
torch.save(tiny, f"{w}/legacy.pt", _use_new_zipfile_serialization=False)
PY
  start=$(date +%s)
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape \[16\], but the architecture needs \[8192\]" \
    "$fedgan" sample --checkpoint "$work/wide.h5" --out "$work/s.png"
  # Checked before the 560 M-value model is built (building it took 48 s).
  [ $(( $(date +%s) - start )) -lt 20 ] || fail "the shape check came late"
  expect_fail "absurd.h5: attribute architecture = .*'gw=99999999999999' is not an integer" \
    "$fedgan" sample --checkpoint "$work/absurd.h5" --out "$work/s.png"
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/w" --init "$work/wide.h5"
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape" \
    "$fedgan" distill --teacher "$work/wide.h5" --out "$work/d.h5"
  # NaN: an error naming file and tensor wherever the checkpoint is read.
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf of 1 values" \
    "$fedgan" sample --checkpoint "$work/nan.h5" --out "$work/s.png"
  [ ! -e "$work/s.png" ] || fail "sample wrote images from a NaN checkpoint"
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf" mpi 2 "$fedgan" train "${small[@]}" \
    --rounds 1 --out "$work/n" --init "$work/nan.h5" --skip-nonfinite
  [ ! -e "$work/n/checkpoints/latest.h5" ] || fail "a checkpoint was written from a NaN init"
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf" \
    "$fedgan" distill --teacher "$work/nan.h5" --out "$work/d.h5"
  cp "$work/nan.h5" "$work/run/checkpoints/latest.h5"
  expect_fail "latest.h5: /discriminator/head.bias holds 1 NaN/inf" \
    "$fedgan" train "${small[@]}" --rounds 2 --out "$work/run" --resume
  # Not a checkpoint: judged by content, with what --init expects; no LibTorch backtrace.
  expect_fail "garbage.pt: neither an HDF5 file nor a PyTorch zip archive.*--init expects a fedgan checkpoint" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/garbage.pt"
  expect_fail "text.h5: neither an HDF5 file nor a PyTorch zip archive" \
    "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/text.h5"
  expect_fail "legacy.pt: a PyTorch file in the legacy" \
    "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/legacy.pt"
  expect_fail "text.h5: not an HDF5 file" "$fedgan" sample --checkpoint "$work/text.h5" --out "$work/s.png"
  # A warm start that transfers almost nothing is a warning with the share.
  out=$("$fedgan" train "${small[@]}" --rounds 1 --out "$work/tiny" --init "$work/tiny.pt" 2>&1) \
    || { echo "$out"; fail "warm start from one tensor"; }
  grep -Eq "warn.*only 0\.0[0-9]*% of the generator's values \(1 of [0-9]+\) came from" <<<"$out" \
    || { echo "$out"; fail "no warning with the share"; }
  grep -Eq "warn.*only 0% of the discriminator's values" <<<"$out" || { echo "$out"; fail "D share"; }
  ;;
strategies)
  # SCAFFOLD (its variates checkpointed) + FedProx + FedYogi at 2 ranks: 2 rounds resumed to 4
  # equal 4 rounds straight.
  strat=(--client-strategy scaffold --prox-mu 0.01 --server-optimizer fedyogi --server-lr 0.01
         --participation 0.75)
  mpi 2 "$fedgan" train "${small[@]}" "${strat[@]}" --rounds 4 --checkpoint-every 2 \
    --out "$work/full" >/dev/null 2>&1 || fail "scaffold run"
  mpi 2 "$fedgan" train "${small[@]}" "${strat[@]}" --rounds 2 --out "$work/part" >/dev/null 2>&1 \
    || fail "scaffold run to round 2"
  mpi 2 "$fedgan" train "${small[@]}" "${strat[@]}" --rounds 4 --checkpoint-every 2 \
    --out "$work/part" --resume 2>&1 | grep -q "resuming after round 2" || fail "no resume"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  "$python" - "$work/full/checkpoints/latest.h5" <<'PY' || fail "variates missing from the checkpoint"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for k in ("state/server/scaffold/c_g", "state/server/scaffold/c_d", "state/server/g/v"):
    assert k in f, k
assert abs(f["state/server/scaffold/c_g"][()]).sum() > 0
parties = [p for p in f["state/party"] if "scaffold_c_g" in f["state/party"][p]]
assert len(parties) >= 3, parties  # every party that took part has its variates
PY
  # Options from a config file arrive (the run's config.toml records them).
  cat >"$work/strat.toml" <<TOML
[train]
data = "$work/data.h5"
out = "$work/cfg"
rounds = 1
g-width = 8
d-width = 8
latent-dim = 16
local-steps = 1
client-strategy = "fednova"
prox-mu = 0.125
server-optimizer = "fedadagrad"
server-beta1 = 0.5
server-beta2 = 0.75
server-tau = 0.01
aggregator = "fedavg"
TOML
  "$fedgan" --config "$work/strat.toml" train --threads 1 >/dev/null 2>&1 || fail "config run"
  for kv in 'client-strategy="fednova"' 'prox-mu=0.125' 'server-optimizer="fedadagrad"' \
            'server-beta1=0.5' 'server-beta2=0.75' 'server-tau=0.01' 'aggregator="fedavg"'; do
    grep -qF "$kv" "$work/cfg/config.toml" || fail "config value $kv did not arrive"
  done
  # FedNova over unequal shards with --local-epochs (a party's steps differ).
  mpi 2 "$fedgan" train "${small[@]}" --client-strategy fednova --local-steps 0 --local-epochs 1 \
    --batch-size 64 --rounds 1 --out "$work/nova" >/dev/null 2>&1 || fail "fednova with epochs"
  expect_fail "--client-strategy: .*fedsgd" "$fedgan" train "${small[@]}" --client-strategy fedsgd \
    --out "$work/x"
  expect_fail "--prox-mu: -1 is negative" "$fedgan" train "${small[@]}" --prox-mu -1 --out "$work/x"
  expect_fail "--server-tau: 0 is not > 0" "$fedgan" train "${small[@]}" --server-tau 0 --out "$work/x"
  expect_fail "--server-beta2: 1 is outside \[0, 1\)" "$fedgan" train "${small[@]}" \
    --server-beta2 1 --out "$work/x"
  expect_fail "--server-optimizer: .*fedsgd" "$fedgan" train "${small[@]}" \
    --server-optimizer fedsgd --out "$work/x"
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
