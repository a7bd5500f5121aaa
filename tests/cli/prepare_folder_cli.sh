#!/usr/bin/env bash
# `fedgan prepare --dataset folder` end to end, on images drawn by scripts/make_shapes.py:
#   shapes  party folders and class folders -> the dataset file (checked with h5py), also grey
#           64 px PNG with a drawn partition, and unlabelled images
#   errors  bad flags and bad folders fail naming the fault, at 1 and 2 ranks, writing nothing;
#           skipped files are warned about with a count
#   train   one round of the built-in dcgan on a 32 px RGB folder dataset, 2 parties on 2 ranks
# usage: prepare_folder_cli.sh FEDGAN MPIEXEC WORKDIR CASE
set -euo pipefail
fedgan="$1"; mpiexec="$2"; work="$3"; case="$4"
mkdir -p "$work"; work="$(cd "$work" && pwd)/$case"; rm -rf "$work"; mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shapes="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../scripts" && pwd)/make_shapes.py"
"$python" -c "import PIL, numpy" 2>/dev/null \
  || { echo "SKIPPED: python3-pil or python3-numpy is not installed"; exit 77; }

make_shapes() { "$python" "$shapes" --seed 3 "$@" >/dev/null || fail "make_shapes.py $*"; }
prepare() { "$fedgan" prepare --dataset folder "$@" 2>&1; }

case "$case" in
shapes)
  make_shapes --out "$work/rgb" --parties 3 --per-party 24 --size 32
  touch "$work/rgb/party_1/notes.txt" "$work/rgb/.DS_Store"
  out=$(prepare --source "$work/rgb" --partition folders --image-size 32 --out "$work/rgb.h5") \
    || { echo "$out"; fail "prepare rgb"; }
  echo "$out"
  grep -q "skipped 2 files that are not images by their name or are hidden" <<<"$out" \
    || fail "no warning for the skipped files"
  grep -Eq "wrote .*rgb.h5 \(72 samples, 3x32x32\) in .* s \([0-9]+ images/s\)" <<<"$out" \
    || fail "no summary line"
  grep -q "party 2 = party_2: 24 images" <<<"$out" || fail "no per-party count"
  "$python" - "$work/rgb.h5" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
images, labels = f["images"], f["labels"][()]
assert images.shape == (72, 3, 32, 32) and images.dtype == np.uint8, images
names = [n.decode() for n in f.attrs["class_names"]]
assert names == ["checker", "circle", "square", "star", "stripes", "triangle"], names
assert f.attrs["num_classes"] == 6
p = f["parties"]
assert p.attrs["num_parties"] == 3 and p.attrs["method"] == b"folders"
assert [n.decode() for n in p.attrs["names"]] == ["party_0", "party_1", "party_2"]
for k in range(3):
    idx = p[f"{k}/indices"][()]
    assert list(idx) == list(range(24 * k, 24 * k + 24)), (k, idx)
    assert list(p[f"{k}/class_counts"][()]) == [4] * 6
    # make_shapes writes class i % 6 for image i: each party holds 4 of each, in class order.
    assert list(labels[idx]) == sorted([c for c in range(6)] * 4), labels[idx]
# Parties differ in style: their mean colours are far apart.
means = [images[24 * k:24 * k + 24].mean(axis=(0, 2, 3)) for k in range(3)]
gap = min(np.abs(means[a] - means[b]).max() for a in range(3) for b in range(a + 1, 3))
assert gap > 10, means
print("ok: rgb.h5", images.shape, names, "party colour gap", round(float(gap), 1))
PY
  # Grey 64 px PNG, a drawn partition over the class folders (one folder of images per class).
  make_shapes --out "$work/png" --parties 1 --per-party 30 --size 64 --format png
  out=$(prepare --source "$work/png/party_0" --image-size 64 --channels 1 --partition dirichlet \
    --alpha 1 --parties 3 --seed 2 --out "$work/grey.h5") || { echo "$out"; fail "prepare grey"; }
  # Unlabelled: images directly in the folder.
  make_shapes --out "$work/flat" --parties 1 --per-party 10 --size 32 --flat
  out=$(prepare --source "$work/flat/party_0" --image-size 128 --out "$work/flat.h5") \
    || { echo "$out"; fail "prepare flat"; }
  grep -q "10 of 10 images are smaller than --image-size 128 and were upscaled" <<<"$out" \
    || { echo "$out"; fail "no warning for upscaled images"; }
  "$python" - "$work/grey.h5" "$work/flat.h5" <<'PY'
import sys, h5py
g = h5py.File(sys.argv[1], "r")
assert g["images"].shape == (30, 1, 64, 64), g["images"].shape
assert g["parties"].attrs["num_parties"] == 3 and g["parties"].attrs["method"] == b"dirichlet"
assert sum(g[f"parties/{k}/indices"].shape[0] for k in range(3)) == 30
assert "names" not in g["parties"].attrs
f = h5py.File(sys.argv[2], "r")
assert f["images"].shape == (10, 3, 128, 128) and f.attrs["num_classes"] == 1
assert "class_names" not in f.attrs and (f["labels"][()] == 0).all()
print("ok: grey.h5 and flat.h5")
PY
  ;;
errors)
  make_shapes --out "$work/ok" --parties 2 --per-party 6 --size 32
  ok=(--source "$work/ok" --partition folders)
  x="$work/x.h5"
  expect_fail "--image-size: 48 not in \{32,64,128\}" \
    "$fedgan" prepare --dataset folder "${ok[@]}" --image-size 48 --out "$x"
  expect_fail "--channels: 2 not in \{1,3\}" \
    "$fedgan" prepare --dataset folder "${ok[@]}" --channels 2 --out "$x"
  expect_fail "--image-size: only with --dataset folder" \
    "$fedgan" prepare --dataset hdf5 --source "$work/any.h5" --image-size 32 --out "$x"
  expect_fail "--parties: not with --partition folders" \
    "$fedgan" prepare --dataset folder "${ok[@]}" --parties 3 --out "$x"
  expect_fail "--partition folders: only with --dataset folder" \
    mpi 2 "$fedgan" prepare --partition folders --out "$x"
  expect_fail "nowhere: no such directory" \
    "$fedgan" prepare --dataset folder --source "$work/nowhere" --out "$x"
  # An empty party folder is refused, naming it (at 2 ranks: every rank stops).
  cp -r "$work/ok" "$work/empty"; mkdir "$work/empty/party_2"
  expect_fail "empty/party_2: party folder holds no images" \
    mpi 2 "$fedgan" prepare --dataset folder --source "$work/empty" --partition folders --out "$x"
  # An undecodable image stops it, naming the file and stb_image's reason ...
  cp -r "$work/ok" "$work/bad"; echo "not a jpeg" >"$work/bad/party_1/circle/9.jpg"
  expect_fail "bad/party_1/circle/9.jpg: not a readable image \(stb_image: .*--skip-bad-images" \
    "$fedgan" prepare --dataset folder --source "$work/bad" --partition folders --out "$x"
  # ... or is left out with a count.
  out=$(prepare --source "$work/bad" --partition folders --skip-bad-images --out "$work/skip.h5") \
    || { echo "$out"; fail "--skip-bad-images"; }
  grep -q "skipped 1 images that could not be decoded (--skip-bad-images): .*9.jpg" <<<"$out" \
    || { echo "$out"; fail "no warning for the skipped image"; }
  grep -q "(12 samples," <<<"$out" || { echo "$out"; fail "expected 12 of 13 images"; }
  # A symlink loop is named, not walked forever.
  cp -r "$work/ok" "$work/loop"; ln -s "$work/loop" "$work/loop/party_0/circle/back"
  expect_fail "loop/party_0/circle/back: a symbolic link loop \(it leads back to .*/loop" \
    timeout 30 "$fedgan" prepare --dataset folder --source "$work/loop" --partition folders --out "$x"
  # No images: only other files.
  mkdir -p "$work/none/a"; echo text >"$work/none/a/readme.txt"
  expect_fail "none: no images found .*readme.txt" \
    "$fedgan" prepare --dataset folder --source "$work/none" --out "$x"
  [ ! -e "$x" ] || fail "a failed prepare left $x"
  ! ls -a "$work" | grep -q '\.tmp' || fail "a failed prepare left a temporary file"
  ;;
train)
  make_shapes --out "$work/img" --parties 2 --per-party 32 --size 32
  prepare --source "$work/img" --partition folders --image-size 32 --out "$work/data.h5" >/dev/null \
    || fail "prepare"
  out=$(mpi 2 "$fedgan" train --model dcgan --data "$work/data.h5" --rounds 1 --g-width 8 \
    --d-width 8 --latent-dim 16 --local-steps 2 --batch-size 16 --threads 1 \
    --out "$work/run" 2>&1) || { echo "$out"; fail "train on the folder dataset"; }
  grep -q "2 parties .*model dcgan c=3 s=32" <<<"$out" || { echo "$out"; fail "model line"; }
  [ -s "$work/run/checkpoints/latest.h5" ] || fail "no checkpoint"
  echo "ok: one round of dcgan on a 32 px RGB folder dataset, 2 parties on 2 ranks"
  ;;
*) fail "unknown case $case" ;;
esac
