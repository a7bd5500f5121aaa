#!/usr/bin/env bash
# `fedgan train` end to end on a small Fashion-MNIST subset: settings. Config files (and every
# shipped one), what a resumed run may change, an output folder in use, bad flag values.
# usage: train_config_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: config | configs | settings | badflags | refuse
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

case "$case" in
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
refuse)
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  expect_fail "holds another run" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run"
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" --force >/dev/null 2>&1
  expect_fail "latest.h5.*missing" "$fedgan" train "${small[@]}" --rounds 1 --out "$work/new" --resume
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
