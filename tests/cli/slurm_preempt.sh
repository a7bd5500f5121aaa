#!/usr/bin/env bash
# Runs the training batch scripts under stand-ins for srun, scontrol and fedgan, and checks the
# preemption protocol: USR1 to the batch shell reaches fedgan, fedgan's exit code 3 makes the
# script requeue the job, a normal end or an error does not, and the requeue limit holds.
# usage: slurm_preempt.sh REPO_ROOT WORKDIR
set -euo pipefail
root="$(cd "${1:?usage: slurm_preempt.sh REPO_ROOT WORKDIR}" && pwd)"
work="${2:?usage: slurm_preempt.sh REPO_ROOT WORKDIR}"
mkdir -p "$work"; work="$(cd "$work" && pwd)/slurm_preempt"; rm -rf "$work"; mkdir -p "$work/bin"
fail() { echo "FAIL: $*" >&2; exit 1; }

# srun: drops its own --flags and becomes the program (same pid, so signals reach it).
cat >"$work/bin/srun" <<'SH'
#!/usr/bin/env bash
while [[ "${1:-}" == -* ]]; do shift; done
exec "$@"
SH
cat >"$work/bin/scontrol" <<'SH'
#!/usr/bin/env bash
echo "$*" >>"$FAKE_LOG/scontrol"
SH
# fedgan: records its arguments; FAKE_MODE=signal waits for USR1 and exits 3 as fedgan does after
# its checkpoint; finish exits 0; error exits 1.
cat >"$work/bin/fedgan" <<'SH'
#!/usr/bin/env bash
echo "$*" >"$FAKE_LOG/fedgan.args"
case "$FAKE_MODE" in finish) exit 0 ;; error) exit 1 ;; esac
trap 'echo "fake fedgan: checkpoint"; exit 3' USR1
echo ready >"$FAKE_LOG/ready"
for _ in $(seq 200); do sleep 0.05; done
exit 0
SH
chmod +x "$work/bin/"*

# run SCRIPT MODE [RESTARTS]: the batch script as Slurm would start it; sets rc and log.
run() {
  local script="$1" mode="$2" restarts="${3:-0}"
  log="$work/$(basename "$script" .sbatch)_$mode"; rm -rf "$log"; mkdir -p "$log"
  set +e
  env PATH="$work/bin:$PATH" FAKE_LOG="$log" FAKE_MODE="$mode" FEDGAN_BIN="$work/bin/fedgan" \
    SLURM_SUBMIT_DIR="$root" SLURM_JOB_ID=4242 SLURM_NTASKS=2 SLURM_CPUS_PER_TASK=3 \
    SLURM_JOB_NODELIST=node1 SLURM_RESTART_COUNT="$restarts" FEDGAN_ARGS="--rounds 7" \
    bash "$root/$script" >"$log/out" 2>&1 &
  local pid=$!
  if [ "$mode" = signal ]; then
    for _ in $(seq 100); do [ -f "$log/ready" ] && break; sleep 0.05; done
    [ -f "$log/ready" ] || fail "$script: fake fedgan did not start"
    kill -USR1 "$pid"  # what --signal=B:USR1@120 does: the batch shell only
  fi
  wait "$pid"; rc=$?
  set -e
}

for script in slurm/single_node.sbatch slurm/multi_node.sbatch; do
  run "$script" signal
  ((rc == 0)) || { cat "$log/out"; fail "$script: exit $rc after a checkpoint, expected 0"; }
  grep -qx "requeue 4242" "$log/scontrol" 2>/dev/null || { cat "$log/out"; fail "$script: no requeue"; }
  grep -q "fake fedgan: checkpoint" "$log/out" || fail "$script: USR1 did not reach fedgan"
  args="$(cat "$log/fedgan.args")"
  for want in "--config configs/fashion_mnist.toml" "--threads 3" "train --resume auto" "--rounds 7"; do
    [[ "$args" == *"$want"* ]] || fail "$script: fedgan got '$args', lacks '$want'"
  done
  echo "ok: $script: USR1 -> checkpoint -> requeue"

  run "$script" finish
  if ((rc != 0)) || [ -f "$log/scontrol" ]; then fail "$script: normal end: exit $rc or requeued"; fi
  run "$script" error
  if ((rc != 1)) || [ -f "$log/scontrol" ]; then fail "$script: error: exit $rc (expected 1) or requeued"; fi
  run "$script" signal 20
  if ((rc != 3)) || [ -f "$log/scontrol" ]; then fail "$script: requeue limit: exit $rc or requeued"; fi
  echo "ok: $script: normal end, error and requeue limit"
done
