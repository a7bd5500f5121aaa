#!/usr/bin/env bash
# `fedgan train` / `sample` / `distill` end to end on a small Fashion-MNIST subset: bad input.
# Dataset partitions (shared or missing rows, shards smaller than a batch) and checkpoints that
# lie about their architecture, hold NaN, or are not checkpoints at all.
# usage: train_inputs_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: baddata | badckpt
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"

case "$case" in
baddata)
  # Parties that share rows or name rows the file lacks are refused, naming party and row; a
  # batch larger than a party's shard is a warning naming both sizes.
  "$python" - "$work" <<'PY'
import sys, shutil, h5py, numpy as np
w = sys.argv[1]
shutil.copy(w + "/data.h5", w + "/shared.h5")
with h5py.File(w + "/shared.h5", "r+") as f:
    row = int(f["parties/0/indices"][0])
    one = f["parties/1/indices"][()]
    del f["parties/1/indices"]
    f["parties/1/indices"] = np.append(one, row).astype(np.int64)
    print("shared row", row)
shutil.copy(w + "/data.h5", w + "/range.h5")
with h5py.File(w + "/range.h5", "r+") as f:
    two = f["parties/2/indices"][()]
    del f["parties/2/indices"]
    f["parties/2/indices"] = np.append(two, 999999).astype(np.int64)
PY
  expect_fail "shared.h5: parties 0 and 1 both hold row [0-9]+ .*disjoint" \
    mpi 2 "$fedgan" train "${small[@]}" --data "$work/shared.h5" --rounds 1 --out "$work/x"
  expect_fail "range.h5: /parties/2/indices holds row 999999, outside the 2000 rows .*\(party 2\)" \
    mpi 2 "$fedgan" train "${small[@]}" --data "$work/range.h5" --rounds 1 --out "$work/x"
  out=$(mpi 2 "$fedgan" train "${small[@]}" --batch-size 1000 --local-steps 1 --rounds 1 \
    --out "$work/big" 2>&1) || { echo "$out"; fail "a large batch"; }
  grep -Eq "party [0-3] holds [0-9]+ samples, fewer than --batch-size 1000" <<<"$out" \
    || { echo "$out"; fail "no warning for a batch larger than a shard"; }
  ;;
badckpt)
  # Checkpoints that lie about their architecture, hold NaN, or are not checkpoints at all.
  "$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: Debian's python3-torch is not installed"; exit 77; }
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/run" >/dev/null 2>&1
  ck="$work/run/checkpoints/latest.h5"
  "$python" - "$ck" "$work" <<'PY'
import sys, shutil, h5py, numpy as np, torch
ck, w = sys.argv[1:3]
def variant(name, edit):
    shutil.copy(ck, f"{w}/{name}.h5")
    with h5py.File(f"{w}/{name}.h5", "r+") as f:
        edit(f)
def architecture(old, new):
    def edit(f):
        a = f.attrs["architecture"]
        a = a.decode() if isinstance(a, bytes) else a
        f.attrs["architecture"] = a.replace(old, new)
    return edit
def nan(f):
    v = f["discriminator/head.bias"][()]
    v[0] = np.nan
    f["discriminator/head.bias"][...] = v
variant("wide", architecture("gw=8", "gw=4096"))
variant("absurd", architecture("gw=8", "gw=99999999999999"))
variant("nan", nan)
open(f"{w}/garbage.pt", "wb").write(b"this is not a model\n" * 10)
open(f"{w}/text.h5", "wb").write(b"plain text, not HDF5\n")
# Two entries: LibTorch's unpickler lacks SETITEM, which pickle uses for a one-entry dict.
tiny = {"generator.out.bias": torch.zeros(1), "generator.unknown": torch.zeros(1)}
torch.save(tiny, f"{w}/tiny.pt")
torch.save(tiny, f"{w}/legacy.pt", _use_new_zipfile_serialization=False)
PY
  start=$(date +%s)
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape \[16\], but the architecture needs \[8192\]" \
    "$fedgan" sample --checkpoint "$work/wide.h5" --out "$work/s.png"
  # Checked before the 560 M-value model is built (building it took 48 s).
  [ $(( $(date +%s) - start )) -lt 20 ] || fail "the shape check came late"
  expect_fail "absurd.h5: attribute architecture = .*'gw=99999999999999' is not an integer" \
    "$fedgan" sample --checkpoint "$work/absurd.h5" --out "$work/s.png"
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/w" --init "$work/wide.h5"
  expect_fail "wide.h5: /generator/blocks.0.bn.bias has shape" \
    "$fedgan" distill --teacher "$work/wide.h5" --out "$work/d.h5"
  # NaN: an error naming file and tensor wherever the checkpoint is read.
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf of 1 values" \
    "$fedgan" sample --checkpoint "$work/nan.h5" --out "$work/s.png"
  [ ! -e "$work/s.png" ] || fail "sample wrote images from a NaN checkpoint"
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf" mpi 2 "$fedgan" train "${small[@]}" \
    --rounds 1 --out "$work/n" --init "$work/nan.h5" --skip-nonfinite
  [ ! -e "$work/n/checkpoints/latest.h5" ] || fail "a checkpoint was written from a NaN init"
  expect_fail "nan.h5: /discriminator/head.bias holds 1 NaN/inf" \
    "$fedgan" distill --teacher "$work/nan.h5" --out "$work/d.h5"
  cp "$work/nan.h5" "$work/run/checkpoints/latest.h5"
  expect_fail "latest.h5: /discriminator/head.bias holds 1 NaN/inf" \
    "$fedgan" train "${small[@]}" --rounds 2 --out "$work/run" --resume
  # Not a checkpoint: judged by content, with what --init expects; no LibTorch backtrace.
  expect_fail "garbage.pt: neither an HDF5 file nor a PyTorch zip archive.*--init expects a fedgan checkpoint" \
    mpi 2 "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/garbage.pt"
  expect_fail "text.h5: neither an HDF5 file nor a PyTorch zip archive" \
    "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/text.h5"
  expect_fail "legacy.pt: a PyTorch file in the legacy" \
    "$fedgan" train "${small[@]}" --rounds 1 --out "$work/g" --init "$work/legacy.pt"
  expect_fail "text.h5: not an HDF5 file" "$fedgan" sample --checkpoint "$work/text.h5" --out "$work/s.png"
  # A warm start that transfers almost nothing is a warning with the share.
  out=$("$fedgan" train "${small[@]}" --rounds 1 --out "$work/tiny" --init "$work/tiny.pt" 2>&1) \
    || { echo "$out"; fail "warm start from one tensor"; }
  grep -Eq "warn.*only 0\.0[0-9]*% of the generator's values \(1 of [0-9]+\) came from" <<<"$out" \
    || { echo "$out"; fail "no warning with the share"; }
  grep -Eq "warn.*only 0% of the discriminator's values" <<<"$out" || { echo "$out"; fail "D share"; }
  ;;
*) fail "unknown case $case" ;;
esac
echo "PASS $case"
