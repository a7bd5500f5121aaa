#!/usr/bin/env bash
# The quality cost of client-level DP: the same federated fine-tune (1,000 parties, q = 0.2,
# 10 rounds, warm start from a public pretrained model) without DP and at epsilon ~ 1, 3, 10
# (noise multiplier from `fedgan privacy --target-epsilon`), each scored by `fedgan eval`.
# usage: scripts/privacy_quality.sh FEDGAN DATA PRETRAINED EVALUATOR OUT
#   DATA: a dataset file with 1,000 parties (fedgan prepare --parties 1000 ...)
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 FEDGAN DATA PRETRAINED EVALUATOR OUT" >&2; exit 2; }
fedgan="$1"; data="$2"; init="$3"; evaluator="$4"; out="$5"
mkdir -p "$out"
q=0.2; rounds=10; delta=1e-4; clip=0.5
mpi=(mpirun --oversubscribe -n 2)
base=(--data "$data" --init "$init" --g-width 32 --d-width 32 --latent-dim 64 --rounds "$rounds"
      --local-steps 3 --batch-size 16 --lr-g 0.0005 --lr-d 0.0005 --beta1 0.5 --threads 1
      --participation "$q" --checkpoint-every 100 --sample-every 100 --force)
fid() {
  "$fedgan" eval --checkpoint "$1/checkpoints/latest.h5" --data "$data" --evaluator "$evaluator" \
    --n 2000 --json | /usr/bin/python3 -c "import json,sys; j=json.load(sys.stdin); print(f\"{j['fid_all']:.2f} {j['kid']:.4f}\")"
}
echo "| run | z | epsilon (delta $delta) | FID-all | KID | peak RSS per rank (MB) | wall (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run() {  # run NAME EPSILON_TARGET|none
  local name="$1" target="$2" z=- eps=- dp=()
  if [ "$target" != none ]; then
    z="$("$fedgan" privacy --q "$q" --rounds "$rounds" --delta "$delta" --target-epsilon "$target" --json \
         | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['noise_multiplier'])")"
    dp=(--dp-clip "$clip" --dp-noise-multiplier "$z" --dp-delta "$delta")
  fi
  local t0; t0=$(date +%s)
  # Each rank's peak resident memory, from /usr/bin/time, into OUT/NAME.rss.<rank>.
  "${mpi[@]}" sh -c 'exec /usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$out/$name" \
    "$fedgan" train "${base[@]}" "${dp[@]}" --out "$out/$name" >"$out/$name.log" 2>&1
  local wall=$(( $(date +%s) - t0 ))
  [ "$target" != none ] && eps="$(tail -1 "$out/$name/metrics.csv" | awk -F, '{print $21}')"
  local rss; rss="$(cat "$out/$name".rss.* | awk '{printf "%s%d", (NR>1?" / ":""), $1/1024}')"
  read -r f k <<<"$(fid "$out/$name")"
  echo "| $name | $z | $eps | $f | $k | $rss | $wall |"
}
run nodp none
run eps10 10
run eps3 3
run eps1 1
