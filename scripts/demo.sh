#!/usr/bin/env bash
# Sets up fedgan and runs the main job on the built-in Fashion-MNIST default on 2 ranks.
# usage: scripts/demo.sh [ranks]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks="${1:-2}"
scripts/setup.sh release
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe -n "$ranks" build/release/fedgan info
