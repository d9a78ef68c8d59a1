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

# The fast unit tests again, built with AddressSanitizer and UndefinedBehaviorSanitizer (a CPU
# build of their own in "$build_dir-sanitize"; about 6 minutes of building on 2 cores, seconds of
# running): a memory error, a leak or undefined behaviour fails the run. LATENT_SANITIZE_TESTS=OFF
# skips it.
if [ "${LATENT_SANITIZE_TESTS:-ON}" != OFF ]; then
  cmake -S . -B "$build_dir-sanitize" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLATENT_CUDA=OFF -DLATENT_MPI=OFF -DLATENT_SANITIZE=ON -DLATENT_BUILD_BENCH=OFF \
    -DLATENT_BUILD_EXAMPLES=OFF -DLATENT_BUILD_APPS=OFF
  cmake --build "$build_dir-sanitize" --target latent_tests -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    OMP_NUM_THREADS=2 "$build_dir-sanitize/tests/latent_tests" --gtest_brief=1
fi
