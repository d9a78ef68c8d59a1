#!/usr/bin/env bash
# Builds here (no GPU needed) everything a run on the GPU machine needs, so that the machine's
# short lease goes to running, not building (DESIGN.md section 10):
#   - a Release build for sm_90 (H100/H200) of the CUDA test binary, the MPI tests (where MPI is
#     found here), the benches, the `latent` tool and the examples, with portable host code
#     (-march=x86-64-v3, never -march=native: the GPU machine's CPU may lack AVX-512);
#   - the binaries stripped into one xz archive (they share the same device code, which a solid
#     archive stores once), the Fashion-MNIST files, the PyTorch bench scripts, and the sources a
#     fallback build there needs (GoogleTest, nlohmann-json, CLI11, stb);
# all in .gpu/ (ignored by git, at most 48 MiB), ready to be named in the run's carry list.
# It prints the folder's size and the exact command to run there (scripts/gpu-smoke.sh).
# Usage: scripts/gpu-pack.sh          Environment: JOBS (default: all cores), BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
pack=$root/.gpu
build=${BUILD_DIR:-$root/build-gpu-pack}
limit_mib=48
die() { echo "gpu-pack: $*" >&2; exit 1; }

command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  die "no CUDA toolkit (nvcc): the pack is built here with it; install it first"
command -v xz > /dev/null || die "xz is missing: apt-get install xz-utils"
data=${LATENT_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
  t10k-labels-idx1-ubyte.gz; do
  [ -f "$data/$f" ] || die "no $data/$f: apt-get install dataset-fashion-mnist (or set LATENT_FASHION_MNIST)"
done
[ -f /usr/src/googletest/CMakeLists.txt ] || die "no /usr/src/googletest: apt-get install googletest"
[ -f /usr/include/nlohmann/json.hpp ] || die "no nlohmann-json: apt-get install nlohmann-json3-dev"

commit=$(git rev-parse --short=12 HEAD 2> /dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git status --porcelain --untracked-files=no 2> /dev/null)" ]; then
  commit="$commit-dirty"
fi

# Portable host code: x86-64-v3 (AVX2, FMA) for the C++ and for nvcc's host compiler. A fresh
# configuration each time (objects are kept), so no cached choice of an earlier one sticks. The
# GPU machine has neither OpenBLAS nor SLEEF: the pack is built without them (the CPU references
# there use latent's own GEMM and the C library's functions). MPI and NCCL are plugins the programs
# load only when needed (the NCCL one by the tests of dist::loopback(); libnccl comes from the
# toolkit or PyTorch's wheels there): built when found, carried beside the programs.
mkdir -p "$build"
rm -f "$build/CMakeCache.txt"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DLATENT_NATIVE_CPU=OFF -DLATENT_MPI=AUTO -DLATENT_BLAS=OFF \
  -DLATENT_SLEEF=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" -DCMAKE_CUDA_FLAGS="-Xcompiler=-march=x86-64-v3" \
  -DLATENT_COMMIT="$commit" > "$build/configure.log" 2>&1 ||
  die "configure failed: $build/configure.log"
examples=()
for src in examples/*.cpp; do examples+=("$(basename "$src" .cpp)"); done
targets=(latent_cuda_tests bench_train bench_kernels latent_cli "${examples[@]}")
# The MPI tests (built where MPI was found): run there under mpirun when the machine has it.
dist_tests=no
if cmake --build "$build" --target help 2> /dev/null | grep -q '^latent_dist_tests:'; then
  dist_tests=yes
  targets+=(latent_dist_tests)
fi
echo "gpu-pack: building ${targets[*]} (commit $commit)"
cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}" ||
  die "build failed"

# The GPU machine has the CUDA toolkit and the C/C++ runtime, nothing else of ours: refuse a binary
# that needs another shared library there.
allowed='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libgomp|libz|libcudart|libcublas|libcublasLt)\.so'
checked=(tests/latent_cuda_tests bench/bench_train bench/bench_kernels apps/latent)
[ $dist_tests = yes ] && checked+=(tests/latent_dist_tests)
for t in "${checked[@]}"; do
  extra=$(ldd "$build/$t" | awk '{print $1}' | sed 's|.*/||' | grep -Ev "$allowed" || true)
  [ -z "$extra" ] || die "$t needs $(echo $extra) at run time, which the GPU machine lacks"
done

rm -rf "$pack"
mkdir -p "$pack/stage/bin" "$pack/data/fashion-mnist" "$pack/deps" "$pack/pytorch"
strip -o "$pack/stage/bin/latent_cuda_tests" "$build/tests/latent_cuda_tests"
strip -o "$pack/stage/bin/bench_train" "$build/bench/bench_train"
strip -o "$pack/stage/bin/bench_kernels" "$build/bench/bench_kernels"
strip -o "$pack/stage/bin/latent" "$build/apps/latent"
[ $dist_tests = yes ] && strip -o "$pack/stage/bin/latent_dist_tests" "$build/tests/latent_dist_tests"
for plugin in "$build"/lib/liblatent_*.so; do
  [ -f "$plugin" ] && strip -o "$pack/stage/bin/$(basename "$plugin")" "$plugin"
done
for e in "${examples[@]}"; do strip -o "$pack/stage/bin/$e" "$build/examples/$e"; done
# -9e with a dictionary larger than all binaries together: the device code they share is stored once.
tar -C "$pack/stage" -cf - bin | xz -9e --lzma2=preset=9e,dict=128MiB -T1 > "$pack/bin.tar.xz"
rm -rf "$pack/stage"

cp "$data"/*-idx?-ubyte.gz "$pack/data/fashion-mnist/"
cp bench/pytorch/*.py bench/pytorch/run.sh "$pack/pytorch/"
# Sources for a build on the GPU machine when the binaries do not start there (no package
# manager there); gpu-smoke.sh copies them to .deps/, where the build looks.
cp -r /usr/src/googletest "$pack/deps/googletest"
rm -rf "$pack/deps/googletest/googlemock/docs" "$pack/deps/googletest/docs"
mkdir -p "$pack/deps/nlohmann-json/include"
cp -r /usr/include/nlohmann "$pack/deps/nlohmann-json/include/"
if [ -f /usr/include/CLI/CLI.hpp ]; then
  mkdir -p "$pack/deps/cli11/include"
  cp -r /usr/include/CLI "$pack/deps/cli11/include/"
fi
if [ -f /usr/include/stb/stb_image_write.h ] && [ -f /usr/lib/x86_64-linux-gnu/libstb.a ]; then
  mkdir -p "$pack/deps/stb/include/stb" "$pack/deps/stb/lib"
  cp /usr/include/stb/stb_image_write.h "$pack/deps/stb/include/stb/"
  cp /usr/lib/x86_64-linux-gnu/libstb.a "$pack/deps/stb/lib/"
fi

# The checksums of the sources the binaries were built from: gpu-smoke.sh warns when the tree it
# runs in holds other ones.
git ls-files -z -- core kernels models apps bench tests examples cmake CMakeLists.txt |
  xargs -0 sha256sum > "$pack/sources.sha256"
{
  echo "commit: $commit"
  echo "packed: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "toolkit: $(nvcc --version 2> /dev/null | grep -o 'release [0-9.]*' || echo unknown)"
  echo "host compiler: $(c++ --version | head -1)"
  echo "flags: CUDA architectures 90, -march=x86-64-v3, LATENT_NATIVE_CPU=OFF, Release"
  echo "binaries: $(tar -tJf "$pack/bin.tar.xz" | grep -v '/$' | sed 's|^bin/||' | tr '\n' ' ')"
} > "$pack/manifest.txt"

size_kib=$(du -sk "$pack" | cut -f1)
if [ "$size_kib" -gt $((limit_mib * 1024)) ]; then
  die "$pack is $((size_kib / 1024)) MiB, over the $limit_mib MiB it may carry"
fi
echo "gpu-pack: $pack is $(du -sh "$pack" | cut -f1) (limit $limit_mib MiB); commit $commit"
echo "gpu-pack: run it on the GPU machine with the device tool, in one call:"
echo "  run(command=\"bash scripts/gpu-smoke.sh \$OUT\", carry=[\".gpu\"], timeout_s=360)"
