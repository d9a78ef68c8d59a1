#!/usr/bin/env bash
# Builds latent and runs its whole test suite (CTest). On a fresh Debian machine it first installs
# what the build needs. Usage: scripts/test.sh [BUILD_DIR]   (default: build)
# Environment: LATENT_CUDA=AUTO|ON|OFF (default AUTO), JOBS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

bash scripts/install-deps.sh

jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENT_CUDA="${LATENT_CUDA:-AUTO}"
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
