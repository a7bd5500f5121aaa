#!/usr/bin/env bash
# `fedgan train --federation distill` end to end: parties with discriminators of different
# architectures (built-in widths and normalisations, a TorchScript D) federate through their
# feedback on one global generator.
# usage: distill_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: ranks | resume | script | robust | errors
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

distill=(--data "$work/data.h5" --g-width 8 --d-width 8 --latent-dim 16 --local-steps 3
         --batch-size 16 --threads 1 --federation distill
         --party-discriminators "dw=8,dn=batch;dw=4,dn=spectral;dw=6,dn=none")

# same_state A.h5 B.h5: every dataset of two checkpoints (G, D, G's Adam state, each party's D
# and its Adam state) equal bit for bit.
same_state() {
  "$python" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def load(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        rnd = f.attrs["round"]
    return rnd, out
(ra, a), (rb, b) = load(sys.argv[1]), load(sys.argv[2])
assert ra == rb, (ra, rb)
assert sorted(a) == sorted(b), sorted(set(a) ^ set(b))
bad = [k for k in a if not np.array_equal(a[k], b[k])]
if bad:
    sys.exit("differ: " + ", ".join(bad[:8]))
parties = sorted({k.split("/")[2] for k in a if k.startswith("state/party/")})
assert any("distill_d/values" in k for k in a), "no party discriminators in the checkpoint"
print(f"{len(a)} datasets equal at round {ra} (party Ds: {', '.join(parties)})")
PY
}

case "$case" in
ranks)
  # 1 rank = 2 ranks, bit for bit, with partial participation and kept Adam moments.
  args=("${distill[@]}" --participation 0.75 --optimizer-state keep --rounds 3)
  "$fedgan" train "${args[@]}" --out "$work/np1" >"$work/np1.log" 2>&1 || { cat "$work/np1.log"; fail "np1"; }
  mpi 2 "$fedgan" train "${args[@]}" --out "$work/np2" >"$work/np2.log" 2>&1 || { cat "$work/np2.log"; fail "np2"; }
  same_state "$work/np1/checkpoints/latest.h5" "$work/np2/checkpoints/latest.h5" || fail "1 rank != 2 ranks"
  # Partial participation: 3 of 4 parties each round (metrics), the traffic in the log.
  [ "$("$python" -c "import csv; print(set(r['parties'] for r in csv.DictReader(open('$work/np2/metrics.csv'))))")" = "{'3'}" ] \
    || fail "participation 0.75 of 4 parties should give 3 per round"
  grep -q "bytes per party per round" "$work/np2/log.txt" || fail "no traffic line in the log"
  grep -q "FedAvg moves 2 x" "$work/np2/log.txt" || fail "no FedAvg comparison in the log"
  grep -q "party 1: D dw=4,dn=spectral" "$work/np2/log.txt" || fail "party 1's D not logged"
  # MD-GAN's mean feedback (--feedback-combine mean): also 1 rank = 2 ranks, and another G.
  "$fedgan" train "${args[@]}" --feedback-combine mean --out "$work/mean1" >/dev/null 2>&1 || fail "mean np1"
  mpi 2 "$fedgan" train "${args[@]}" --feedback-combine mean --out "$work/mean2" >/dev/null 2>&1 || fail "mean np2"
  same_state "$work/mean1/checkpoints/latest.h5" "$work/mean2/checkpoints/latest.h5" || fail "mean: 1 rank != 2 ranks"
  ! same_state "$work/np1/checkpoints/latest.h5" "$work/mean1/checkpoints/latest.h5" >/dev/null 2>&1 \
    || fail "--feedback-combine mean trained the same G as ua"
  # The run's config.toml carries the mode and the specs: it runs the same run again.
  "$fedgan" --config "$work/np2/config.toml" train --out "$work/again" >/dev/null 2>&1 || fail "config.toml"
  same_state "$work/np1/checkpoints/latest.h5" "$work/again/checkpoints/latest.h5" || fail "config.toml run differs"
  ;;
resume)
  # Stopped after round 2 (--debug-stop-round 3 acts as SIGUSR1) and resumed = uninterrupted.
  args=("${distill[@]}" --participation 0.5 --checkpoint-every 5)
  mpi 2 "$fedgan" train "${args[@]}" --rounds 4 --out "$work/full" >/dev/null 2>&1 || fail "full run"
  set +e
  mpi 2 "$fedgan" train "${args[@]}" --rounds 4 --out "$work/cut" --debug-stop-round 3 >"$work/cut.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 3 ] || { cat "$work/cut.log"; fail "the stopped run should exit 3, got $rc"; }
  mpi 2 "$fedgan" train "${args[@]}" --rounds 4 --out "$work/cut" --resume >"$work/resume.log" 2>&1 \
    || { cat "$work/resume.log"; fail "resume"; }
  same_state "$work/full/checkpoints/latest.h5" "$work/cut/checkpoints/latest.h5" || fail "resume != uninterrupted"
  # A resume with other party discriminators is another run.
  expect_fail "party-discriminators" mpi 2 "$fedgan" train "${distill[@]}" --participation 0.5 \
    --party-discriminators "dw=8" --rounds 5 --out "$work/cut" --resume
  ;;
script)
  # A TorchScript D for party 1 (from examples/models), the built-in ones for the others; 1 rank
  # = 2 ranks; evaluation-free run with a sample grid.
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: python3-torch is not installed"; exit 77; }
  models="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/models" && pwd)"
  "$python" "$models/export_models.py" --out "$work/m" --family dcgan --channels 1 --image-size 28 \
    --latent-dim 16 --g-width 8 --d-width 4 --d-norm none --seed 0 >/dev/null 2>&1 || fail "export"
  args=("${distill[@]}" --party-discriminators "dw=8;script:$work/m/D.pt" --rounds 2)
  "$fedgan" train "${args[@]}" --out "$work/s1" >"$work/s1.log" 2>&1 || { cat "$work/s1.log"; fail "np1"; }
  mpi 2 "$fedgan" train "${args[@]}" --out "$work/s2" >/dev/null 2>&1 || fail "np2"
  same_state "$work/s1/checkpoints/latest.h5" "$work/s2/checkpoints/latest.h5" || fail "script: 1 rank != 2 ranks"
  grep -q "party 1: D script:" "$work/s1/log.txt" || fail "party 1's TorchScript D not logged"
  [ -f "$work/s2/samples/round_0002.png" ] || fail "no sample grid"
  ;;
robust)
  # --aggregator norm-bound: each party's feedback bounded to the step's median norm. Party 1
  # sends its feedback x1000: bounded, G stays closer to the clean run's than unbounded; and the
  # bounded run is the same at 1 and 2 ranks.
  args=("${distill[@]}" --rounds 2)
  mpi 2 "$fedgan" train "${args[@]}" --out "$work/clean" >/dev/null 2>&1 || fail "clean"
  mpi 2 "$fedgan" train "${args[@]}" --attack scale:1000 --attackers 1 --out "$work/plain" \
    >/dev/null 2>&1 || fail "attacked, fedavg"
  mpi 2 "$fedgan" train "${args[@]}" --attack scale:1000 --attackers 1 --aggregator norm-bound \
    --out "$work/bound2" >/dev/null 2>&1 || fail "attacked, norm-bound, 2 ranks"
  "$fedgan" train "${args[@]}" --attack scale:1000 --attackers 1 --aggregator norm-bound \
    --out "$work/bound1" >/dev/null 2>&1 || fail "attacked, norm-bound, 1 rank"
  same_state "$work/bound1/checkpoints/latest.h5" "$work/bound2/checkpoints/latest.h5" \
    || fail "norm-bound: 1 rank != 2 ranks"
  "$python" - "$work" <<'PY' || fail "norm bounding did not keep G closer to the clean run"
import sys, h5py, numpy as np
def g(run):
    with h5py.File(f"{sys.argv[1]}/{run}/checkpoints/latest.h5", "r") as f:
        return np.concatenate([f["generator"][k][()].ravel() for k in sorted(f["generator"])])
clean = g("clean")
# (G trains with Adam, whose step size hardly depends on the gradient's scale: the attack turns
# G's direction toward party 1's, which the L2 distance to the clean run shows.)
far = {run: float(np.linalg.norm(g(run) - clean)) for run in ("plain", "bound2")}
print("|G - G_clean|_2:", far)
sys.exit(0 if np.isfinite(far["bound2"]) and far["bound2"] < far["plain"] else 1)
PY
  ;;
errors)
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: python3-torch is not installed"; exit 77; }
  # A TorchScript D with two logits per image: refused before round 1 on every rank, naming the
  # party and its spec (party 3 lives on rank 1).
  # (torch.jit.script reads the class's source: it must live in a file.)
  cat >"$work/two_logits.py" <<'PY'
import sys, torch
class D(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(784, 2)
    def forward(self, x):
        return self.head(x.flatten(1))
torch.jit.script(D()).save(sys.argv[1])
PY
  "$python" "$work/two_logits.py" "$work/D2.pt" || fail "two_logits.py"
  expect_fail "party 3's discriminator 'script:.*D2.pt'.*\[2, 2\].*one logit per image" \
    mpi 2 "$fedgan" train "${distill[@]}" --party-discriminators "dw=8;dw=8;dw=8;script:$work/D2.pt" \
    --rounds 1 --out "$work/e1"
  expect_fail "no such file" mpi 2 "$fedgan" train "${distill[@]}" \
    --party-discriminators "script:$work/missing.pt" --rounds 1 --out "$work/e2"
  expect_fail "entry 'dw=0'" "$fedgan" train "${distill[@]}" --party-discriminators "dw=0" \
    --rounds 1 --out "$work/e3"
  expect_fail "needs --federation distill" "$fedgan" train "${small[@]}" \
    --party-discriminators "dw=8" --rounds 1 --out "$work/e4"
  expect_fail "--feedback-combine .* needs --federation distill" "$fedgan" train "${small[@]}" \
    --feedback-combine mean --rounds 1 --out "$work/e5"
  # Combinations that distillation refuses, each with its reason, agreed on both ranks.
  refuse() {  # refuse REGEX OPTIONS...
    local regex="$1"; shift
    expect_fail "federation distill: .*$regex" mpi 2 "$fedgan" train "${distill[@]}" "$@" \
      --rounds 1 --out "$work/refused"
  }
  refuse "--dp-clip is refused" --dp-clip 1 --dp-noise-multiplier 1 --dp-delta 1e-3
  refuse "--secure-agg is refused" --secure-agg --secagg-range 1
  refuse "--aggregator median is refused" --aggregator median
  refuse "--aggregator trimmed-mean is refused" --aggregator trimmed-mean --trim-beta 0.25
  refuse "client strategies" --client-strategy scaffold
  refuse "client strategies" --prox-mu 0.1
  refuse "--server-optimizer" --server-optimizer fedadam
  refuse "--loss hinge is refused" --loss hinge
  refuse "needs --local-steps" --local-steps 0
  refuse "--conditional is refused" --conditional
  refuse "--diffaug" --diffaug translation
  refuse "--local-bn is refused" --local-bn
  refuse "--attack gaussian:1 is refused" --attack gaussian:1 --attackers 0
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS: distill $case"
