#!/usr/bin/env bash
# Everything a GPU machine run does, in one go (DESIGN.md section 10):
#   configure and build with the CUDA backend (GoogleTest from .deps/googletest),
#   run every test, run compute-sanitizer memcheck and racecheck on the CUDA tests,
#   run the benchmarks, and leave logs, JSON and a summary in RESULTS_DIR.
# Usage: scripts/gpu-check.sh RESULTS_DIR        (run scripts/prepare-gpu-run.sh beforehand)
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 RESULTS_DIR" >&2; exit 2; }
cd "$(dirname "$0")/.."
out=$(mkdir -p "$1" && cd "$1" && pwd)
build=${BUILD_DIR:-build-gpu}
jobs=$(nproc)
summary="$out/summary.txt"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }

[ -d .deps/fashion-mnist ] && export LATENT_FASHION_MNIST="$PWD/.deps/fashion-mnist"
note "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
note "commit: $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
note "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
note "nvcc: $(nvcc --version 2>/dev/null | tail -1)"

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 || { note "configure: FAILED"; exit 1; }
cmake --build "$build" -j "$jobs" > "$out/build.log" 2>&1 || { note "build: FAILED (build.log)"; exit 1; }
note "build: ok"

ctest --test-dir "$build" -j "$jobs" --output-on-failure > "$out/ctest.log" 2>&1
ctest_rc=$?
note "ctest: rc=$ctest_rc; $(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1)"
skipped=$(grep -c 'Skipped' "$out/ctest.log" || true)
note "ctest skipped: $skipped"

if command -v compute-sanitizer >/dev/null && [ -x "$build/tests/latent_cuda_tests" ]; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 99 "$build/tests/latent_cuda_tests" \
      > "$out/sanitizer-$tool.log" 2>&1
    rc=$?
    note "compute-sanitizer $tool: $([ $rc -eq 0 ] && echo clean || echo "FAILED rc=$rc") ($(grep -E 'ERROR SUMMARY' "$out/sanitizer-$tool.log" | tail -1))"
  done
else
  note "compute-sanitizer: not run (tool or CUDA test binary missing)"
fi

for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  "$b" > "$out/$name.jsonl" 2> "$out/$name.log"
  note "$name: rc=$? ($(wc -l < "$out/$name.jsonl") JSON lines)"
done
if [ -x bench/pytorch/run.sh ]; then
  bash bench/pytorch/run.sh > "$out/pytorch.jsonl" 2> "$out/pytorch.log"
  note "pytorch side-by-side: rc=$?"
fi
exit $ctest_rc
