#!/usr/bin/env bash
# The GPU machine's call (DESIGN.md section 10), after scripts/gpu-pack.sh here:
#   run(command="bash scripts/gpu-smoke.sh $OUT", carry=[".gpu"], timeout_s=360)
# Within its budget (320 s, and a little more for the summary: with a machine's start, a second run after a fix still fits in
# a session's device time), every step under `timeout` with at most what is left of it, the most
# telling first:
#   1. the GPU, driver, CUDA runtime and compute-sanitizer versions;
#   2. every CUDA test (a skipped test is a failure here; only the MultiGpu suite is left out on a
#      machine with one GPU), then the NCCL tests (a world of one) as a step of their own;
#   3. the CLI: `latent train --device cuda` for one epoch on a Fashion-MNIST subset;
#   4. bench_train --quick and bench_kernels --quick;
#   5. the PyTorch side-by-side (eager, one CUDA graph per step, torch.compile; quick), when
#      python3 has torch and a minute is left;
#   6. where the machine has mpirun: `mpirun -np 1 latent train --device cuda`; with one GPU,
#      `mpirun -np 2` refused for two ranks on one GPU (with two or more, trained on two GPUs
#      through NCCL); the MPI tests under `mpirun -np 2` (the suite DistMpiGpu runs where each rank
#      has a GPU of its own, and skips itself elsewhere);
#   7. the main job: `latent train --device cuda` for 20 epochs on the 60000 training images;
#   8. compute-sanitizer with what is left: memcheck over the CUDA tests (but those named below),
#      racecheck and synccheck over the tests of the reduction, loss, KL and optimizer kernels;
# and a short table printed last. OUT_DIR gets eight files: summary.md (device, commit, verdicts,
# the table), tests.log (the CUDA, NCCL and MPI tests), sanitizer.log, bench.jsonl (every JSON
# line), cli-summary.json, run.log, main-summary.json and main-samples.png (the main job's).
# When the carried binaries do not start (glibc, instruction set), it says so in one line and
# builds the CUDA tests and the benches (and the CLI) there with all cores.
# Without a GPU it exits 1 at once with a one-line message. Exit 0 when everything passed, 3 when
# what ran passed but a step was left out for time (or compute-sanitizer cannot use the device),
# 1 when anything failed.
# Environment: LATENT_SMOKE_SECONDS (default 320), the budget of the whole run; LATENT_SMOKE_BIN, a
# folder of binaries to use instead of the carried ones (the script's own test uses it).
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
cd "$(dirname "$0")/.." || exit 2
root=$PWD
export PATH="$PATH:/usr/local/cuda/bin"

# ---- a GPU, or stop at once ----------------------------------------------------------------
gpus=0
if command -v nvidia-smi > /dev/null 2>&1; then
  gpus=$(timeout 30 nvidia-smi -L 2> /dev/null | grep -c '^GPU ')
fi
if [ -n "${CUDA_VISIBLE_DEVICES+set}" ]; then
  case "$CUDA_VISIBLE_DEVICES" in
    "" | -1 | NoDevFiles) gpus=0 ;;
    *)
      listed=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n' | grep -c .)
      [ "$listed" -lt "$gpus" ] && gpus=$listed
      ;;
  esac
fi
if [ "${gpus:-0}" -lt 1 ]; then
  echo "gpu-smoke: no NVIDIA GPU visible (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them); run it on the GPU machine" >&2
  exit 1
fi

out=$(mkdir -p "$1" && cd "$1" && pwd) || {
  echo "gpu-smoke: cannot create $1" >&2
  exit 2
}
start=$(date +%s)
budget=${LATENT_SMOKE_SECONDS:-320}
work=${TMPDIR:-/tmp}/latent-smoke
rm -rf "$work" && mkdir -p "$work"
summary=$out/summary.md log=$out/run.log tests_log=$out/tests.log san_log=$out/sanitizer.log
bench=$out/bench.jsonl cli_json=$out/cli-summary.json main_json=$out/main-summary.json
: > "$log"
: > "$tests_log"
: > "$san_log"
: > "$bench"

say() { echo "gpu-smoke: $*" | tee -a "$log"; }
left() { echo $((budget - ($(date +%s) - start))); }
# step NAME CAP CMD...: CMD under timeout with min(CAP, what is left) seconds; the caller redirects
# its output. step_rc: CMD's status (124: out of time), 125 when no time was left to start it.
step() {
  local name=$1 cap=$2 t s
  shift 2
  t=$(left)
  [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 5 ]; then
    echo "[$name] not run: the run's time is spent" >> "$log"
    step_rc=125
    return
  fi
  s=$(date +%s)
  echo "[$name] start (limit $t s)" >> "$log"
  timeout --kill-after=5 "$t" "$@"
  step_rc=$?
  echo "[$name] rc=$step_rc after $(($(date +%s) - s)) s" >> "$log"
}
# Keeps a log under the size that comes back: its head and its tail.
cap_file() {
  local f=$1 max=$((6 * 1024 * 1024))
  [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt "$max" ] || return 0
  { head -c $((max / 2)) "$f"; printf '\n[... cut ...]\n'; tail -c $((max / 2)) "$f"; } > "$f.cut"
  mv "$f.cut" "$f"
}

# ---- 1. the machine --------------------------------------------------------------------------
tree=$(git rev-parse --short=12 HEAD 2> /dev/null)
commit=""
[ -z "${LATENT_SMOKE_BIN:-}" ] && commit=$(sed -n 's/^commit: //p' .gpu/manifest.txt 2> /dev/null)
[ -n "$commit" ] || commit=${tree:-unknown}
# Carried binaries built from other sources than the tree's test other code than the tree holds.
# The pack lists the checksums of the sources it was built from (the git metadata that travels
# with a tree need not be the tree's own).
stale=""
if [ -z "${LATENT_SMOKE_BIN:-}" ] && [ -f .gpu/sources.sha256 ]; then
  differ=$(sha256sum --quiet --check .gpu/sources.sha256 2> /dev/null | sed -n 's/: FAILED.*//p')
  if [ -n "$differ" ]; then
    stale="WARNING: the binaries were built from other sources than this tree's ($(echo "$differ" |
      wc -l) files differ: $(echo "$differ" | head -3 | tr '\n' ' ')): run scripts/gpu-pack.sh again"
  fi
fi
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2> /dev/null)
driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader -i 0 2> /dev/null)
driver_cuda=$(nvidia-smi 2> /dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1 | cut -d' ' -f3)
sanitizer=$(command -v compute-sanitizer || true)
if [ -z "$sanitizer" ]; then
  for c in /usr/local/cuda/compute-sanitizer/compute-sanitizer /opt/nvidia/compute-sanitizer/compute-sanitizer; do
    [ -x "$c" ] && sanitizer=$c && break
  done
fi
sanitizer_version=$([ -n "$sanitizer" ] && timeout 30 "$sanitizer" --version 2>&1 | grep -i version | tail -1)
[ -d /usr/local/cuda/lib64 ] && export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
say "GPU $gpu_name ($gpus visible), driver $driver (CUDA $driver_cuda), commit $commit"
[ -n "$stale" ] && say "$stale"
say "compute-sanitizer: ${sanitizer_version:-not found}"

# ---- the binaries: carried, else built here --------------------------------------------------
# Libraries the binaries link (cuBLAS, the CUDA runtime) and the NCCL plugin's libnccl: the
# toolkit's, else PyTorch's wheels.
find_missing_libraries() {
  if { [ -x "$bin/latent_cuda_tests" ] && ldd "$bin/latent_cuda_tests" 2> /dev/null | grep -q 'not found'; } ||
    { [ -f "$bin/liblatent_nccl.so" ] && ldd "$bin/liblatent_nccl.so" 2> /dev/null | grep -q 'not found'; }; then
    for d in $(python3 -c 'import nvidia, os; [print(os.path.join(p, x, "lib")) for p in nvidia.__path__ for x in os.listdir(p)]' 2> /dev/null); do
      [ -d "$d" ] && LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
    done
    export LD_LIBRARY_PATH
  fi
}
bin=$work/bin
data=$root/.gpu/data/fashion-mnist
[ -d "$data" ] || data=/usr/share/datasets/fashion-mnist
export LATENT_FASHION_MNIST=$data
carried_ok=no
origin="carried from gpu-pack.sh"
if [ -n "${LATENT_SMOKE_BIN:-}" ]; then
  bin=$LATENT_SMOKE_BIN
  origin="from LATENT_SMOKE_BIN=$bin"
  carried_ok=yes
elif [ -f .gpu/bin.tar.xz ]; then
  if command -v xz > /dev/null; then
    tar -C "$work" -xJf .gpu/bin.tar.xz 2>> "$log"
  else
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
      .gpu/bin.tar.xz "$work" 2>> "$log"
  fi
  find_missing_libraries
  if [ -x "$bin/latent_cuda_tests" ]; then
    timeout 60 "$bin/latent_cuda_tests" --gtest_list_tests > /dev/null 2> "$work/probe.err"
    probe_rc=$?
    if [ $probe_rc -eq 0 ]; then
      carried_ok=yes
    else
      why=$(grep -m1 . "$work/probe.err")
      [ $probe_rc -eq 132 ] && why="illegal instruction"
      say "the carried binaries do not start here (rc $probe_rc: ${why:-no message}); building on this machine"
    fi
  fi
else
  say "no .gpu/bin.tar.xz (run scripts/gpu-pack.sh and carry .gpu); building on this machine"
fi
if [ $carried_ok = no ]; then
  origin="built on this machine"
  stale=""
  commit=${tree:-$commit}  # the tree's, not the pack's that did not start
  [ -d .deps ] || { [ -d .gpu/deps ] && cp -r .gpu/deps .deps; }
  apps=OFF
  [ -f .deps/cli11/include/CLI/CLI.hpp ] && [ -f .deps/stb/include/stb/stb_image_write.h ] && apps=ON
  targets=(latent_cuda_tests bench_train bench_kernels)
  [ $apps = ON ] && targets+=(latent_cli)
  step configure 60 cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DLATENT_CUDA=ON -DLATENT_MPI=AUTO -DLATENT_BLAS=OFF -DLATENT_SLEEF=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DLATENT_BUILD_EXAMPLES=OFF \
    -DLATENT_BUILD_APPS=$apps -DLATENT_COMMIT="$commit" >> "$log" 2>&1
  [ $step_rc -eq 0 ] && step build 300 cmake --build "$work/build" -j "$(nproc)" \
    --target "${targets[@]}" >> "$log" 2>&1
  if [ $step_rc -ne 0 ]; then
    say "the build here failed (run.log)"
  fi
  mkdir -p "$bin"
  for f in tests/latent_cuda_tests bench/bench_train bench/bench_kernels apps/latent \
    lib/liblatent_nccl.so lib/liblatent_mpi.so; do
    [ -f "$work/build/$f" ] && cp "$work/build/$f" "$bin/"
  done
  find_missing_libraries
fi
# The NCCL library the plugin loads, and its version.
nccl_lib=$(ldd "$bin/liblatent_nccl.so" 2> /dev/null | awk '/libnccl/ && $3 ~ /^\// {print $3}' | xargs -r readlink -f)
nccl_version=$(python3 -c 'import ctypes, sys; v = ctypes.c_int(); ctypes.CDLL(sys.argv[1]).ncclGetVersion(ctypes.byref(v)); print(v.value)' "$nccl_lib" 2> /dev/null)
say "NCCL: ${nccl_lib:-not found} (version code ${nccl_version:-unknown})"
# Whether this machine could launch ranks (mpirun, and the MPI the liblatent_mpi.so carried links):
# recorded for a later run across processes here; nothing is launched.
mpirun_seen=$(command -v mpirun 2> /dev/null)
[ -n "$mpirun_seen" ] && mpirun_seen="$mpirun_seen ($(timeout 10 mpirun --version 2> /dev/null | head -1))"
mpi_lib=$(ldd "$bin/liblatent_mpi.so" 2> /dev/null | awk '/libmpi/ {print $1 " => " $3}' | head -1)

# ---- 2. every CUDA test, then the NCCL ones --------------------------------------------------
# One GPU cannot run the MultiGpu suite; there every other skip is a failure. The NCCL tests (a
# communicator of one rank) run on their own: the first use of NCCL on a machine may hang or be
# slow, and must not take the other tests' verdicts with it.
nccl_filter='DistNcclCuda.*'
test_filter="-MultiGpu.*:$nccl_filter"
[ "$gpus" -ge 2 ] && test_filter="-$nccl_filter"
# gtest_verdict LOG RC: "<verdict>: P passed, F failed, S skipped" for a test run's log.
gtest_verdict() {
  local f=$1 rc=$2 p q k v
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$f" | tail -1)
  q=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$f" | tail -1)
  k=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$f" | tail -1)
  p=${p:-0} q=${q:-0} k=${k:-0}
  if [ "$rc" -eq 0 ] && [ "$k" -eq 0 ] && [ "$p" -gt 0 ]; then
    v="pass"
  elif [ "$rc" -eq 0 ] && [ "$k" -gt 0 ]; then
    v="FAIL (a skip on the GPU machine is a failure)"
  elif [ "$rc" -eq 124 ]; then
    v="FAIL: out of time"
  elif [ "$rc" -eq 125 ]; then
    v="not run: no time"
  else
    v="FAIL: rc $rc"
  fi
  echo "$v: $p passed, $q failed, $k skipped"
}
tests_verdict="FAIL: not run (no test binary): 0 passed, 0 failed, 0 skipped"
nccl_verdict="$tests_verdict"
if [ -x "$bin/latent_cuda_tests" ]; then
  say "CUDA tests"
  step cuda_tests 120 "$bin/latent_cuda_tests" --gtest_color=no --gtest_filter="$test_filter" \
    > "$tests_log" 2>&1
  tests_verdict=$(gtest_verdict "$tests_log" $step_rc)
  say "NCCL tests (a world of one)"
  echo "==== $nccl_filter" >> "$tests_log"
  NCCL_DEBUG=${NCCL_DEBUG:-WARN} step nccl_tests 45 "$bin/latent_cuda_tests" --gtest_color=no \
    --gtest_filter="$nccl_filter" > "$work/nccl.log" 2>&1
  nccl_verdict=$(gtest_verdict "$work/nccl.log" $step_rc)
  cat "$work/nccl.log" >> "$tests_log"
fi

# ---- 3. the command-line tool on the GPU -----------------------------------------------------
bench_verdict() { case $1 in 0) echo ok ;; 124) echo "FAIL: out of time" ;; 125) echo "not run: no time" ;; *) echo "FAIL: rc $1" ;; esac; }
verdict_cli="not run: no binary"
if [ -x "$bin/latent" ]; then
  say "latent train --device cuda, one epoch on 10000 images"
  step cli 40 "$bin/latent" train --device cuda --epochs 1 --limit 10000 --test-limit 2000 \
    --ll-k 100 --ll-examples 200 --data "$data" --out "$work/cli" --overwrite > "$work/cli.out" \
    2>> "$log"
  verdict_cli=$(bench_verdict $step_rc)
  [ -f "$work/cli/summary.json" ] && cp "$work/cli/summary.json" "$cli_json"
fi

# ---- 4. benches ------------------------------------------------------------------------------
# run_bench NAME CAP CMD...: JSON lines into bench.jsonl; prints the verdict. A bench that skipped
# (it saw no GPU) fails here.
run_bench() {
  local name=$1 cap=$2 before
  shift 2
  before=$(wc -l < "$bench")
  step "$name" "$cap" "$@" >> "$bench" 2>> "$log"
  if [ $step_rc -eq 0 ] && tail -n +"$((before + 1))" "$bench" | grep -q '"skipped"'; then
    echo "FAIL: skipped ($(tail -n +"$((before + 1))" "$bench" | grep -m1 -o '"skipped":"[^"]*"'))"
  else
    bench_verdict $step_rc
  fi
}
verdict_bench_train="not run: no binary" verdict_bench_kernels="not run: no binary"
if [ -x "$bin/bench_train" ]; then
  say "bench_train --quick"
  verdict_bench_train=$(run_bench bench_train 40 "$bin/bench_train" --quick)
fi
if [ -x "$bin/bench_kernels" ]; then
  say "bench_kernels --quick"
  verdict_bench_kernels=$(run_bench bench_kernels 50 "$bin/bench_kernels" --quick)
fi

# ---- 5. PyTorch side by side (eager, one CUDA graph per step, torch.compile) -------------------
verdict_pytorch="not run: python3 has no torch"
if [ "$(left)" -lt 60 ]; then
  verdict_pytorch="not run: no time"
elif timeout 30 python3 -c 'import torch' > /dev/null 2>&1; then
  say "PyTorch eager, CUDA graph and torch.compile, quick"
  verdict_pytorch=$(run_bench pytorch 100 env LATENT_COMMIT="$commit" PYTHONUNBUFFERED=1 \
    bash bench/pytorch/run.sh --quick --models vae --configs 128,1024,4096)
  [ "$verdict_pytorch" = "FAIL: out of time" ] && verdict_pytorch="not run to the end: out of time"
fi
# ---- 6. under mpirun ----------------------------------------------------------------------------
# Only where the machine has mpirun and the MPI plugin found its libmpi. As root Open MPI needs
# --allow-run-as-root; its shared-memory transport's single-copy mechanism may be refused in a VM.
verdict_mpi1="not run: no mpirun or no MPI plugin here" verdict_mpi2="$verdict_mpi1"
verdict_mpi_tests="$verdict_mpi1"
if [ -n "$mpirun_seen" ] && [ -n "$mpi_lib" ] && [ -x "$bin/latent" ]; then
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
  mpirun_cmd=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
  cli_args=(train --device cuda --epochs 1 --limit 10000 --test-limit 2000 --ll-k 100
    --ll-examples 200 --data "$data" --overwrite)
  # mpi_train N CAP: `latent train` on N ranks into $work/mpiN (its output into run.log); sets
  # step_rc, and mpi_verdict: ok when it trained and its summary.json says world_size N.
  mpi_train() {
    local n=$1 cap=$2
    step "mpi_np$n" "$cap" "${mpirun_cmd[@]}" -np "$n" "$bin/latent" "${cli_args[@]}" \
      --out "$work/mpi$n" > "$work/mpi$n.out" 2>&1
    cat "$work/mpi$n.out" >> "$log"
    mpi_verdict=$(bench_verdict $step_rc)
    if [ "$mpi_verdict" = ok ] && ! grep -q "\"world_size\": $n" "$work/mpi$n/summary.json" 2> /dev/null; then
      mpi_verdict="FAIL: summary.json does not say world_size $n"
    fi
  }
  say "mpirun -np 1 latent train --device cuda"
  mpi_train 1 40
  verdict_mpi1=$mpi_verdict
  if [ "$gpus" -ge 2 ]; then
    say "mpirun -np 2 latent train --device cuda (two GPUs, NCCL)"
    mpi_train 2 60
    verdict_mpi2=$mpi_verdict
  else
    # Two ranks on one GPU: refused at start, naming both ranks and the GPU.
    say "mpirun -np 2 latent train --device cuda on one GPU: refused"
    mpi_train 2 40
    if [ $step_rc -eq 124 ] || [ $step_rc -eq 125 ]; then
      verdict_mpi2=$mpi_verdict
    elif [ $step_rc -ne 0 ] && grep -q 'ranks 0 and 1 would both use the GPU' "$work/mpi2.out"; then
      verdict_mpi2="ok (refused: $(grep -m1 -o 'ranks 0 and 1 would both use the GPU [^(]*' "$work/mpi2.out"))"
    else
      verdict_mpi2="FAIL: rc $step_rc, not refused as two ranks on one GPU (run.log)"
    fi
  fi
  if [ -x "$bin/latent_dist_tests" ]; then
    say "MPI tests, mpirun -np 2"
    echo "==== mpirun -np 2 latent_dist_tests" >> "$tests_log"
    # Without OMP_NUM_THREADS: two ranks unbound (--bind-to none) take half the cores each
    # (latent's Session shares them; each starting a thread per core, the CPU tests ran a hundred
    # times slower).
    step mpi_tests 90 env -u OMP_NUM_THREADS "${mpirun_cmd[@]}" -np 2 \
      "$bin/latent_dist_tests" --gtest_color=no \
      > "$work/mpi_tests.log" 2>&1
    cat "$work/mpi_tests.log" >> "$tests_log"
    verdict_mpi_tests=$(bench_verdict $step_rc)
    # With one GPU the suite DistMpiGpu skips itself, saying why (the two ranks' GPU is one).
    skipped=$(grep -c '^\[  SKIPPED \] DistMpiGpu' "$work/mpi_tests.log")
    if [ "$verdict_mpi_tests" = ok ] && [ "$skipped" -gt 0 ]; then
      why=$(grep -A1 ': Skipped$' "$work/mpi_tests.log" | grep -m1 'would both use' | cut -c1-140)
      verdict_mpi_tests="ok ($skipped DistMpiGpu skips over 2 ranks: ${why:-see tests.log})"
    fi
  fi
fi

# ---- 7. the main job: 20 epochs on the 60000 training images ----------------------------------
verdict_main="not run: no binary"
if [ -x "$bin/latent" ]; then
  say "the main job: latent train --device cuda --epochs 20 (60000 images)"
  step main_job 90 "$bin/latent" train --device cuda --epochs 20 --data "$data" \
    --out "$work/main" --overwrite > "$work/main.out" 2>&1
  cat "$work/main.out" >> "$log"
  verdict_main=$(bench_verdict $step_rc)
  [ -f "$work/main/summary.json" ] && cp "$work/main/summary.json" "$main_json"
  [ -f "$work/main/samples.png" ] && cp "$work/main/samples.png" "$out/main-samples.png"
fi

# ---- 8. compute-sanitizer: what is left of the time -----------------------------------------
# Left out of memcheck: the first for time (it trains for many steps, and every kernel it runs is
# run by the other tests too); the NCCL tests because their kernels and memory are NCCL's own (its
# set-up maps memory the tool does not follow), while ours in them are run by the other tests.
memcheck_skip="VaeStepCuda.TrainerWithBinarizationOnGpuLowersLoss:$nccl_filter"
# The kernels with shared memory and block-level synchronization: reductions, losses, KL, optimizers.
race_filter='OpCases/CudaParity.MatchesCpu/sum__*:OpCases/CudaParity.MatchesCpu/mean__*'
race_filter+=':OpCases/CudaParity.MatchesCpu/logsumexp__*:OpCases/CudaParity.MatchesCpu/logmeanexp__*'
race_filter+=':OpCases/CudaParity.MatchesCpu/bce_with_logits__*:OpCases/CudaParity.MatchesCpu/mse__*'
race_filter+=':OpCases/CudaParity.MatchesCpu/gaussian_nll__*:OpCases/CudaParity.MatchesCpu/cross_entropy__*'
race_filter+=':OpCases/CudaParity.MatchesCpu/log_softmax*:OpCases/CudaParity.MatchesCpu/kl_normal*'
race_filter+=':CudaOptim.*'
# sanitize TOOL CAP FILTER: sets verdict_<tool>.
sanitize() {
  local tool=$1 cap=$2 filter=$3 before verdict errors chunk
  if [ -z "$sanitizer" ] || [ ! -x "$bin/latent_cuda_tests" ]; then
    eval "verdict_$tool='unavailable: no compute-sanitizer or no test binary'"
    return
  fi
  say "compute-sanitizer $tool"
  before=$(wc -l < "$san_log")
  echo "==== compute-sanitizer --tool $tool, tests $filter" >> "$san_log"
  step "$tool" "$cap" "$sanitizer" --tool "$tool" --error-exitcode 99 --print-limit 20 \
    "$bin/latent_cuda_tests" --gtest_color=no --gtest_filter="$filter" >> "$san_log" 2>&1
  chunk=$(tail -n +"$((before + 1))" "$san_log")
  # memcheck and synccheck end with "ERROR SUMMARY: N errors", racecheck with "RACECHECK
  # SUMMARY: H hazards displayed (N errors, W warnings)".
  errors=$(echo "$chunk" | sed -n -e 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' \
    -e 's/.*RACECHECK SUMMARY: .*(\([0-9]*\) error.*/\1/p' | tail -1)
  if [ $step_rc -eq 124 ]; then
    verdict="not run to the end: out of time"
  elif [ $step_rc -eq 125 ]; then
    verdict="not run: no time"
  elif [ "${errors:-x}" = 0 ]; then
    verdict="clean"
    [ $step_rc -ne 0 ] && verdict="clean (but the tests under it returned $step_rc)"
  elif [ -n "$errors" ]; then
    verdict="FAIL: $errors errors"
  elif echo "$chunk" | grep -qi 'device not supported'; then
    verdict="unavailable: compute-sanitizer does not support this device here"
  else
    verdict="FAIL: rc $step_rc, no error summary (see sanitizer.log)"
  fi
  eval "verdict_$tool=\"\$verdict\""
}
sanitize memcheck 75 "-MultiGpu.*:$memcheck_skip"
sanitize racecheck 25 "$race_filter"
sanitize synccheck 20 "$race_filter"
cap_file "$san_log"

cap_file "$log"
cap_file "$tests_log"

# ---- the table -------------------------------------------------------------------------------
table=$(python3 - "$bench" "$cli_json" "$main_json" << 'EOF' 2>&1
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
def step_ms(bench, batch, mode=None):
    for r in rows:
        if (r.get("bench") == bench and r.get("model") == "vae" and r.get("batch") == batch
                and r.get("math", "fp32") == "fp32" and (mode is None or r.get("mode") == mode)
                and "median_ms" in r and r.get("device", "cuda") != "cpu"):
            return "%.4f ms" % r["median_ms"]
    return "-"
print("| VAE step (784-512-256-32, Adam) | batch 128 | batch 1024 | batch 4096 |")
print("| --- | --- | --- | --- |")
for label, bench, mode in (("latent eager", "train", "eager"),
                           ("latent replayed (CUDA graph)", "train", "replayed"),
                           ("PyTorch eager", "pytorch_train", "eager"),
                           ("PyTorch CUDA graph (whole step)", "pytorch_train", "graph"),
                           ("PyTorch torch.compile", "pytorch_train", "compile")):
    print("| %s | %s | %s | %s |" % (label, step_ms(bench, 128, mode), step_ms(bench, 1024, mode),
                                     step_ms(bench, 4096, mode)))
errors = [r for r in rows if "error" in r]
for r in errors:
    print("bench error: %s %s batch %s: %s" % (r.get("bench"), r.get("model"), r.get("batch"), r["error"]))
try:
    s = json.load(open(sys.argv[2]))
    print("CLI: %d epoch(s) on %d images in %.2f s on %s; test ELBO %.2f" %
          (s["epochs"], s["train_images"], s["train_seconds"], s["device"], s["test_elbo"]))
except (OSError, ValueError, KeyError):
    print("CLI: no summary.json")
try:
    s = json.load(open(sys.argv[3]))
    print("main job: %d epochs on %d images in %.2f s on %s; test ELBO %.2f, log p(x) %.2f (k=%d)" %
          (s["epochs"], s["train_images"], s["train_seconds"], s["device"], s["test_elbo"],
           s["test_log_likelihood"], s["log_likelihood_k"]))
except (OSError, ValueError, KeyError):
    print("main job: no summary.json")
EOF
)

# 0: everything passed; 3: what ran passed, something did not run (time, or a tool that cannot use
# the device here); 1: a failure.
status=0
for v in "$tests_verdict" "$nccl_verdict" "$verdict_cli" "$verdict_bench_train" \
  "$verdict_bench_kernels" "$verdict_memcheck" "$verdict_racecheck" "$verdict_synccheck" \
  "$verdict_pytorch" "$verdict_mpi1" "$verdict_mpi2" "$verdict_mpi_tests" "$verdict_main"; do
  case $v in
    pass* | clean | ok | "ok ("* | "not run: python3 has no torch" | "not run: no mpirun"*) ;;
    "not run"* | unavailable*) [ $status -eq 0 ] && status=3 ;;
    *) status=1 ;;
  esac
done
{
  echo "# GPU smoke run"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(($(date +%s) - start)) s"
  echo "- commit: $commit"
  echo "- GPU: $gpu_name ($gpus visible); driver $driver (CUDA $driver_cuda)"
  echo "- CUDA runtime loaded: $(ldd "$bin/latent_cuda_tests" 2> /dev/null | awk '/libcudart/ {print $3}' | xargs -r readlink -f)"
  echo "- compute-sanitizer: ${sanitizer_version:-not found}"
  echo "- NCCL loaded: ${nccl_lib:-not found} (version code ${nccl_version:-unknown})"
  echo "- mpirun: ${mpirun_seen:-none}; the MPI plugin's libmpi: ${mpi_lib:-no plugin}"
  echo "- host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "- binaries: $origin${stale:+ ($stale)}"
  echo
  echo "| check | verdict |"
  echo "| --- | --- |"
  echo "| CUDA tests | $tests_verdict |"
  echo "| NCCL tests (a world of one) | $nccl_verdict |"
  echo "| latent train --device cuda | $verdict_cli |"
  echo "| bench_train --quick | $verdict_bench_train |"
  echo "| bench_kernels --quick | $verdict_bench_kernels |"
  echo "| PyTorch side-by-side | $verdict_pytorch |"
  echo "| mpirun -np 1 latent train --device cuda | $verdict_mpi1 |"
  if [ "$gpus" -ge 2 ]; then
    echo "| mpirun -np 2 latent train --device cuda (two GPUs) | $verdict_mpi2 |"
  else
    echo "| mpirun -np 2 on one GPU (must be refused) | $verdict_mpi2 |"
  fi
  echo "| MPI tests (mpirun -np 2) | $verdict_mpi_tests |"
  echo "| main job (20 epochs, 60000 images) | $verdict_main |"
  echo "| memcheck (all but $memcheck_skip) | $verdict_memcheck |"
  echo "| racecheck (reduction, loss, KL, optimizer tests) | $verdict_racecheck |"
  echo "| synccheck (same tests) | $verdict_synccheck |"
  echo
  echo "$table"
  echo
  case $status in
    0) echo "overall: PASS" ;;
    3) echo "overall: INCOMPLETE (what ran passed; see the rows marked not run or unavailable)" ;;
    *) echo "overall: FAIL" ;;
  esac
} > "$summary"
echo
cat "$summary"
exit $status
