#!/usr/bin/env bash
# Smoke test of the scaling harness on a tiny grid (ranks 1 and 2, 2 rounds, a tiny model):
# scaling.csv has one row per grid point with numbers in it, every PNG and the benchmark CSV exist.
# usage: scaling_smoke.sh REPO_ROOT FEDGAN BENCH_AGGREGATE|none MPIEXEC WORKDIR
set -euo pipefail
root="$1"; fedgan="$2"; bench="$3"; mpiexec="$4"; work="$5"
mkdir -p "$work"; out="$(cd "$work" && pwd)/scaling_smoke"; rm -rf "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

MPIEXEC="$mpiexec" "$root/scripts/scaling.sh" all --ranks "1 2" --rounds 2 --parties 2 \
  --parties-per-rank 1 --out "$out" --fedgan "$fedgan" --bench "$bench" --bench-reps 2 \
  -- --g-width 4 --d-width 4 --latent-dim 8 --local-steps 1 --batch-size 8

csv="$out/scaling.csv"
[ -f "$csv" ] || fail "no $csv"
[ "$(wc -l <"$csv")" -eq 5 ] || { cat "$csv"; fail "$csv: expected a header and 4 rows"; }
"${FEDGAN_PYTHON:-/usr/bin/python3}" - "$csv" <<'PY' || fail "$csv: bad contents"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert sorted((r["mode"], int(r["ranks"])) for r in rows) == [("strong", 1), ("strong", 2), ("weak", 1), ("weak", 2)], rows
for r in rows:
    for k in ("round_s", "aggregate_s", "images_per_s", "efficiency"):
        v = float(r[k]); assert math.isfinite(v) and v >= 0, (k, v)
    assert int(r["rounds_timed"]) == 1, r  # round 1 is warm-up
    assert float(r["round_s"]) > 0
base = [r for r in rows if r["ranks"] == "1"]
assert all(abs(float(r["efficiency"]) - 1) < 1e-9 for r in base), base
print("ok:", len(rows), "rows")
PY
for png in scaling_round_time scaling_split scaling_images_per_s scaling_efficiency; do
  head -c 8 "$out/$png.png" 2>/dev/null | grep -q PNG || fail "$out/$png.png missing or not a PNG"
done
if [ "$bench" != none ]; then
  [ "$(wc -l <"$out/bench_aggregate.csv")" -gt 1 ] || fail "bench_aggregate.csv has no rows"
  head -c 8 "$out/bench_aggregate.png" | grep -q PNG || fail "bench_aggregate.png missing"
fi
grep -q "round 1 (warm-up) excluded" "$out/report.md" || fail "report.md lacks the warm-up note"
echo "ok: scaling harness smoke test"
