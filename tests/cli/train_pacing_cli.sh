#!/usr/bin/env bash
# `fedgan train` with pacing (docs/reference.md, "Parties of different speeds"): simulated party
# speeds, compute-aware local steps, and buffered asynchronous aggregation (FedBuff) replayed on
# the simulated clock. Replay bit for bit at 1, 2 and 4 ranks; a buffer of all parties with no
# slowdown = synchronous FedAvg; resume and preemption = uninterrupted; a hung party and a
# failing party do not stop the others; the controller's decisions; bad input on every rank.
# usage: train_pacing_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: pacing_replay | pacing_sync_equal | pacing_resume | pacing_hung | pacing_nonfinite |
#         pacing_budget | pacing_controller | pacing_errors
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

# Parties 1 and 2 slowed 4x and 2x on the simulated clock, a factor-1 step 10 ms.
slow=(--party-speed 1=4,2=2 --sim-step-seconds 0.01)
async=("${small[@]}" "${slow[@]}" --async-buffer 2 --sample-every 0)
# column NAME FILE: one column of a CSV file, by header name
column() {
  "$python" - "$1" "$2" <<'PY'
import csv, sys
print(" ".join(r[sys.argv[1]] for r in csv.DictReader(open(sys.argv[2]))))
PY
}

case "$case" in
pacing_replay)
  # The order of arrivals is computed, not raced: 1, 2 and 4 ranks give the same model, the same
  # arrivals and the same staleness, bit for bit.
  for n in 1 2 4; do
    mpi "$n" "$fedgan" train "${async[@]}" --rounds 6 --out "$work/r$n" >"$work/log$n" 2>&1 \
      || { cat "$work/log$n"; fail "async run at $n ranks"; }
  done
  same_models "$work/r1/checkpoints/latest.h5" "$work/r2/checkpoints/latest.h5"
  same_models "$work/r1/checkpoints/latest.h5" "$work/r4/checkpoints/latest.h5"
  for n in 2 4; do
    for c in party staleness steps sim_step_s; do
      [ "$(column $c "$work/r1/party_times.csv")" = "$(column $c "$work/r$n/party_times.csv")" ] \
        || fail "party_times.csv column $c differs between 1 and $n ranks"
    done
  done
  # The slow parties arrive stale: party 1 (4x) trained from the start model and arrives in
  # server step 5, four versions late (the schedule of tests/unit/federated/test_pacing.cpp).
  "$python" - "$work/r1/party_times.csv" "$work/r1/metrics.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
late = [r for r in rows if r["party"] == "1"]
assert late and late[0]["round"] == "5" and late[0]["staleness"] == "4", late
m = list(csv.DictReader(open(sys.argv[2])))
assert [r["staleness_max"] for r in m] == ["0", "1", "1", "1", "4", "2"], [r["staleness_max"] for r in m]
# The simulated clock: buffer 6 completes at t = 10 factor-1 steps (2 local steps each) of 10 ms.
assert abs(float(m[-1]["sim_time_s"]) - 0.1) < 1e-9, m[-1]["sim_time_s"]
print("arrivals and staleness as computed")
PY
  grep -q "SIMULATION: party speeds 1=4,2=2" "$work/log1" || fail "the log does not label the simulation"
  # Balanced arrival weights: exact at 1 and 2 ranks too, and another model than by samples.
  for n in 1 2; do
    mpi "$n" "$fedgan" train "${async[@]}" --async-weighting balanced --rounds 6 \
      --out "$work/b$n" >/dev/null 2>&1 || fail "balanced run at $n ranks"
  done
  same_models "$work/b1/checkpoints/latest.h5" "$work/b2/checkpoints/latest.h5"
  ! compare "$work/r1/checkpoints/latest.h5" "$work/b1/checkpoints/latest.h5" 0 >/dev/null 2>&1 \
    || fail "balanced weights changed nothing"
  ;;
pacing_sync_equal)
  # K = all parties, no slowdown, no staleness weighting: each buffer is a synchronous round.
  mpi 2 "$fedgan" train "${small[@]}" --rounds 4 --sample-every 0 --out "$work/sync" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" --rounds 4 --sample-every 0 --async-buffer 4 \
    --staleness none --out "$work/async" >/dev/null 2>&1
  same_models "$work/sync/checkpoints/latest.h5" "$work/async/checkpoints/latest.h5"
  # With staleness weighting and equal speeds nothing is ever stale: still the same.
  mpi 1 "$fedgan" train "${small[@]}" --rounds 4 --sample-every 0 --async-buffer 4 \
    --out "$work/async_sqrt" >/dev/null 2>&1
  same_models "$work/sync/checkpoints/latest.h5" "$work/async_sqrt/checkpoints/latest.h5"
  ;;
pacing_resume)
  # Stopped between server steps with parties in flight (trained from older versions) and
  # resumed, or preempted in the middle of a buffer: the same model as straight through.
  mpi 2 "$fedgan" train "${async[@]}" --rounds 7 --checkpoint-every 3 --out "$work/full" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${async[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1
  "$python" - "$work/part/checkpoints/latest.h5" <<'PY'
import h5py, sys
keys = [k for k in h5py.File(sys.argv[1])["state/server/async/version"]]
print("versions in flight at round 4:", sorted(keys, key=int))
assert len(keys) >= 2, keys  # a stale party's start model is kept with the newest one
PY
  mpi 2 "$fedgan" train "${async[@]}" --rounds 7 --checkpoint-every 2 --out "$work/part" --resume \
    >/dev/null 2>&1
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  # Another buffer or speed would replay another schedule: refused, as other run-defining settings.
  expect_fail "async-buffer: '3' now, '2' in the run being resumed" \
    mpi 2 "$fedgan" train "${async[@]}" --async-buffer 3 --rounds 9 --out "$work/part" --resume
  set +e
  mpi 2 "$fedgan" train "${async[@]}" --rounds 7 --checkpoint-every 2 --debug-stop-round 6 \
    --out "$work/stop" >"$work/log" 2>&1
  rc=$?; set -e
  [ "$rc" -eq 3 ] || { cat "$work/log"; fail "expected exit 3 after the stop in round 6, got $rc"; }
  mpi 2 "$fedgan" train "${async[@]}" --rounds 7 --checkpoint-every 2 --out "$work/stop" \
    --resume auto >/dev/null 2>&1
  same_models "$work/full/checkpoints/latest.h5" "$work/stop/checkpoints/latest.h5"
  [ "$(column round "$work/full/party_times.csv")" = "$(column round "$work/stop/party_times.csv")" ] \
    || fail "party_times.csv of the resumed run differs"
  ;;
pacing_hung)
  # Party 3 never finishes: asynchronous aggregation goes on without it, and its update is never
  # applied; a synchronous round would wait forever and is refused; a time budget sits it out.
  mpi 2 "$fedgan" train "${small[@]}" --sample-every 0 --rounds 5 --async-buffer 2 \
    --party-speed 3=inf --out "$work/async" >"$work/log" 2>&1 || { cat "$work/log"; fail "async with a hung party"; }
  [ "$(grep -c '^[0-9]*,3,' "$work/async/party_times.csv" || true)" -eq 0 ] || fail "the hung party arrived"
  [ "$(wc -l <"$work/async/metrics.csv")" -eq 6 ] || fail "5 server steps expected"
  expect_fail "a synchronous round waits for every party" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 2 --party-speed 3=inf --out "$work/sync"
  mpi 2 "$fedgan" train "${small[@]}" --sample-every 0 --rounds 2 --party-speed 3=inf \
    --round-time-budget 0.1 --sim-step-seconds 0.01 --out "$work/budget" >/dev/null 2>&1
  [ "$(column party "$work/budget/party_times.csv")" = "0 1 2 0 1 2" ] || fail "party 3 should sit out"
  ;;
pacing_nonfinite)
  # A party whose training fails (NaN in its 2nd session): with --skip-nonfinite its update is
  # dropped and the buffer applies the others; without it every rank stops with the reason.
  mpi 2 "$fedgan" train "${async[@]}" --rounds 5 --debug-nan-party 0 --debug-nan-round 2 \
    --skip-nonfinite --out "$work/skip" >"$work/log" 2>&1 || { cat "$work/log"; fail "skip run"; }
  [ "$(column skipped "$work/skip/metrics.csv")" = "0 1 0 0 0" ] || fail "one dropped update expected in step 2"
  grep -q '^2,0,.*,0$' "$work/skip/party_times.csv" || fail "party_times.csv should record the failed session"
  expect_fail "party 0 produced a non-finite update" \
    mpi 2 "$fedgan" train "${async[@]}" --rounds 3 --debug-nan-party 0 --debug-nan-round 2 \
    --out "$work/stop"
  ;;
pacing_budget)
  # Compute-aware rounds: steps = floor(budget / (10 ms x speed)): 0.1 s -> 10, 2 (4x), 5 (2x);
  # exact at 1 and 2 ranks, with FedNova normalising the unequal steps.
  b=(--round-time-budget 0.1 "${slow[@]}" --client-strategy fednova --sample-every 0 --rounds 3)
  mpi 1 "$fedgan" train "${small[@]}" "${b[@]}" --out "$work/b1" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" "${b[@]}" --out "$work/b2" >/dev/null 2>&1
  same_models "$work/b1/checkpoints/latest.h5" "$work/b2/checkpoints/latest.h5"
  [ "$(column steps "$work/b1/party_times.csv")" = "10 2 5 10 10 2 5 10 10 2 5 10" ] \
    || fail "steps $(column steps "$work/b1/party_times.csv")"
  # The speeds from a config file's [[party]] tables instead: the same run.
  printf '[train]\nsim-step-seconds = 0.01\n[[party]]\nid = 0\n[[party]]\nid = 1\nspeed = 4\n[[party]]\nid = 2\nspeed = 2\n[[party]]\nid = 3\n' >"$work/speeds.toml"
  mpi 1 "$fedgan" --config "$work/speeds.toml" train "${small[@]}" --round-time-budget 0.1 \
    --client-strategy fednova --sample-every 0 --rounds 3 --out "$work/b1c" >/dev/null 2>&1
  same_models "$work/b1/checkpoints/latest.h5" "$work/b1c/checkpoints/latest.h5"
  [ "$(column speed "$work/b1c/party_times.csv")" = "1 4 2 1 1 4 2 1 1 4 2 1" ] || fail "[[party]] speed"
  # The simulated round: every party within one step of the budget, 0.1 s each round.
  [ "$(column sim_round_s "$work/b1/metrics.csv")" = "0.1 0.1 0.1" ] \
    || fail "sim_round_s $(column sim_round_s "$work/b1/metrics.csv")"
  # Measured: the first round calibrates (planned steps), later rounds follow the measurement.
  mpi 2 "$fedgan" train "${small[@]}" --round-time-budget 0.5 --party-speed 1=4 --sample-every 0 \
    --rounds 3 --local-steps 6 --out "$work/measured" >/dev/null 2>&1
  "$python" - "$work/measured/party_times.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
first = [int(r["steps"]) for r in rows if r["round"] == "1"]
assert first == [6, 6, 6, 6], first
for r in rows:
    if r["round"] != "1":
        # steps follow the last measured time x speed; the slowed party gets fewer
        assert int(r["steps"]) >= 1
slow = [int(r["steps"]) for r in rows if r["round"] == "3" and r["party"] == "1"]
fast = [int(r["steps"]) for r in rows if r["round"] == "3" and r["party"] == "0"]
assert slow[0] < fast[0], (slow, fast)
print("measured steps", [(r["round"], r["party"], r["steps"]) for r in rows])
PY
  ;;
pacing_controller)
  # The controller: a party whose training fails (NaN, skipped) is quarantined for 3 rounds and
  # re-admitted; the parties' agreement raises the local steps; every decision is logged with
  # its signal and kept in decisions.csv; a resumed run decides as an uninterrupted one.
  ctl=("${small[@]}" --sample-every 0 --auto all --debug-nan-party 2 --debug-nan-round 2 --skip-nonfinite)
  mpi 2 "$fedgan" train "${ctl[@]}" --rounds 8 --checkpoint-every 4 --out "$work/full" >"$work/log" 2>&1 \
    || { cat "$work/log"; fail "controller run"; }
  grep -q "controller: round 2: quarantine: exclude party 2 for rounds 3..5 (signal: party 2 update is not finite" "$work/log" \
    || { cat "$work/log"; fail "no quarantine decision"; }
  grep -q "controller: round 5: quarantine: re-admit party 2" "$work/log" || fail "no re-admission"
  [ "$(column party "$work/full/party_times.csv" | tr ' ' '\n' | grep -c '^2$')" -eq 5 ] \
    || fail "party 2 should train in rounds 1, 2, 6, 7, 8 only"
  grep -q "^[0-9]*,steps," "$work/full/decisions.csv" || fail "no steps decision in decisions.csv"
  mpi 2 "$fedgan" train "${ctl[@]}" --rounds 4 --checkpoint-every 4 --out "$work/part" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${ctl[@]}" --rounds 8 --checkpoint-every 4 --out "$work/part" --resume >/dev/null 2>&1
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  cmp "$work/full/decisions.csv" "$work/part/decisions.csv" || fail "the resumed run decided otherwise"
  expect_fail "--auto server-lr with --server-optimizer fedadam" \
    mpi 2 "$fedgan" train "${small[@]}" --auto server-lr --server-optimizer fedadam --out "$work/e"
  expect_fail "--auto steps with --async-buffer" \
    mpi 2 "$fedgan" train "${small[@]}" --auto all --async-buffer 2 --out "$work/e"
  expect_fail "--auto quarantine with --secure-agg" \
    mpi 2 "$fedgan" train "${small[@]}" --auto quarantine --secure-agg --secagg-range 1 --out "$work/e"
  expect_fail "--auto" mpi 2 "$fedgan" train "${small[@]}" --auto quarantine,bogus --out "$work/e"
  ;;
pacing_errors)
  # Bad pacing settings: a clear error on every rank before anything trains.
  expect_fail "--party-speed: '1=fast'|factor 'fast'" mpi 2 "$fedgan" train "${small[@]}" --party-speed 1=fast --out "$work/e"
  expect_fail "party 7 is not one of the 4 parties" mpi 2 "$fedgan" train "${small[@]}" --party-speed 7=2 --out "$work/e"
  expect_fail "party 1 is given twice" mpi 2 "$fedgan" train "${small[@]}" --party-speed 1=2,1=3 --out "$work/e"
  expect_fail "larger than the 4 parties" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 5 --out "$work/e"
  expect_fail "--async-buffer with --dp-clip" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --dp-clip 1 --dp-noise-multiplier 1 --out "$work/e"
  expect_fail "--async-buffer with --secure-agg" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --secure-agg --secagg-range 1 --out "$work/e"
  expect_fail "--async-buffer with --participation" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --participation 0.5 --out "$work/e"
  expect_fail "--async-buffer with --client-strategy scaffold" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --client-strategy scaffold --out "$work/e"
  expect_fail "--async-buffer with --round-time-budget" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --round-time-budget 1 --out "$work/e"
  expect_fail "each buffer aggregates 2 updates" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --aggregator trimmed-mean --trim-beta 0.25 --out "$work/e"
  expect_fail "--federation distill: --party-speed" mpi 2 "$fedgan" train "${small[@]}" --federation distill --party-speed 0=2 --out "$work/e"
  expect_fail "--staleness" mpi 2 "$fedgan" train "${small[@]}" --async-buffer 2 --staleness linear --out "$work/e"
  expect_fail "--round-time-budget" mpi 2 "$fedgan" train "${small[@]}" --round-time-budget -1 --out "$work/e"
  ;;
*) fail "unknown case $case" ;;
esac
echo "ok: $case"
