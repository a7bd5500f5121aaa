#!/usr/bin/env bash
# Transfer from a distant source to parties with full and with few images (issue 23), measured
# on the demo's task: the target classes 5-9 over 4 Dirichlet(0.5) parties on 2 ranks, the
# demo's small-data recipe (configs/small_data.toml: 15 rounds of 160 local steps of batch 8,
# widths 32), warm-started from the class-disjoint source (classes 0-4 of the train split, as
# `scripts/demo.sh 2 disjoint` pretrains it). Data sizes (SIZES):
#   full   data/fmnist_target.h5 (5000 images, 627 to 2526 per party)
#   N      data/fmnist_target_N.h5: each party keeps a seeded N of its images
#          (`fedgan prepare ... --max-per-party N`)
# Methods (METHODS; each the named flags on top of the recipe):
#   scratch        no warm start
#   plain          --init SOURCE (plain fine-tuning)
#   freezed        + --freeze-d 1 (FreezeD)
#   kd             + --kd-weight 1 --kd-decay 0.7 (KD from the source G)
#   ewc            + --ewc-weight $EWC (EWC, Li et al. 2020; 0.01, the best of a sweep)
#   cdc            + --cdc-weight $CDC (cross-domain correspondence, Ojha et al. 2021; 10)
#   adam           + $ADAM (AdAM kernel modulation, Zhao et al. 2022; --modulation-rank 1)
#   <m>+da         + --diffaug translation,cutout,color (DiffAugment)
#   <m>+ada        + --diffaug translation,cutout,color --ada-target 0.6 (ADA)
# Every run is evaluated in the run, every EVAL_EVERY rounds (1 by default), with the demo's
# evaluator against the parties' FULL sets (--eval-data data/fmnist_target.h5, n = 2000), so
# every size is scored against the same reference. Per (size, method, seed): metrics.csv; the
# summary (table.md) gives the final FID-all, KID, precision and recall per seed and mean, the
# round where each run reaches the scratch run's final FID (same size and seed), the median
# round time, and the values aggregated per round.
# usage: scripts/fewshot_transfer.sh [FEDGAN] [OUT]
#   SEEDS="0 1", SIZES="full 50", METHODS="scratch plain freezed kd ewc cdc", EWC=…, CDC=…, ADAM=…,
#   ROUNDS=15, EVAL_EVERY=1; FEDGAN_LOCK=FILE runs each training under `flock FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
fedgan="${1:-build/release/fedgan}"
out="${2:-runs/fewshot}"
seeds="${SEEDS:-0 1}"
sizes="${SIZES:-full 50}"
methods="${METHODS:-scratch plain freezed kd ewc cdc}"
ewc="${EWC:-0.01}"
cdc="${CDC:-10}"
adam="${ADAM:---modulation-rank 1}"
rounds="${ROUNDS:-15}"
eval_every="${EVAL_EVERY:-1}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
lock=(); [ -n "${FEDGAN_LOCK:-}" ] && lock=(flock "$FEDGAN_LOCK")
mkdir -p "$out"
scripts/demo_data.sh "$fedgan" target source >/dev/null
scripts/make_evaluator.sh "$fedgan" >/dev/null
src=runs/pretrain_source/checkpoints/latest.h5
if [ ! -f "$src" ]; then
  echo "== pretraining the class-disjoint source (as scripts/demo.sh 2 disjoint does)"
  "${lock[@]}" mpirun --oversubscribe -n 2 "$fedgan" --config configs/pretrain_public.toml \
    pretrain --force --data data/fmnist_source.h5 --out runs/pretrain_source >/dev/null
fi
data_of() {
  case "$1" in
    full) echo data/fmnist_target.h5 ;;
    *) local f=data/fmnist_target_$1.h5
       [ -f "$f" ] || "$fedgan" prepare --split test --classes 5,6,7,8,9 --parties 4 \
         --partition dirichlet --alpha 0.5 --max-per-party "$1" --out "$f" >/dev/null
       echo "$f" ;;
  esac
}
args_of() {
  local m="$1" aug=()
  case "$m" in
    *+da) aug=(--diffaug translation,cutout,color); m="${m%+da}" ;;
    *+ada) aug=(--diffaug translation,cutout,color --ada-target 0.6); m="${m%+ada}" ;;
  esac
  case "$m" in
    scratch) ;;
    plain) echo --init "$src" ;;
    freezed) echo --init "$src" --freeze-d 1 ;;
    kd) echo --init "$src" --kd-weight 1 --kd-decay 0.7 ;;
    ewc) echo --init "$src" --ewc-weight "$ewc" ;;
    cdc) echo --init "$src" --cdc-weight "$cdc" ;;
    adam) echo --init "$src" $adam ;;
    *) echo "fewshot_transfer.sh: unknown method $m" >&2; exit 2 ;;
  esac
  echo "${aug[@]}"
}
for seed in $seeds; do
  for size in $sizes; do
    data=$(data_of "$size")
    for method in $methods; do
      run="$out/$size/$method-s$seed"
      mkdir -p "$out/$size"
      echo "== $size images per party, $method, seed $seed"
      # shellcheck disable=SC2046
      "${lock[@]}" mpirun --oversubscribe -n 2 "$fedgan" --config configs/small_data.toml train \
        --force --out "$run" --data "$data" --eval-data data/fmnist_target.h5 --seed "$seed" \
        --rounds "$rounds" --eval-every "$eval_every" --sample-every "$rounds" \
        --checkpoint-every "$rounds" $(args_of "$method") >"$run.log" 2>&1 \
        || { tail -20 "$run.log"; exit 1; }
    done
  done
done
/usr/bin/python3 - "$out" "$rounds" <<'PY' | tee "$out/table.md"
import csv, glob, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(path):
    return [r for r in csv.DictReader(open(path)) if r["fid_all"]]
runs = {}
for path in glob.glob(f"{out}/*/*-s*/metrics.csv"):
    size = path.split("/")[-3]
    method, seed = re.match(r"(.*)-s(\d+)$", path.split("/")[-2]).groups()
    m = rows(path)
    if not m or int(m[-1]["round"]) != rounds: continue
    log = open(path.replace("/metrics.csv", ".log")).read()
    agg = re.search(r"(\d+) of (\d+) values aggregated", log)
    fisher = re.search(r"Fisher information from \d+ latents in ([0-9.]+) s", log)
    runs[(size, method, int(seed))] = dict(
        final=m[-1], fids=[(int(r["round"]), float(r["fid_all"])) for r in m],
        wall=statistics.median(float(r["wall_s"]) for r in list(csv.DictReader(open(path)))[1:]),
        local=statistics.median(float(r["local_train_s"]) for r in list(csv.DictReader(open(path)))[1:]),
        eval_s=statistics.median(float(r["eval_s"] or 0) for r in m),
        aggregated=agg.group(1) if agg else None, fisher_s=fisher.group(1) if fisher else None)
seeds = sorted({k[2] for k in runs})
order = ["full", "250", "50", "10"]
sizes = sorted({k[0] for k in runs}, key=lambda s: order.index(s) if s in order else 99)
print(f"FID-all / recall at round {rounds} against data/fmnist_target.h5 (5000 images), n = 2000 "
      f"generated, evaluator data/evaluator_fmnist.h5; seeds {seeds}; 'reach' = the first round "
      f"whose FID-all is at or below the scratch run's final FID (same size, same seed)\n")
for size in sizes:
    methods = []
    for k in sorted(runs):
        if k[0] == size and k[1] not in methods: methods.append(k[1])
    methods.sort(key=lambda m: (m != "scratch", m != "plain", m))
    print(f"### {size} images per party\n")
    print("| method | " + " | ".join(f"FID s{s}" for s in seeds) + " | mean FID | vs plain | mean KID "
          "| mean precision | mean recall | " + " | ".join(f"reach s{s}" for s in seeds) +
          " | round s | local s | values aggregated |")
    print("|---" * (9 + 2 * len(seeds)) + "|")
    plain = [runs[(size, "plain", s)] for s in seeds if (size, "plain", s) in runs]
    plain_mean = statistics.mean(float(r["final"]["fid_all"]) for r in plain) if plain else None
    for method in methods:
        sel = {s: runs[(size, method, s)] for s in seeds if (size, method, s) in runs}
        mean = lambda f: statistics.mean(float(r["final"][f]) for r in sel.values())
        def reach(s):
            sc = runs.get((size, "scratch", s))
            if not sc or s not in sel: return ""
            target = float(sc["final"]["fid_all"])
            hit = [r for r, f in sel[s]["fids"] if f <= target]
            return f"{hit[0]}/{rounds}" if hit else "—"
        vs = f"{100 * (mean('fid_all') / plain_mean - 1):+.0f}%" if plain_mean else ""
        print(f"| {method} | " + " | ".join(f"{float(sel[s]['final']['fid_all']):.1f}" if s in sel else "" for s in seeds) +
              f" | {mean('fid_all'):.1f} | {vs} | {mean('kid'):.4f} | {mean('precision'):.3f} | {mean('recall'):.3f} | " +
              " | ".join(reach(s) for s in seeds) +
              f" | {statistics.mean(r['wall'] - r['eval_s'] for r in sel.values()):.2f}"
              f" | {statistics.mean(r['local'] for r in sel.values()):.2f}"
              f" | {next(iter(sel.values()))['aggregated'] or 'all'} |")
    print()
PY
