#!/usr/bin/env bash
# Builds latent and runs its whole test suite (CTest). On a fresh Debian machine it first installs
# what the build needs. Usage: scripts/test.sh [BUILD_DIR]   (default: build)
# Environment: LATENT_CUDA=AUTO|ON|OFF (default AUTO), JOBS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

bash scripts/install-deps.sh --test

jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENT_CUDA="${LATENT_CUDA:-AUTO}"
cmake --build "$build_dir" -j "$jobs"
# CTest already runs tests in parallel: one OpenMP thread per test avoids oversubscribing the
# cores (the kernels give the same results for any thread count; the tests that check that set
# their thread counts themselves).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"

# The fast unit tests again, built with AddressSanitizer and UndefinedBehaviorSanitizer (a CPU
# build of its own in "$build_dir-sanitize", without OpenBLAS and SLEEF, so that latent's own GEMM
# and the C-library path of the vector functions are checked too): a memory error, a leak or
# undefined behaviour fails the run. With clang and its libFuzzer (installed by install-deps.sh) the same build also makes
# one libFuzzer binary per file parser and fuzzes each for LATENT_FUZZ_SECONDS (default 10) from
# the seed corpus in tests/fuzz/corpus (ctest label `fuzz`); without them the parsers are fuzzed by
# the mutation loop inside the unit tests only. On 2 cores: about 3 minutes of building with
# clang (6 with g++), 10 seconds of unit tests, 50 of fuzzing. LATENT_SANITIZE_TESTS=OFF skips it.
if [ "${LATENT_SANITIZE_TESTS:-ON}" != OFF ]; then
  sanitize_dir="$build_dir-sanitize"
  fuzz=OFF
  compiler=()
  fuzz_probe=$(mktemp -d)
  if command -v clang++ >/dev/null 2>&1 &&
    echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    clang++ -x c++ -fsanitize=fuzzer,address - -o "$fuzz_probe/probe" >/dev/null 2>&1; then
    fuzz=ON
    compiler=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
      -DLATENT_FUZZ_SECONDS="${LATENT_FUZZ_SECONDS:-10}")
  else
    echo "test.sh: clang's libFuzzer is not available; the parsers are fuzzed by the unit tests' mutation loop only"
  fi
  rm -rf "$fuzz_probe"
  # A folder configured with another compiler is configured afresh.
  if [ -f "$sanitize_dir/CMakeCache.txt" ] &&
    ! grep -q "LATENT_FUZZ:BOOL=$fuzz" "$sanitize_dir/CMakeCache.txt"; then
    rm -rf "$sanitize_dir"
  fi
  cmake -S . -B "$sanitize_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLATENT_CUDA=OFF -DLATENT_MPI=OFF -DLATENT_BLAS=OFF -DLATENT_SLEEF=OFF \
    -DLATENT_SANITIZE=ON -DLATENT_BUILD_BENCH=OFF \
    -DLATENT_BUILD_EXAMPLES=OFF -DLATENT_BUILD_APPS=OFF -DLATENT_FUZZ=$fuzz ${compiler[@]+"${compiler[@]}"}
  targets=(latent_tests)
  [ "$fuzz" = ON ] && targets+=(latent_fuzzers)
  cmake --build "$sanitize_dir" --target "${targets[@]}" -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    OMP_NUM_THREADS=2 "$sanitize_dir/tests/latent_tests" --gtest_brief=1
  if [ "$fuzz" = ON ]; then
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OMP_NUM_THREADS=1 \
      ctest --test-dir "$sanitize_dir" -L fuzz --output-on-failure -j "$jobs"
  fi
fi
