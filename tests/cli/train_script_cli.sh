#!/usr/bin/env bash
# `fedgan train --model torchscript` end to end: a user's G and D written in PyTorch
# (examples/models), scripted, trained by fedgan and exported back to PyTorch.
# usage: train_script_cli.sh FEDGAN MPIEXEC WORKDIR CASE
#   CASE: script_errors | script_equivalence | script_ranks | script_export | script_residual |
#         script_strategies | script_config
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/train_common.sh" "$@"
"$python" -c "import torch" 2>/dev/null || { echo "SKIPPED: Debian's python3-torch is not installed"; exit 77; }
models="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/models" && pwd)"

# export_pair DIR ARGS...: G.pt, D.pt and init.pt of examples/models/export_models.py.
export_pair() {
  local dir="$1"; shift
  "$python" "$models/export_models.py" --out "$dir" "$@" >/dev/null 2>&1 || fail "export_models.py $*"
}
# The built-in dcgan's small test model, written in PyTorch (28 px grey, widths 8, z 16).
dcgan_args=(--family dcgan --channels 1 --image-size 28 --latent-dim 16 --g-width 8 --d-width 8)
script=(--data "$work/data.h5" --model torchscript --local-steps 2 --batch-size 16
        --server-optimizer fedavgm --threads 1)

case "${case#script_}" in
errors)
  # Each bad archive or mismatch is named before the first round, on every rank.
  export_pair "$work/m" "${dcgan_args[@]}" --seed 0
  export_pair "$work/m32" --family dcgan --channels 1 --image-size 32 --latent-dim 16 \
    --g-width 8 --d-width 8 --seed 0
  export_pair "$work/mc" "${dcgan_args[@]}" --num-classes 2 --seed 0
  expect_fail "missing.pt \(--generator\): no such file" mpi 2 "$fedgan" train "${script[@]}" \
    --generator "$work/missing.pt" --discriminator "$work/m/D.pt" --rounds 1 --out "$work/r1"
  printf 'this is not an archive' >"$work/text.pt"
  expect_fail "text.pt \(--discriminator\): not a TorchScript archive" mpi 2 "$fedgan" train \
    "${script[@]}" --generator "$work/m/G.pt" --discriminator "$work/text.pt" --rounds 1 --out "$work/r2"
  expect_fail "G\(z\) returns \[2, 1, 32, 32\].*\[2, 1, 28, 28\]" mpi 2 "$fedgan" train "${script[@]}" \
    --generator "$work/m32/G.pt" --discriminator "$work/m/D.pt" --rounds 1 --out "$work/r3"
  expect_fail "D\(x\) fails on a batch of 2" "$fedgan" train "${script[@]}" \
    --generator "$work/m/G.pt" --discriminator "$work/m32/D.pt" --rounds 1 --out "$work/r4"
  expect_fail "needs both --generator G.pt and --discriminator D.pt" "$fedgan" train "${script[@]}" \
    --generator "$work/m/G.pt" --rounds 1 --out "$work/r5"
  expect_fail "needs --generator G.pt and --discriminator D.pt" "$fedgan" train "${script[@]}" \
    --rounds 1 --out "$work/r6"
  expect_fail "need --model torchscript" "$fedgan" train "${small[@]}" --generator "$work/m/G.pt" \
    --rounds 1 --out "$work/r7"
  expect_fail "a conditional model; train it with --conditional" "$fedgan" train "${script[@]}" \
    --generator "$work/mc/G.pt" --discriminator "$work/mc/D.pt" --rounds 1 --out "$work/r8"
  expect_fail "--conditional needs a conditional model" "$fedgan" train "${script[@]}" --conditional \
    --generator "$work/m/G.pt" --discriminator "$work/m/D.pt" --rounds 1 --out "$work/r9"
  expect_fail "one is conditional" "$fedgan" train "${script[@]}" \
    --generator "$work/m/G.pt" --discriminator "$work/mc/D.pt" --rounds 1 --out "$work/r10"
  # (On a CPU-only machine the earlier "bf16 needs a CUDA device" refusal answers first.)
  expect_fail "bf16 (is not available for --model torchscript|needs a CUDA device)" "$fedgan" train "${script[@]}" \
    --precision bf16 --generator "$work/m/G.pt" --discriminator "$work/m/D.pt" --rounds 1 --out "$work/r11"
  # A resume with other archives is another model.
  "$fedgan" train "${script[@]}" --generator "$work/m/G.pt" --discriminator "$work/m/D.pt" \
    --rounds 1 --out "$work/r12" >/dev/null 2>&1 || fail "train"
  export_pair "$work/m_other" "${dcgan_args[@]}" --seed 1
  expect_fail "differs from this run's" "$fedgan" train "${script[@]}" --rounds 2 --out "$work/r12" \
    --generator "$work/m_other/G.pt" --discriminator "$work/m_other/D.pt" --resume
  ;;
equivalence)
  # The built-in dcgan and its PyTorch twin (examples/models/dcgan.py), scripted, from the same
  # initial values (init.pt) and seed: the same losses and the same model, bit for bit (the
  # graph runs op by op with eager autograd, the same ATen kernels in the same order).
  export_pair "$work/m" "${dcgan_args[@]}" --seed 3
  "$fedgan" train "${small[@]}" --rounds 3 --checkpoint-every 3 --out "$work/builtin" \
    --init "$work/m/init.pt" --init-strict >/dev/null 2>&1 || fail "built-in run"
  "$fedgan" train "${script[@]}" --generator "$work/m/G.pt" --discriminator "$work/m/D.pt" \
    --rounds 3 --checkpoint-every 3 --out "$work/script" >/dev/null 2>&1 || fail "scripted run"
  "$python" - "$work/builtin" "$work/script" <<'PY'
import csv, sys, h5py, numpy as np
rows = [list(csv.DictReader(open(d + "/metrics.csv"))) for d in sys.argv[1:3]]
for a, b in zip(*rows):
    for key in ("d_loss", "g_loss"):
        assert a[key] == b[key], (a["round"], key, a[key], b[key])
a, b = (h5py.File(d + "/checkpoints/latest.h5", "r") for d in sys.argv[1:3])
n = 0
for group in ("generator", "discriminator"):
    assert sorted(a[group]) == sorted(b[group]), (sorted(a[group]), sorted(b[group]))
    for k in a[group]:
        x, y = a[group][k][()], b[group][k][()]
        assert np.array_equal(x, y), (group, k, float(np.abs(x - y).max()))
        n += x.size
print(f"ok: built-in and scripted DCGAN equal: losses of {len(rows[0])} rounds, {n} values")
PY
  ;;
ranks)
  # 2 ranks = 1 rank, and a resume (without the archive files: the checkpoint holds them) =
  # the uninterrupted run, bit for bit.
  export_pair "$work/m" "${dcgan_args[@]}" --seed 0
  pair=(--generator "$work/m/G.pt" --discriminator "$work/m/D.pt")
  "$fedgan" train "${script[@]}" "${pair[@]}" --rounds 3 --out "$work/one" >/dev/null 2>&1 || fail "1 rank"
  mpi 2 "$fedgan" train "${script[@]}" "${pair[@]}" --rounds 3 --out "$work/two" >/dev/null 2>&1 || fail "2 ranks"
  same_models "$work/one/checkpoints/latest.h5" "$work/two/checkpoints/latest.h5"
  mpi 2 "$fedgan" train "${script[@]}" "${pair[@]}" --rounds 2 --checkpoint-every 1 --out "$work/res" \
    >/dev/null 2>&1 || fail "first part"
  mv "$work/m" "$work/m_moved"
  mpi 2 "$fedgan" train "${script[@]}" --rounds 3 --out "$work/res" --resume >/dev/null 2>&1 \
    || fail "resume without the archives"
  same_models "$work/one/checkpoints/latest.h5" "$work/res/checkpoints/latest.h5"
  ;;
export)
  # export -> PyTorch: the archive and the state dict both give fedgan's samples (a conditional
  # model: the test data keep classes 0 and 1 of Fashion-MNIST's 10).
  export_pair "$work/m" "${dcgan_args[@]}" --num-classes 10 --seed 0
  "$fedgan" train "${script[@]}" --conditional --generator "$work/m/G.pt" --discriminator "$work/m/D.pt" \
    --rounds 2 --out "$work/run" >/dev/null 2>&1 || fail "train"
  ck="$work/run/checkpoints/latest.h5"
  "$fedgan" export --checkpoint "$ck" --out "$work/exp" >/dev/null 2>&1 || fail "export"
  "$fedgan" sample --checkpoint "$ck" --n 20 --out "$work/s.h5" >/dev/null 2>&1 || fail "sample"
  expect_fail "exists; use --force" "$fedgan" export --checkpoint "$ck" --out "$work/exp"
  "$python" - "$work/exp" "$work/s.h5" "$models" <<'PY'
import sys, h5py, numpy as np, torch
exp, samples, models = sys.argv[1:4]
sys.path.insert(0, models)
from dcgan import build
f = h5py.File(samples, "r")
z = torch.from_numpy(f["latents"][()]); y = torch.from_numpy(f["labels"][()])
want = f["images"][()].astype(np.int64)
def uint8(x):  # fedgan's io::to_uint8: round((x + 1) * 127.5), clamped
    return torch.clamp(torch.round((x + 1) * 127.5), 0, 255).to(torch.int64).numpy()
scripted = torch.jit.load(exp + "/G.pt").eval()
eager, _ = build(channels=1, image_size=28, latent_dim=16, g_width=8, d_width=8, num_classes=10)
eager.load_state_dict(torch.load(exp + "/G_state.pt"))
eager.eval()
with torch.no_grad():
    for name, g in (("G.pt", scripted), ("G_state.pt", eager)):
        got = uint8(g(z, y))
        gap = int(np.abs(got - want).max())
        assert gap <= 1, (name, gap)  # the same floats; a rounding tie may fall either side
        print(f"ok: {name} gives fedgan's {len(z)} samples (largest gap {gap} of 255)")
PY
  ;;
residual)
  # The residual SNGAN-style model trains end to end on 2 ranks, at 32 px RGB (shapes data).
  "$python" "$(dirname "${BASH_SOURCE[0]}")/../../scripts/make_shapes.py" --parties 2 --per-party 48 \
    --size 32 --seed 0 --out "$work/img" >/dev/null 2>&1 || fail "make_shapes"
  "$fedgan" prepare --dataset folder --source "$work/img" --partition folders --image-size 32 \
    --channels 3 --out "$work/rgb.h5" >/dev/null 2>&1 || fail "prepare"
  export_pair "$work/m" --family sngan --channels 3 --image-size 32 --latent-dim 32 --g-width 16 \
    --d-width 16 --seed 0
  mpi 2 "$fedgan" train --data "$work/rgb.h5" --model torchscript --generator "$work/m/G.pt" \
    --discriminator "$work/m/D.pt" --loss hinge --local-steps 2 --batch-size 16 --threads 1 \
    --rounds 2 --out "$work/run" >"$work/log" 2>&1 || { cat "$work/log"; fail "sngan run"; }
  grep -q "round 2/2" "$work/log" || fail "no round 2"
  "$fedgan" sample --checkpoint "$work/run/checkpoints/latest.h5" --n 16 --out "$work/s.png" \
    >/dev/null 2>&1 || fail "sample"
  "$python" -c "
from PIL import Image; import sys
im = Image.open(sys.argv[1]); assert im.mode == 'RGB', im.mode; print('ok: RGB grid', im.size)" "$work/s.png"
  ;;
strategies)
  # The round's methods see names, shapes and flat buffers only: each runs on a scripted model at
  # 2 ranks and equals its run at 1 rank bit for bit (robust rule, SCAFFOLD + FedYogi, DP with
  # secure aggregation, G EMA), and a warm start from a built-in dcgan checkpoint loads fully.
  export_pair "$work/m" "${dcgan_args[@]}" --seed 0
  pair=(--generator "$work/m/G.pt" --discriminator "$work/m/D.pt" --rounds 2)
  i=0
  for extra in "--aggregator trimmed-mean --trim-beta 0.25" \
               "--client-strategy scaffold --server-optimizer fedyogi --server-lr 0.01" \
               "--dp-clip 0.5 --dp-noise-multiplier 1 --participation 0.5 --secure-agg" \
               "--g-ema 0.9 --local-bn"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    "$fedgan" train "${script[@]}" "${pair[@]}" $extra --out "$work/one$i" >"$work/log$i" 2>&1 \
      || { cat "$work/log$i"; fail "1 rank: $extra"; }
    # shellcheck disable=SC2086
    mpi 2 "$fedgan" train "${script[@]}" "${pair[@]}" $extra --out "$work/two$i" >/dev/null 2>&1 \
      || fail "2 ranks: $extra"
    same_models "$work/one$i/checkpoints/latest.h5" "$work/two$i/checkpoints/latest.h5"
  done
  "$fedgan" train "${small[@]}" --rounds 1 --out "$work/builtin" >/dev/null 2>&1 || fail "built-in run"
  out=$("$fedgan" train "${script[@]}" "${pair[@]}" --init "$work/builtin/checkpoints/latest.h5" \
    --init-strict --out "$work/warm" 2>&1) || { echo "$out"; fail "warm start from a built-in checkpoint"; }
  grep -q "generator: transferred .* values, 100%)" <<<"$out" || { echo "$out"; fail "not everything transferred"; }
  ;;
config)
  # The model in a TOML config file, as any other option.
  export_pair "$work/m" "${dcgan_args[@]}" --seed 0
  cat >"$work/run.toml" <<EOF
[train]
data = "$work/data.h5"
model = "torchscript"
generator = "$work/m/G.pt"
discriminator = "$work/m/D.pt"
rounds = 1
local-steps = 2
batch-size = 16
EOF
  "$fedgan" --config "$work/run.toml" train --threads 1 --out "$work/run" >"$work/log" 2>&1 || { cat "$work/log"; fail "config run"; }
  grep -q "model torchscript c=1 s=28 z=16 k=0 id=" "$work/log" || { cat "$work/log"; fail "architecture line"; }
  grep -q '^generator=".*/m/G.pt"' "$work/run/config.toml" || fail "config.toml lacks generator"
  # Freezing by block: the archive's fedgan_blocks name G's blocks (blocks.0 first).
  "$fedgan" --config "$work/run.toml" train --threads 1 --freeze-g 1 --out "$work/frozen" \
    >/dev/null 2>&1 || fail "--freeze-g 1"
  "$python" - "$work/frozen/checkpoints/latest.h5" "$work/m/init.pt" <<'PY'
import sys, h5py, numpy as np, torch
f = h5py.File(sys.argv[1], "r"); init = torch.load(sys.argv[2])
for k in ("blocks.0.conv.weight", "blocks.1.conv.weight"):
    same = np.array_equal(f["generator"][k][()], init["generator." + k].numpy())
    assert same == k.startswith("blocks.0"), (k, same)
print("ok: --freeze-g 1 kept blocks.0 and trained blocks.1")
PY
  ;;
*) fail "unknown case $case" ;;
esac
echo "ok: $case"
