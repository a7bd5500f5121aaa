#!/usr/bin/env bash
# Peak resident memory of each rank of one short `fedgan train` (the peak-RSS table of docs/results/memory.md,
# "Peak RSS per rank"): /usr/bin/time -f %M around every rank, then one line "NAME: R0 / R1 MB".
# usage: scripts/peak_rss.sh FEDGAN DATA OUT NAME [train options...]
#   e.g. scripts/peak_rss.sh build/release/fedgan data/p1000.h5 runs/rss keep --optimizer-state keep
# Base run: 2 ranks, width 32, 4 rounds of 1 local step, participation 0.2, one thread per rank;
# the options given after NAME are added (a later one overrides the base).
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 FEDGAN DATA OUT NAME [train options...]" >&2; exit 2; }
fedgan="$1"; data="$2"; out="$3"; name="$4"; shift 4
mkdir -p "$out"; rm -f "$out/$name".rss.*
export OMP_NUM_THREADS=1
mpirun --oversubscribe -n "${RANKS:-2}" \
  sh -c 'exec /usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$out/$name" \
  "$fedgan" train --data "$data" --g-width 32 --d-width 32 --latent-dim 64 --rounds 4 \
  --local-steps 1 --batch-size 16 --threads 1 --participation 0.2 --checkpoint-every 100 \
  --sample-every 100 --force --out "$out/$name" "$@" >"$out/$name.log" 2>&1 \
  || { tail -20 "$out/$name.log" >&2; exit 1; }
echo "$name: $(cat "$out/$name".rss.* | awk '{printf "%s%d", (NR>1?" / ":""), $1/1024}') MB"
