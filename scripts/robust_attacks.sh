#!/usr/bin/env bash
# The attack table: FID (fedgan eval) after the same rounds with no attack (FedAvg), and with party 3 of
# 8 attacking (sign flip, scale 10), under FedAvg, median, trimmed mean and Krum. The runs
# fine-tune a pretrained generator (--init) on 8 IID parties, 2 ranks.
# usage: scripts/robust_attacks.sh FEDGAN DATA8 TEST EVALUATOR INIT OUTDIR [ROUNDS] [STEPS] [N]
#   DATA8: `fedgan prepare --parties 8` file; TEST: dataset for eval --data; INIT: checkpoint
set -euo pipefail
[ $# -ge 6 ] || { sed -n 5,6p "$0"; exit 2; }
fedgan="$1"; data="$2"; test_data="$3"; evaluator="$4"; init="$5"; out="$6"
rounds="${7:-5}"; steps="${8:-20}"; n="${9:-2000}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mkdir -p "$out"
common=(--data "$data" --init "$init" --rounds "$rounds" --local-steps "$steps" --batch-size 64
        --lr-g 0.0005 --lr-d 0.0005 --beta1 0.5 --g-width 32 --d-width 32 --latent-dim 64
        --checkpoint-every 1000 --sample-every 1000 --threads 1 --force
        --trim-beta 0.125 --krum-f 1)
printf "%-13s %-10s %9s %8s\n" aggregator attack FID_all train_s
for agg in fedavg median trimmed-mean krum; do
  attacks=(sign-flip scale:10)
  # The clean baseline under FedAvg only, unless ROBUST_CLEAN_ALL=1 (a clean run per rule).
  [ "$agg" = fedavg ] || [ "${ROBUST_CLEAN_ALL:-0}" = 1 ] && attacks=(none "${attacks[@]}")
  for attack in "${attacks[@]}"; do
    name="${agg}_${attack/:/}"
    extra=()
    [ "$attack" = none ] || extra=(--attack "$attack" --attackers 3)
    start=$(date +%s.%N)
    if ! mpirun --oversubscribe -n 2 "$fedgan" train "${common[@]}" --aggregator "$agg" \
      "${extra[@]}" --out "$out/$name" >"$out/$name.log" 2>&1; then
      # A spoiled model (e.g. all-NaN samples) ends the run: say so instead of a figure.
      printf "%-13s %-10s %9s %8s  %s\n" "$agg" "$attack" "-" "-" \
        "$(grep -m1 -o 'error\] .*' "$out/$name.log" | cut -c1-100)"
      continue
    fi
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    fid=$(mpirun --oversubscribe -n 2 "$fedgan" eval --checkpoint "$out/$name/checkpoints/latest.h5" \
      --data "$test_data" --evaluator "$evaluator" --n "$n" --json 2>/dev/null \
      | /usr/bin/python3 -c "import json,sys; print('%.2f' % json.loads(sys.stdin.read())['fid_all'])")
    printf "%-13s %-10s %9s %8.1f\n" "$agg" "$attack" "$fid" "$secs"
  done
done
