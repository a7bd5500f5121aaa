#!/usr/bin/env bash
# Installs what fedgan needs (apt-get, only what is missing) and builds it.
# usage: scripts/setup.sh [preset [targets...]]   (preset: release (default) | debug | ci;
#        targets: default all, e.g. `scripts/setup.sh release fedgan` builds the program only)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libopenblas0-openmp   # LibTorch is ~7x slower on Debian's reference BLAS
  libopenmpi-dev openmpi-bin
  libhdf5-dev zlib1g-dev libcli11-dev catch2 libspdlog-dev libfmt-dev libstb-dev
  libsodium-dev   # secure aggregation: X25519, ChaCha20, crypto_box
  dataset-fashion-mnist
  python3 python3-h5py python3-matplotlib python3-numpy
  python3-pil     # scripts/make_shapes.py (synthetic image folders for prepare --dataset folder)
  python3-torch   # the PyTorch interop test (.pt warm start) and the local-step comparison
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# FEDGAN_CMAKE_ARGS: extra configure flags, e.g. -DFEDGAN_NCCL=ON (CI) or -DTorch_DIR=...
# shellcheck disable=SC2086
cmake --preset "$preset" ${FEDGAN_CMAKE_ARGS:-} >/dev/null
cmake --build --preset "$preset" -j "$(nproc)" "${targets[@]}"
echo "setup: built build/$preset/fedgan"
