#!/usr/bin/env bash
# Scaling harness: runs `fedgan train` over a grid of rank counts, strong (fixed total parties)
# and weak (fixed parties per rank), runs the aggregation micro-benchmark at the same rank counts,
# and hands the runs to scripts/scaling_report.py (one CSV, PNG plots, report.md).
# Here it launches with mpirun; inside a Slurm job with srun (slurm/scaling_array.sbatch runs one
# grid point per array task, then a gather job runs `bench` and `report`).
#
# usage: scripts/scaling.sh [all|list|prepare|point I|bench|report|submit] [options] [-- train flags]
#   all        prepare, every grid point, bench, report (default)
#   list       print the grid: index mode ranks parties_per_rank parties
#   point I    run grid point I only (a Slurm array task: I = $SLURM_ARRAY_TASK_ID)
#   bench      bench_aggregate --json at every rank count -> OUT/bench_aggregate.jsonl
#   report     OUT/scaling.csv, OUT/bench_aggregate.csv, OUT/*.png, OUT/report.md
#   submit     sbatch the array (one task per point) and a gather job after it
# options (each also from the environment variable in brackets, e.g. for sbatch --export):
#   --ranks "1 2 4"         rank counts [SCALING_RANKS]
#   --mode both             strong | weak | both [SCALING_MODE]
#   --parties 8             strong scaling: total parties, divisible by every rank count [SCALING_PARTIES]
#   --parties-per-rank 2    weak scaling: parties per rank [SCALING_PPR]
#   --rounds 6              rounds per run; round 1 is warm-up, left out of the summaries [SCALING_ROUNDS]
#   --threads 1             intra-op threads per rank [SCALING_THREADS]
#   --out runs/scaling      output folder [SCALING_OUT]
#   --data FILE             dataset (default OUT/data_pN.h5, N iid parties of the Fashion-MNIST test split) [SCALING_DATA]
#   --fedgan BIN            default build/release/fedgan [FEDGAN_BIN]
#   --bench BIN|none        default build/release/bench_aggregate; none skips it [SCALING_BENCH]
#   --bench-reps N          repetitions of bench_aggregate (default: its own) [SCALING_BENCH_REPS]
#   --launcher mpirun|srun  default srun inside a Slurm job, else mpirun [SCALING_LAUNCHER]
#                           (extra flags: SCALING_MPIRUN_ARGS, SCALING_SRUN_ARGS; MPIEXEC: the mpirun)
#   -- FLAGS                extra `fedgan train` flags, after the defaults (the last one wins)
# Model and local work per party are fixed (SCALING_TRAIN_ARGS, default below), so that a party
# costs the same at every grid point: --local-steps, not --local-epochs.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '/^# usage:/,/^# Model/{/^# Model/d;s/^# \{0,1\}//;p}' "$0"; exit "${1:-2}"; }

cmd=all
case "${1:-}" in
  all | list | prepare | bench | report | submit) cmd="$1"; shift ;;
  point) cmd=point; point_index="${2:?point needs an index}"; shift 2 ;;
  -h | --help) usage 0 ;;
esac

ranks="${SCALING_RANKS:-1 2 4}"
mode="${SCALING_MODE:-both}"
parties="${SCALING_PARTIES:-8}"
ppr="${SCALING_PPR:-2}"
rounds="${SCALING_ROUNDS:-6}"
threads="${SCALING_THREADS:-1}"
out="${SCALING_OUT:-runs/scaling}"
data="${SCALING_DATA:-}"
fedgan="${FEDGAN_BIN:-build/release/fedgan}"
bench="${SCALING_BENCH:-build/release/bench_aggregate}"
bench_reps="${SCALING_BENCH_REPS:-}"
launcher="${SCALING_LAUNCHER:-}"
read -r -a train_args <<<"${SCALING_TRAIN_ARGS:---local-steps 4 --batch-size 32 --g-width 16 --d-width 16 --latent-dim 32}"

while (($#)); do
  case "$1" in
    --ranks) ranks="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --parties) parties="$2"; shift 2 ;;
    --parties-per-rank) ppr="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --fedgan) fedgan="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    --bench-reps) bench_reps="$2"; shift 2 ;;
    --launcher) launcher="$2"; shift 2 ;;
    --) shift; train_args+=("$@"); break ;;
    -h | --help) usage 0 ;;
    *) echo "scaling: unknown option $1" >&2; usage ;;
  esac
done
if [ -z "$launcher" ]; then
  if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then launcher=srun; else launcher=mpirun; fi
fi
case "$mode" in strong) modes=(strong) ;; weak) modes=(weak) ;; both) modes=(strong weak) ;;
  *) echo "scaling: --mode is strong, weak or both, not '$mode'" >&2; exit 2 ;; esac
python="${FEDGAN_PYTHON:-/usr/bin/python3}"  # Debian's, which has python3-matplotlib (not a pyenv python3 on PATH)

# The grid, one line per point: index mode ranks parties_per_rank parties.
grid() {
  local i=0 m r p
  for m in "${modes[@]}"; do
    for r in $ranks; do
      if [ "$m" = strong ]; then
        if ((parties % r)); then
          echo "scaling: strong scaling needs --parties ($parties) divisible by every rank count ($r)" >&2
          exit 2
        fi
        p=$((parties / r))
      else
        p=$ppr
      fi
      echo "$i $m $r $p $((r * p))"
      i=$((i + 1))
    done
  done
}
grid_lines="$(grid)"
max_ranks=$(tr ' ' '\n' <<<"$ranks" | sort -n | tail -n 1)
max_parties=$(awk '{ if ($5 > m) m = $5 } END { print m }' <<<"$grid_lines")
# The default file's name holds its party count, so a bigger grid prepares a new one.
data="${data:-$out/data_p$max_parties.h5}"

# Cores here, counted before OMP_NUM_THREADS is set (GNU nproc honours it).
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
# Root in containers/CI: Open MPI refuses to start without these (harmless otherwise).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS="$threads"

# launch R CMD...: R ranks of CMD with the chosen launcher.
launch() {
  local n="$1"; shift
  if [ "$launcher" = srun ]; then
    local nodes=()
    # Pack ranks onto as few nodes as the allocation's tasks per node allow, so that a small
    # point does not spread one rank per node across a bigger allocation.
    if [ -n "${SLURM_NTASKS_PER_NODE:-}" ] && [[ "$SLURM_NTASKS_PER_NODE" =~ ^[0-9]+$ ]]; then
      nodes=(--nodes=$(((n + SLURM_NTASKS_PER_NODE - 1) / SLURM_NTASKS_PER_NODE)))
    fi
    # shellcheck disable=SC2086  # SCALING_SRUN_ARGS is a list of srun flags
    srun --ntasks="$n" "${nodes[@]}" --cpus-per-task="${SLURM_CPUS_PER_TASK:-$threads}" \
      ${SCALING_SRUN_ARGS:-} "$@" </dev/null
  else
    # shellcheck disable=SC2086
    "${MPIEXEC:-mpirun}" --oversubscribe -n "$n" ${SCALING_MPIRUN_ARGS:-} "$@" </dev/null
  fi
}

# More threads than cores on this machine? (Under srun, Slurm gives every task its own CPUs.)
oversubscribed() {
  if [ "$launcher" = srun ]; then echo 0; else echo $((($1 * threads) > cores ? 1 : 0)); fi
}

check_binary() {
  [ -x "$1" ] || {
    echo "scaling: $1 is missing; build it first (scripts/setup.sh release), not inside a job" >&2
    exit 1
  }
}

prepare() {
  check_binary "$fedgan"
  mkdir -p "$out" "$(dirname "$data")"
  # Array tasks may start together: one prepares, the others wait for the lock.
  (
    flock 9
    if [ ! -f "$data" ]; then
      echo "scaling: preparing $data ($max_parties iid parties of the Fashion-MNIST test split)"
      "$fedgan" prepare --split test --parties "$max_parties" --partition iid --seed 0 \
        --out "$data" >/dev/null
    fi
  ) 9>"$out/.prepare.lock"
}

run_point() {
  local line i m r p total dir
  line="$(awk -v i="$1" '$1 == i' <<<"$grid_lines")"
  [ -n "$line" ] || { echo "scaling: no grid point $1 (scripts/scaling.sh list)" >&2; exit 2; }
  read -r i m r p total <<<"$line"
  dir="$out/runs/${m}_r${r}_p${p}"
  mkdir -p "$dir"
  echo "scaling: point $i: $m, $r ranks x $p parties ($total parties), $threads thread(s)/rank, $launcher$( (($(oversubscribed "$r"))) && echo ", oversubscribed on $cores cores")"
  # Samples and checkpoints only at the last round: file writing stays out of timed rounds.
  launch "$r" "$fedgan" --threads "$threads" train --data "$data" --out "$dir" --force \
    --rounds "$rounds" --parties-per-rank "$p" --sample-every "$rounds" \
    --checkpoint-every "$rounds" "${train_args[@]}" >"$dir.stdout" 2>&1 || {
    tail -n 20 "$dir.stdout" >&2
    echo "scaling: point $i failed (log: $dir.stdout)" >&2
    exit 1
  }
  # What the report needs to know about the point besides metrics.csv.
  cat >"$dir/point.txt" <<EOF
mode=$m
ranks=$r
parties_per_rank=$p
parties=$total
threads=$threads
oversubscribed=$(oversubscribed "$r")
launcher=$launcher
nodes=${SLURM_JOB_NUM_NODES:-1}
host=$(hostname)
cores=$cores
rounds=$rounds
train_args=${train_args[*]}
EOF
}

run_bench() {
  [ "$bench" != none ] || return 0
  check_binary "$bench"
  local args=(--json) r
  [ -z "$bench_reps" ] || args+=(--reps "$bench_reps")
  mkdir -p "$out"
  : >"$out/bench_aggregate.jsonl.tmp"
  for r in $ranks; do
    echo "scaling: bench_aggregate at $r ranks"
    launch "$r" "$bench" "${args[@]}" >>"$out/bench_aggregate.jsonl.tmp"
  done
  mv "$out/bench_aggregate.jsonl.tmp" "$out/bench_aggregate.jsonl"
}

report() {
  "$python" scripts/scaling_report.py "$out" --cores "$cores" --threads "$threads"
}

case "$cmd" in
  list) echo "# index mode ranks parties_per_rank parties"; echo "$grid_lines" ;;
  prepare) prepare ;;
  point) prepare; run_point "$point_index" ;;
  bench) run_bench ;;
  report) report ;;
  all)
    prepare
    # (launch reads nothing from stdin, so the loop keeps its lines)
    while read -r i _; do run_point "$i"; done <<<"$grid_lines"
    run_bench
    report
    ;;
  submit)
    # One array task per point, each allocation big enough for the largest point; the gather job
    # (same script, no --array) runs the benchmark and the report once every task has ended.
    command -v sbatch >/dev/null || { echo "scaling: submit needs Slurm's sbatch" >&2; exit 1; }
    export SCALING_RANKS="$ranks" SCALING_MODE="$mode" SCALING_PARTIES="$parties" SCALING_PPR="$ppr"
    export SCALING_ROUNDS="$rounds" SCALING_THREADS="$threads" SCALING_OUT="$out" SCALING_DATA="$data"
    export FEDGAN_BIN="$fedgan" SCALING_BENCH="$bench" SCALING_BENCH_REPS="$bench_reps"
    export SCALING_TRAIN_ARGS="${train_args[*]}"
    prepare
    n=$(wc -l <<<"$grid_lines")
    # SCALING_SBATCH_ARGS: more sbatch flags for both jobs, e.g. "--gpus-per-task=1 --partition=gpu".
    read -r -a sbatch_args <<<"${SCALING_SBATCH_ARGS:-}"
    jid=$(sbatch --parsable --ntasks="$max_ranks" ${sbatch_args[@]+"${sbatch_args[@]}"} \
      --array="0-$((n - 1))" slurm/scaling_array.sbatch)
    gid=$(sbatch --parsable --ntasks="$max_ranks" ${sbatch_args[@]+"${sbatch_args[@]}"} \
      --dependency="afterany:${jid%%;*}" slurm/scaling_array.sbatch)
    echo "scaling: array job $jid ($n points), gather job $gid; report in $out/report.md"
    ;;
esac
