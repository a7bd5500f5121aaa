#!/usr/bin/env bash
# The epsilon table of client-level DP-FedAvg for a federation of P parties: every (q, z,
# rounds) of the grid through `fedgan privacy --json` (RDP accountant, Balle et al. 2020), at
# delta = 1/(10 P), train's default. Prints a Markdown table.
# usage: scripts/privacy_table.sh FEDGAN [PARTIES]   (e.g. build/release/fedgan 1000)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 FEDGAN [PARTIES]" >&2; exit 2; }
fedgan="$1"; parties="${2:-1000}"
delta="$(/usr/bin/python3 -c "print(1 / (10 * $parties))")"
echo "P = $parties parties, delta = $delta; epsilon (best RDP order) for q = participation, z = noise multiplier"
echo
echo "| q | m = qP | z | 100 rounds | 500 rounds | 1000 rounds |"
echo "| --- | --- | --- | --- | --- | --- |"
for q in 0.01 0.05 0.1; do
  for z in 0.8 1.0 1.5 3.0; do
    row="| $q | $(/usr/bin/python3 -c "print(round($q * $parties))") | $z |"
    for rounds in 100 500 1000; do
      cell="$("$fedgan" privacy --q "$q" --noise-multiplier "$z" --rounds "$rounds" \
              --delta "$delta" --json | /usr/bin/python3 -c \
              "import json,sys; j=json.load(sys.stdin); print(f\"{j['epsilon']:.3g} ({j['order']:g})\")")"
      row="$row $cell |"
    done
    echo "$row"
  done
done
