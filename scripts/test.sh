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
# CTest already runs tests in parallel: one OpenMP thread per test avoids oversubscribing the
# cores (the kernels give the same results for any thread count; the tests that check that set
# their thread counts themselves).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
