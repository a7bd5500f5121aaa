#!/usr/bin/env bash
# Parties of different widths (HeteroFL, --width-ratios) measured on the demo's task: the target
# classes 5-9 over 4 Dirichlet(0.5) parties on 2 ranks, the demo's small-data recipe
# (configs/small_data.toml: 15 rounds of 160 local steps, batch 8, widths 32), FID-all etc. with
# the demo's evaluator (n = 2000, `fedgan eval`, the same latents for every model). Per seed:
#   full          every party full width (plain FedAvg)
#   mixed         ratios 1, 1/2, 1/4, 1/4 (party k gets entry k), static BN, HeteroFL's scaler
#                 on: its full model, and its 1/2 and 1/4 sub-models (eval --width-ratio)
#   mixed-shared  the same with --width-bn shared (statistics averaged like parameters)
#   mixed-noscale the same as mixed without the 1/r scaler (fedgan's defaults)
#   mixed-rolling the same as mixed with rolling slices (FedRolex): its full, 1/2 and 1/4 models
#   mixed-all     the defaults with --width-average all (non-holders count as no change)
#   quarter       every party 1/4 wide (static BN, scaler on): its 1/4 model
#   full-warm, mixed-warm   full and mixed warm-started from the demo's pretrained checkpoint
#                 (the full model sliced for the small parties)
#   full-iid, mixed-iid     the control: full and mixed on the same images split IID over the 4
#                 parties (data/fmnist_target_iid.h5), evaluated against the same reference
# and the cost of a round (median wall_s and local_s of rounds 2-15) of each.
# usage: scripts/hetero_widths.sh [FEDGAN] [OUT]     (SEEDS="0 1" by default; MODES to pick some;
#        FEDGAN_LOCK=FILE runs each training and evaluation under `flock FILE`, so that timings
#        are not shared with other jobs on the machine)
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"
out="${2:-runs/widths}"
seeds="${SEEDS:-0 1}"
modes="${MODES:-full mixed mixed-shared mixed-noscale mixed-rolling mixed-all quarter full-warm mixed-warm full-iid mixed-iid}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
lock=(); [ -n "${FEDGAN_LOCK:-}" ] && lock=(flock "$FEDGAN_LOCK")
mkdir -p "$out"
scripts/demo_data.sh "$fedgan" target public >/dev/null
scripts/make_evaluator.sh "$fedgan" >/dev/null
iid=data/fmnist_target_iid.h5
[ -f "$iid" ] || "$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 4 --partition iid \
  --out "$iid" >/dev/null
pre=runs/pretrain_public/checkpoints/latest.h5
if [[ " $modes " == *-warm* ]] && [ ! -f "$pre" ]; then
  echo "== pretraining the warm start (as scripts/demo.sh does)"
  mpirun --oversubscribe -n 2 "$fedgan" --config configs/pretrain_public.toml pretrain --force \
    --data data/fmnist_public.h5 --out runs/pretrain_public >/dev/null
fi
mixed=(--width-ratios 1,0.5,0.25,0.25 --width-scaler on)
args_of() {
  case "$1" in
    full) ;;
    mixed) echo "${mixed[@]}" --width-bn static ;;
    mixed-shared) echo "${mixed[@]}" --width-bn shared ;;
    mixed-noscale) echo --width-ratios 1,0.5,0.25,0.25 --width-bn static --width-scaler off ;;
    mixed-all) echo --width-ratios 1,0.5,0.25,0.25 --width-average all ;;
    mixed-rolling) echo "${mixed[@]}" --width-bn static --width-slicing rolling ;;
    quarter) echo --width-ratios 0.25 --width-bn static --width-scaler on ;;
    full-warm) echo --init "$pre" ;;
    mixed-warm) echo "${mixed[@]}" --width-bn static --init "$pre" ;;
    full-iid) echo --data "$iid" ;;
    mixed-iid) echo "${mixed[@]}" --width-bn static --data "$iid" ;;
    *) echo "hetero_widths.sh: unknown mode $1" >&2; exit 2 ;;
  esac
}
widths_of() {  # the widths at which a mode's final model is evaluated
  case "$1" in
    quarter) echo 0.25 ;;
    mixed|mixed-shared|mixed-noscale|mixed-rolling|mixed-all|mixed-warm|mixed-iid) echo 1 0.5 0.25 ;;
    *) echo 1 ;;
  esac
}
# A rerun of some modes and seeds replaces their rows and keeps the others'.
touch "$out/evals.jsonl"
/usr/bin/python3 - "$out/evals.jsonl" "$modes" "$seeds" <<'PY'
import json, sys
path, modes, seeds = sys.argv[1], sys.argv[2].split(), [int(s) for s in sys.argv[3].split()]
keep = [l for l in open(path) if l.strip() and not (json.loads(l)["mode"] in modes and json.loads(l)["seed"] in seeds)]
open(path, "w").writelines(keep)
PY
for seed in $seeds; do
  for mode in $modes; do
    run="$out/$mode-s$seed"
    echo "== $mode, seed $seed"
    # shellcheck disable=SC2046
    "${lock[@]}" mpirun --oversubscribe -n 2 "$fedgan" --config configs/small_data.toml train --force \
      --out "$run" --seed "$seed" --eval-every 0 --sample-every 15 $(args_of "$mode") >"$run.log" 2>&1 \
      || { tail -20 "$run.log"; exit 1; }
    for r in $(widths_of "$mode"); do
      json=$("${lock[@]}" "$fedgan" eval --checkpoint "$run/checkpoints/latest.h5" --width-ratio "$r" \
        --data data/fmnist_target.h5 --evaluator data/evaluator_fmnist.h5 --n 2000 --seed 0 --json)
      echo "{\"mode\": \"$mode\", \"seed\": $seed, \"ratio\": $r, \"eval\": $json}" >>"$out/evals.jsonl"
      "$fedgan" sample --checkpoint "$run/checkpoints/latest.h5" --width-ratio "$r" --n 64 \
        --force --out "$run/grid_r$r.png" >/dev/null
    done
  done
done
/usr/bin/python3 - "$out" <<'PY' | tee "$out/table.md"
import csv, json, statistics, sys, re, glob
out = sys.argv[1]
rows = [json.loads(l) for l in open(f"{out}/evals.jsonl")]
seeds = sorted({r["seed"] for r in rows})
def cost(mode, seed):
    m = list(csv.DictReader(open(f"{out}/{mode}-s{seed}/metrics.csv")))[1:]
    return (statistics.median(float(r["wall_s"]) for r in m),
            statistics.median(float(r["local_train_s"]) for r in m))
print(f"evaluator {rows[0]['eval']['evaluator']} (checksum {rows[0]['eval']['evaluator_checksum']}), "
      f"n = {rows[0]['eval']['n']} generated vs {rows[0]['eval']['n_real']} real, seeds {seeds}\n")
print("| mode | model | " + " | ".join(f"FID-all s{s}" for s in seeds) +
      " | mean FID-all | mean KID | mean precision | mean recall | round s (median) | local s |")
print("| --- " * (6 + len(seeds) + 2) + "|")
keys = []
for r in rows:
    k = (r["mode"], r["ratio"])
    if k not in keys: keys.append(k)
for mode, ratio in keys:
    sel = {r["seed"]: r["eval"] for r in rows if r["mode"] == mode and r["ratio"] == ratio}
    mean = lambda f: statistics.mean(sel[s][f] for s in sel)
    walls = [cost(mode, s) for s in sel]
    print(f"| {mode} | width {ratio:g} | " + " | ".join(f"{sel[s]['fid_all']:.1f}" if s in sel else "" for s in seeds) +
          f" | {mean('fid_all'):.1f} | {mean('kid'):.4f} | {mean('precision'):.3f} | {mean('recall'):.3f}"
          f" | {statistics.mean(w[0] for w in walls):.2f} | {statistics.mean(w[1] for w in walls):.2f} |")
# The cost table of a mixed run's log: values, MACs and bytes per width.
for log in sorted(glob.glob(f"{out}/mixed-s*.log"))[:1]:
    text = open(log).read()
    m = re.search(r"( *ratio +parties.*?\n(?: *[0-9.]+ +\d+ .*\n)+)", text)
    if m:
        print("\ncost per width (from " + log + "):\n```\n" + m.group(1) + "```")
    a = re.search(r"one fused allreduce of [0-9.]+ MB per round[^\n]*", text)
    if a: print("aggregation: " + a.group(0))
PY
