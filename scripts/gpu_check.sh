#!/usr/bin/env bash
# The GPU check: builds fedgan against the machine's CUDA LibTorch (PyTorch 2.x) with NCCL, runs
# ctest, then GPU training runs, the CPU twin, MPI and NCCL aggregation and the local-step
# benchmark against PyTorch on the same GPU. Unattended; every result lands in OUT_DIR.
# Needs: nvcc/CUDA, CMake, ninja, python3 with torch (CUDA) and nvidia-nccl-cu13, and the kit of
# Debian's Open MPI + HDF5 + header-only libraries (`../shared/gpu/make-kit.sh .dev/kit` on a
# Debian 12 machine; KIT=path overrides): `scripts/gpu_kit.sh` makes it, with libsodium and a copy of
# Fashion-MNIST's IDX files (KIT/../fmnist), which this script installs where fedgan looks for them.
# usage: scripts/gpu_check.sh OUT_DIR [full|build-only|runs]   (runs: GPU-labelled tests, no benchmarks)
set -euo pipefail   # each step that may fail is caught (|| ...), so the check runs on
out="$(mkdir -p "${1:?usage: gpu_check.sh OUT_DIR [full|build-only]}" && cd "$1" && pwd)"
mode="${2:-full}"
cd "$(dirname "$0")/.."
kit="${KIT:-.dev/kit}"
build="${BUILD:-/tmp/fedgan-gpu-build}"
log() { echo "== $(date +%T) $*" | tee -a "$out/summary.txt"; }
# shellcheck disable=SC1091
source "$kit/env.sh"
[ -f "$kit/usr/lib/x86_64-linux-gnu/pkgconfig/libsodium.pc" ] \
  || { echo "gpu_check: $kit has no libsodium (secure aggregation needs it): make the kit with scripts/gpu_kit.sh" >&2; exit 2; }
export PKG_CONFIG_PATH="$(cd "$kit" && pwd)/usr/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
fm=/usr/share/datasets/fashion-mnist
if [ ! -f "$fm/t10k-images-idx3-ubyte.gz" ] && [ -d "$kit/../fmnist" ]; then mkdir -p "$fm" && cp "$kit/../fmnist/"*.gz "$fm/"; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
py=python3
# The CLI tests read checkpoints with h5py/numpy/torch: the machine's python3 has them, its
# /usr/bin/python3 (the tests' default) may not.
FEDGAN_PYTHON="$($py -c 'import sys; print(sys.executable)')"; export FEDGAN_PYTHON
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
torch_dir=$($py -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch
nccl_dir=$($py -c 'import nvidia.nccl,os;print(os.path.dirname(nvidia.nccl.__file__))' 2>/dev/null || true)
[ -n "$nccl_dir" ] || nccl_dir=$($py -c 'import nvidia.nccl;print(list(nvidia.nccl.__path__)[0])')
log "torch $($py -c 'import torch;print(torch.__version__, torch.version.cuda, torch._C._GLIBCXX_USE_CXX11_ABI)') nccl $nccl_dir"
# The wheel's CUDA libraries (cudart, cublas, cudnn...) for the programs we build.
torch_lib=$($py -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))')
export LD_LIBRARY_PATH="$torch_lib:$nccl_dir/lib:${LD_LIBRARY_PATH:-}"

log "configure"
t0=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$torch_dir" \
  -DNCCL_ROOT="$nccl_dir" -DFEDGAN_NCCL=ON -DCMAKE_CUDA_ARCHITECTURES=90 >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; log "configure FAILED"; exit 1; }
grep -E "fedgan:|Torch|CUDA" "$out/configure.log" | head -8 | tee -a "$out/summary.txt"
log "build (ninja -k 0, $(nproc) cores)"
ninja -C "$build" -k 0 >"$out/build.log" 2>&1 && rc=0 || rc=$?
log "build rc=$rc in $(( $(date +%s) - t0 )) s"
if [ $rc -ne 0 ]; then grep -E "error|Error" "$out/build.log" | head -60; exit 1; fi
[ "$mode" = build-only ] && exit 0
f="$build/fedgan"

log "fedgan info (1 and 2 ranks)"
"$f" info 2>&1 | tee -a "$out/summary.txt" || true
mpirun -n 2 "$f" info 2>&1 | tee -a "$out/summary.txt" || true

log "ctest"
if [ "$mode" = runs ]; then ctest_args=(-L gpu); else ctest_args=(); fi
# One intra-op thread per test process: 16 tests at once with 16 threads each starved the DP
# unit tests past their timeout on the first GPU check (2026-12-04).
(cd "$build" && OMP_NUM_THREADS=1 timeout 300 ctest -j 16 --timeout 200 "${ctest_args[@]}" >"$out/ctest.log" 2>&1) || true
tail -25 "$out/ctest.log" | tee -a "$out/summary.txt"

data=/tmp/gpu_check_data; mkdir -p $data
"$f" prepare --split test --classes 5,6,7,8,9 --parties 2 --partition dirichlet --alpha 0.5 \
  --out $data/d2.h5 --force >/dev/null 2>&1 || log "prepare d2 FAILED (is Fashion-MNIST in /usr/share/datasets?)"
"$f" prepare --split test --classes 5,6,7,8,9 --parties 64 --partition iid \
  --out $data/d64.h5 --force >/dev/null 2>&1 || log "prepare d64 FAILED"
common=(--data $data/d2.h5 --rounds 5 --local-steps 20 --batch-size 64 --seed 3 --sample-every 5)
run() { local name=$1; shift; local t=$(date +%s.%N)
  local rc=0; "$@" >"$out/$name.log" 2>&1 || rc=$?
  log "$name rc=$rc $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
  [ -f "/tmp/gpu_runs/$name/metrics.csv" ] && cp "/tmp/gpu_runs/$name/metrics.csv" "$out/$name.csv"
  grep -E "devices:|round +[0-9]+/|Error|error" "$out/$name.log" | tail -8 >>"$out/summary.txt" || true; }
rm -rf /tmp/gpu_runs
run gpu_1r "$f" train "${common[@]}" --device cuda --out /tmp/gpu_runs/gpu_1r
run cpu_1r "$f" train "${common[@]}" --device cpu --threads 16 --out /tmp/gpu_runs/cpu_1r
run gpu_2r_mpi mpirun -n 2 "$f" train "${common[@]}" --device cuda --comm mpi --out /tmp/gpu_runs/gpu_2r_mpi
run gpu_1r_nccl "$f" train "${common[@]}" --device cuda --comm nccl --out /tmp/gpu_runs/gpu_1r_nccl
run gpu_2r_nccl_refused mpirun -n 2 "$f" train "${common[@]}" --device cuda --comm nccl --out /tmp/gpu_runs/gpu_2r_nccl
run gpu_1r_bf16 "$f" train "${common[@]}" --device cuda --precision bf16 --out /tmp/gpu_runs/gpu_1r_bf16
run gpu_1r_det_a "$f" train "${common[@]}" --device cuda --deterministic --out /tmp/gpu_runs/gpu_1r_det_a
run gpu_1r_det_b "$f" train "${common[@]}" --device cuda --deterministic --out /tmp/gpu_runs/gpu_1r_det_b
$py - "$out" <<'PY' 2>&1 | tee -a "$out/summary.txt" || true
import csv, sys, os
o = sys.argv[1]
def rows(n):
    p = os.path.join(o, n + ".csv")
    return list(csv.DictReader(open(p))) if os.path.exists(p) else []
print("round | " + " | ".join(n for n in ("gpu_1r","cpu_1r","gpu_2r_mpi","gpu_1r_nccl","gpu_1r_bf16")) + "  (d_loss/g_loss)")
for i in range(5):
    cells = []
    for n in ("gpu_1r","cpu_1r","gpu_2r_mpi","gpu_1r_nccl","gpu_1r_bf16"):
        r = rows(n)
        cells.append(f"{float(r[i]['d_loss']):.4f}/{float(r[i]['g_loss']):.4f}" if i < len(r) else "-")
    print(f"{i+1} | " + " | ".join(cells))
for n in ("gpu_1r","cpu_1r","gpu_2r_mpi","gpu_1r_nccl","gpu_1r_bf16"):
    r = rows(n)[1:]
    if r:
        med = lambda k: sorted(float(x[k]) for x in r)[len(r)//2]
        print(f"{n}: median local_train_s {med('local_train_s'):.4f} aggregate_s {med('aggregate_s'):.5f} images_per_s {med('images_per_s'):.0f}")
PY
$py - <<'PY' 2>&1 | tee -a "$out/summary.txt" || true
import h5py, numpy as np
a = h5py.File("/tmp/gpu_runs/gpu_1r_det_a/checkpoints/latest.h5"); b = h5py.File("/tmp/gpu_runs/gpu_1r_det_b/checkpoints/latest.h5")
c = h5py.File("/tmp/gpu_runs/gpu_1r/checkpoints/latest.h5")
for name, y in (("deterministic twice", b), ("deterministic vs default", c)):
    m = max(float(np.abs(a[g][k][()] - y[g][k][()]).max()) for g in ("generator","discriminator") for k in a[g])
    print(f"{name}: max |difference| of model values after 5 rounds = {m:.3g}")
PY

log "parties per GPU: 64 parties on one rank, memory"
nvidia-smi --query-gpu=memory.used --format=csv,noheader -lms 200 >"$out/mem64.txt" 2>&1 &
smi=$!
run gpu_64parties "$f" train --data $data/d64.h5 --rounds 2 --local-steps 5 --device cuda --out /tmp/gpu_runs/gpu_64parties
run gpu_64parties_keep "$f" train --data $data/d64.h5 --rounds 2 --local-steps 5 --device cuda --optimizer-state keep --out /tmp/gpu_runs/gpu_64parties_keep
kill $smi 2>/dev/null || true
echo "peak memory.used while 64 parties trained: $(sort -n "$out/mem64.txt" | tail -1)" | tee -a "$out/summary.txt"

[ "$mode" = runs ] && { log "done (runs)"; cat "$out/summary.txt"; exit 0; }
log "local step: fedgan vs PyTorch on the GPU"
b="$build/bench_local_step"
for bs in 64 256; do
  for fk in fresh reuse; do for pr in fp32 bf16; do
    "$b" --device cuda --batch-size $bs --g-fake $fk --precision $pr --steps 200 2>&1 | tee -a "$out/bench.txt" || true
  done; done
  for form in fresh examples; do for pr in fp32 bf16; do
    $py benchmarks/local_step_pytorch.py --device cuda --batch-size $bs --form $form --precision $pr --steps 200 2>&1 | tail -1 | tee -a "$out/bench.txt" || true
  done; done
  $py benchmarks/local_step_pytorch.py --device cuda --batch-size $bs --form fresh --graph --steps 200 2>&1 | tail -1 | tee -a "$out/bench.txt" || true
  $py benchmarks/local_step_pytorch.py --device cuda --batch-size $bs --form fresh --graph --precision bf16 --steps 200 2>&1 | tail -1 | tee -a "$out/bench.txt" || true
done
cat "$out/bench.txt" >>"$out/summary.txt"
log "done"
cat "$out/summary.txt"
