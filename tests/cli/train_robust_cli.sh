#!/usr/bin/env bash
# `fedgan train` end to end on a small Fashion-MNIST subset: aggregation. Robust aggregators
# and simulated attacks, client strategies and server optimizers, non-finite updates, more
# ranks than the parties allow.
# usage: train_robust_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: robust | strategies | nonfinite | ranks
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

case "$case" in
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
ranks)
  # 4 ranks x 2 parties per rank, but the file has 4 parties: an agreed error, from rank 0.
  expect_fail "rank 0: $work/data.h5: has 4 parties, but 4 ranks x 2 parties per rank need 8" \
    mpi 4 "$fedgan" train "${small[@]}" --rounds 1 --parties-per-rank 2 --out "$work/run"
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
