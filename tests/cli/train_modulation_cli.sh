#!/usr/bin/env bash
# `fedgan train --modulation-rank` (AdAM's kernel modulation of G, transfer/modulation.hpp) end
# to end on the 4-party test data, from a plain source run: resume = uninterrupted and 2 ranks =
# 1 rank bit for bit (probe included), G's base stays the source's, a reused mask; sample and
# export of a modulated checkpoint (the exported G_state.pt, modulation folded, gives sample's
# images in PyTorch); bad values and masks refused naming the flag or file, on every rank.
# usage: train_modulation_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: modulation | modulation_errors
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

"$fedgan" train "${small[@]}" --rounds 2 --out "$work/src" >/dev/null 2>&1 || fail "source run"
src="$work/src/checkpoints/latest.h5"
mod=(--init "$src" --modulation-rank 1 --modulation-probe-steps 3 --modulation-keep 0.5)

case "$case" in
modulation)
  mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --rounds 4 --checkpoint-every 2 --out "$work/full" \
    >"$work/full.log" 2>&1 || { cat "$work/full.log"; fail "modulated run"; }
  grep -q "kernel modulation (AdAM) of rank 1: .* filters train, from the probe" "$work/full.log" \
    || { cat "$work/full.log"; fail "no modulation line"; }
  grep -q "values aggregated" "$work/full.log" || fail "no aggregated count"
  ! grep -q "warn" "$work/full.log" || { cat "$work/full.log"; fail "the warm start warned"; }
  # Resume = uninterrupted (the mask from the checkpoint), 1 rank = 2 ranks (the probe too).
  mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --rounds 2 --checkpoint-every 2 --out "$work/part" >/dev/null 2>&1
  mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --rounds 4 --checkpoint-every 2 --out "$work/part" \
    --resume >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume"; }
  grep -q "filters train, from the checkpoint" "$work/resume.log" || fail "resume did not take the checkpoint's mask"
  same_models "$work/full/checkpoints/latest.h5" "$work/part/checkpoints/latest.h5"
  mpi 1 "$fedgan" train "${small[@]}" "${mod[@]}" --rounds 4 --checkpoint-every 2 --out "$work/one" >/dev/null 2>&1
  same_models "$work/full/checkpoints/latest.h5" "$work/one/checkpoints/latest.h5"
  # The base never changed; the kept rows of A did; the masks agree; a resume refuses another keep.
  "$python" - "$src" "$work/full" "$work/one" <<'PY'
import sys, h5py, numpy as np
src, full, one = h5py.File(sys.argv[1]), sys.argv[2], sys.argv[3]
ck = h5py.File(full + "/checkpoints/latest.h5")
g = ck["generator"]
for k in src["generator"]:
    assert np.array_equal(src["generator"][k][()], g[k][()]) or "running" in k, k
mods = [k for k in g if k.endswith("mod_a")]
assert len(mods) == 3 and any(np.abs(g[k][()]).sum() > 0 for k in mods), mods
a, b = h5py.File(full + "/modulation_mask.h5"), h5py.File(one + "/modulation_mask.h5")
assert np.array_equal(a["scores"][()], b["scores"][()]) and np.array_equal(a["mask"][()], b["mask"][()])
assert np.array_equal(a["mask"][()], ck["state/server/modulation_mask"][()])
print("ok: base unchanged, A moved, masks equal:", a["mask"][()].sum(), "of", len(a["mask"][()]))
PY
  expect_fail "modulation-keep: '0.25' now, '0.5' in the run being resumed" \
    "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-keep 0.25 --rounds 5 --out "$work/part" --resume
  # A reused mask: no probe, the same filters.
  "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-mask "$work/full/modulation_mask.h5" --rounds 1 \
    --out "$work/reuse" >"$work/reuse.log" 2>&1 || { cat "$work/reuse.log"; fail "reuse"; }
  grep -q "from $work/full/modulation_mask.h5" "$work/reuse.log" || fail "mask not reused"
  "$python" -c "import sys,h5py,numpy as np; a,b=(h5py.File(p)['mask'][()] for p in sys.argv[1:]); assert np.array_equal(a,b)" \
    "$work/full/modulation_mask.h5" "$work/reuse/modulation_mask.h5" || fail "reused mask differs"
  # sample and export of the modulated checkpoint; G_state.pt (folded) gives sample's images.
  ck="$work/full/checkpoints/latest.h5"
  "$fedgan" sample --checkpoint "$ck" --n 20 --out "$work/s.h5" >/dev/null 2>&1 || fail "sample"
  "$fedgan" export --checkpoint "$ck" --out "$work/exp" >/dev/null 2>&1 || fail "export"
  # A plain run warm-started from the modulated checkpoint takes its folded kernels: every G value
  # loads, nothing of the file is left unused.
  "$fedgan" train "${small[@]}" --init "$ck" --rounds 1 --out "$work/plain" >/dev/null 2>&1 \
    || fail "plain run from the modulated checkpoint"
  grep -Eq "^generator: transferred .*, 100%\)" "$work/plain/init_report.txt" \
    || { cat "$work/plain/init_report.txt"; fail "the folded generator did not load whole"; }
  ! grep -q "unexpected" "$work/plain/init_report.txt" \
    || { cat "$work/plain/init_report.txt"; fail "modulation tensors left unused"; }
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: python3-torch missing for the export check"; exit 0; }
  "$python" - "$work/exp" "$work/s.h5" "$(dirname "${BASH_SOURCE[0]}")/../../examples/models" <<'PY'
import sys, h5py, numpy as np, torch
exp, samples, models = sys.argv[1:4]
sys.path.insert(0, models)
from dcgan import build
f = h5py.File(samples, "r")
z = torch.from_numpy(f["latents"][()])
want = f["images"][()].astype(np.int64)
state = torch.load(exp + "/G_state.pt")
assert not any("mod_" in k for k in state), list(state)
g, _ = build(channels=1, image_size=28, latent_dim=16, g_width=8, d_width=8)
g.load_state_dict(state)
g.eval()
with torch.no_grad():
    got = torch.clamp(torch.round((g(z) + 1) * 127.5), 0, 255).to(torch.int64).numpy()
gap = int(np.abs(got - want).max())
assert gap <= 1, gap
print(f"ok: the folded G_state.pt gives fedgan's samples (largest gap {gap} of 255)")
PY
  ;;
modulation_errors)
  expect_fail "modulation-rank.*-1" "$fedgan" train "${small[@]}" --init "$src" --modulation-rank -1 --out "$work/e"
  expect_fail "modulation-rank.*65" "$fedgan" train "${small[@]}" --init "$src" --modulation-rank 65 --out "$work/e"
  expect_fail "modulation-keep.*0" "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-keep 0 --out "$work/e"
  expect_fail "modulation-keep.*1.5" "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-keep 1.5 --out "$work/e"
  expect_fail "modulation-probe-steps.*-2" "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-probe-steps -2 --out "$work/e"
  expect_fail "--modulation-rank needs --init" mpi 2 "$fedgan" train "${small[@]}" --modulation-rank 1 --out "$work/e"
  expect_fail "--width-ratios with --modulation-rank" \
    mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --width-ratios 1,0.5 --out "$work/e"
  expect_fail "modulation-probe-steps with --dp-clip" \
    mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --dp-clip 1 --out "$work/e"
  # A mask of another model (another width), a file that is no mask, a mask without a rank.
  "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-probe-steps 0 --g-width 16 --rounds 1 \
    --out "$work/wide" >/dev/null 2>&1 || fail "the wide run"
  expect_fail "wide/modulation_mask.h5 \(--modulation-mask\): a mask of model 'dcgan .*gw=16" \
    mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-mask "$work/wide/modulation_mask.h5" --out "$work/e"
  expect_fail "data.h5 \(--modulation-mask\): .*not a fedgan modulation mask" \
    mpi 2 "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-mask "$work/data.h5" --out "$work/e"
  expect_fail "nothing.h5 \(--modulation-mask\): not an HDF5 file" \
    "$fedgan" train "${small[@]}" "${mod[@]}" --modulation-mask "$work/nothing.h5" --out "$work/e"
  expect_fail "--modulation-mask .*needs --modulation-rank" \
    "$fedgan" train "${small[@]}" --init "$src" --modulation-mask "$work/wide/modulation_mask.h5" --out "$work/e"
  ;;
*) fail "unknown case $case" ;;
esac
