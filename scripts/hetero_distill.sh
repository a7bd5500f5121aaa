#!/usr/bin/env bash
# Architecture-heterogeneous parties by federated distillation against FedAvg, on the demo's
# small-data task (configs/small_data.toml: 4 parties, 15 rounds of 160 steps of batch 8, 2 ranks):
# FID-all every K rounds, wall time per round and bytes per party per round, for each seed.
#   fedavg         the recipe as it is (every party: G + D of width 32, BatchNorm; weights averaged)
#   distill-same   --federation distill, every party's own D the recipe's (dw=32, dn=batch)
#   distill-hetero --federation distill, parties' Ds of three architectures (cycled over parties)
#   distill-mean   distill-hetero with MD-GAN's averaged feedback (--feedback-combine mean)
# usage: scripts/hetero_distill.sh FEDGAN DATA EVALUATOR OUTDIR [SEEDS] [EVAL_EVERY] [MODES]
#   e.g. scripts/hetero_distill.sh build/ci/fedgan data/fmnist_target.h5 data/evaluator_fmnist.h5 runs/hetero "0 1" 5
#   TABLE_ONLY=1: print the table of runs already in OUTDIR
set -euo pipefail
[ $# -ge 4 ] || { sed -n 9,10p "$0"; exit 2; }
fedgan="$1"; data="$(realpath "$2")"; evaluator="$(realpath "$3")"; out="$4"
seeds="${5:-0 1}"; every="${6:-5}"; modes="${7:-fedavg distill-same distill-hetero}"
hetero="${HETERO_DS:-dw=32,dn=batch;dw=16,dn=spectral;dw=24,dn=none}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mkdir -p "$out"
python=/usr/bin/python3
for mode in $modes; do
  for seed in $seeds; do
    [ "${TABLE_ONLY:-0}" = 1 ] && continue
    name="${mode}_s${seed}"
    extra=()
    case "$mode" in
      fedavg) ;;
      distill-same) extra=(--federation distill --party-discriminators "dw=32,dn=batch") ;;
      distill-hetero) extra=(--federation distill --party-discriminators "$hetero") ;;
      distill-mean) extra=(--federation distill --party-discriminators "$hetero"
                           --feedback-combine mean) ;;
      *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
    mpirun --oversubscribe -n 2 "$fedgan" --config "$here/configs/small_data.toml" train \
      --data "$data" --evaluator "$evaluator" --eval-every "$every" --seed "$seed" \
      --threads 1 --sample-every 5 --out "$out/$name" --force "${extra[@]}" \
      >"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log"; echo "FAILED: $name" >&2; exit 1; }
  done
done
# The table: FID-all at each evaluated round, mean wall time of rounds without evaluation, and
# the bytes per party per round the run's log states (distillation) or FedAvg's 2 x values x 4 B.
"$python" - "$out" $modes -- $seeds <<'PY'
import csv, re, sys
out = sys.argv[1]
args = sys.argv[2:]
cut = args.index("--")
modes, seeds = args[:cut], args[cut + 1:]
rows = []
for mode in modes:
    for seed in seeds:
        name = f"{mode}_s{seed}"
        metrics = list(csv.DictReader(open(f"{out}/{name}/metrics.csv")))
        fids = {int(r["round"]): float(r["fid_all"]) for r in metrics if r["fid_all"]}
        last = [r for r in metrics if r["fid_all"]][-1]
        plain = [float(r["wall_s"]) for r in metrics if not r["fid_all"]]
        log = open(f"{out}/{name}/log.txt").read()
        m = re.search(r"= ([0-9.]+) MiB; FedAvg moves 2 x (\d+) values", log)
        if m:
            mib = float(m.group(1))
        else:
            g = re.search(r"G (\d+) \+ D (\d+) values", log)
            mib = 2 * (int(g.group(1)) + int(g.group(2))) * 4 / 2**20
        rows.append((mode, seed, fids, last, sum(plain) / max(1, len(plain)), mib))
rounds = sorted({r for row in rows for r in row[2]})
head = (["mode", "seed"] + [f"FID@{r}" for r in rounds] +
        [f"FID-avg@{rounds[-1]}", f"recall@{rounds[-1]}", "wall s/round", "MiB/party/round"])
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for mode, seed, fids, last, wall, mib in rows:
    cells = [mode, seed] + [f"{fids[r]:.1f}" if r in fids else "" for r in rounds]
    cells += [f"{float(last['fid_avg']):.1f}", f"{float(last['recall']):.3f}"]
    print("| " + " | ".join(cells + [f"{wall:.2f}", f"{mib:.3f}"]) + " |")
PY
