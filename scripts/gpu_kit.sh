#!/usr/bin/env bash
# The kit that scripts/gpu_check.sh needs on a GPU machine without MPI, HDF5 and libsodium:
# ../shared/gpu/make-kit.sh (Debian 12's Open MPI, HDF5, header-only libraries), plus libsodium
# (secure aggregation), which that kit lacks, with a pkg-config file that finds it where the kit
# lies. Also copies Fashion-MNIST's IDX files into KIT/../fmnist for the machine's tests.
# Run on a Debian 12 machine with apt access, from the project root.
# usage: scripts/gpu_kit.sh [KIT_DIR]   (default .dev/kit; .dev/ is git-ignored)
set -euo pipefail
cd "$(dirname "$0")/.."
kit="${1:-.dev/kit}"
maker=../shared/gpu/make-kit.sh
[ -x "$maker" ] || { echo "gpu_kit: $maker not found (it comes with the team's shared folder)" >&2; exit 2; }
"$maker" "$kit"
work="$(mktemp -d)"
(cd "$work" && apt-get download libsodium-dev libsodium23 >/dev/null 2>&1) \
  || { echo "gpu_kit: apt-get download libsodium-dev libsodium23 failed" >&2; exit 1; }
for d in "$work"/*.deb; do dpkg -x "$d" "$kit"; done
rm -rf "$work" "$kit/usr/lib/x86_64-linux-gnu/libsodium.a"
pc="$kit/usr/lib/x86_64-linux-gnu/pkgconfig/libsodium.pc"
sed -i 's|^prefix=.*|prefix=${pcfiledir}/../../..|' "$pc"   # relocatable: found wherever the kit lies
mkdir -p "$kit/../fmnist"
cp /usr/share/datasets/fashion-mnist/*.gz "$kit/../fmnist/" 2>/dev/null \
  || echo "gpu_kit: no Fashion-MNIST here (apt-get install dataset-fashion-mnist); the machine's tests that need it will fail"
du -sh "$kit" "$kit/../fmnist"
