#!/usr/bin/env bash
# Cost of the robust aggregators against FedAvg on 2 ranks at 8 and 64 parties:
#  1. bench_robust: one aggregation of the default model's update (one rule per process, so
#     each peak RSS is that rule's own), time and memory per rank;
#  2. fedgan train: rounds of the default model with 2 local steps per party; the mean round
#     time (wall_s) and aggregation time (aggregate_s) of rounds 2.. from metrics.csv.
# usage: scripts/bench_robust.sh BUILD_DIR DATA8 DATA64 OUTDIR [ROUNDS]
#   DATA8/DATA64: `fedgan prepare --parties 8` / `--parties 64` files
set -euo pipefail
[ $# -ge 4 ] || { sed -n 7,8p "$0"; exit 2; }
build="$1"; data8="$2"; data64="$3"; out="$4"; rounds="${5:-3}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mkdir -p "$out"
rules=(median trimmed-mean krum multi-krum norm-bound)
for p in 8 64; do
  for rule in "${rules[@]}"; do
    mpirun --oversubscribe -n 2 "$build/bench_robust" --parties "$p" --rules "$rule" --reps 5 \
      | { [ "$rule" = median ] && cat || grep -v '^#\|^rule\|^fedavg'; }
  done
done
echo
printf "%-13s %7s %10s %10s %12s\n" aggregator parties round_s agg_s overhead_s
for p in 8 64; do
  data="$data8"; [ "$p" = 64 ] && data="$data64"
  # The trimmed mean must trim at least one update per side (floor(beta*P) >= 1, else fedgan
  # refuses it): 0.125 of 8; the default 0.1 of 64 trims 6.
  beta=0.1; [ "$p" = 8 ] && beta=0.125
  base=""
  for agg in fedavg "${rules[@]}"; do
    mpirun --oversubscribe -n 2 "$build/fedgan" train --data "$data" --out "$out/train_${p}_$agg" \
      --force --rounds "$rounds" --local-steps 2 --checkpoint-every 1000 --sample-every 1000 \
      --threads 1 --aggregator "$agg" --trim-beta "$beta" --krum-f 1 >"$out/train_${p}_$agg.log" 2>&1 \
      || { tail -5 "$out/train_${p}_$agg.log"; exit 1; }
    read -r wall agg_s < <(/usr/bin/python3 - "$out/train_${p}_$agg/metrics.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))[1:]  # round 1 warms up
print(sum(float(r["wall_s"]) for r in rows) / len(rows),
      sum(float(r["aggregate_s"]) for r in rows) / len(rows))
PY
)
    [ -n "$base" ] || base="$wall"
    printf "%-13s %7d %10.3f %10.3f %12.3f\n" "$agg" "$p" "$wall" "$agg_s" \
      "$(echo "$wall - $base" | bc -l)"
  done
done
