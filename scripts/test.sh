#!/usr/bin/env bash
# Sets up (installs, builds) and runs every test: unit, MPI at 1/2/4 ranks, CLI.
# usage: scripts/test.sh [preset] [ctest args...]   (preset: ci (default: release, warnings are
# errors) | release | debug)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-ci}"
shift || true
scripts/setup.sh "$preset"
# Open MPI refuses root unless told (CI and containers run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --preset "$preset" "$@"
