#!/usr/bin/env bash
# `fedgan train` end to end on a small Fashion-MNIST subset: resuming and stopping. Bit-exact
# resume (also with per-party optimizer state and BN statistics, at 3 ranks), SIGUSR1
# preemption, SIGTERM to a rank or to mpirun, SIGKILL of a rank.
# usage: train_resume_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: resume | resume_keep | preempt | preempt_keep | sigterm | fault
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

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
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
