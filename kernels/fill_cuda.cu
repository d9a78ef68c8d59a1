#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/fill.h"
#include "kernels/philox.h"

namespace latent::kernels::cuda {
namespace {

__global__ void fill_kernel(float* __restrict__ y, float value, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = value;
}

// One thread per Philox block of four numbers: the same mapping as the CPU reference.
__global__ void fill_uniform_kernel(float* __restrict__ y, std::uint64_t seed, std::uint64_t offset,
                                    float lo, float hi, index_t n) {
  const index_t nb = (n + 3) / 4;
  for (index_t b = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; b < nb;
       b += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const philox::U32x4 r = philox::block(seed, offset + static_cast<std::uint64_t>(b));
    for (int k = 0; k < 4 && 4 * b + k < n; ++k)
      y[4 * b + k] = fmaf(hi - lo, philox::to_uniform(r.v[k]), lo);  // one rounding, as the CPU
  }
}

// Block b of the stream is block j of draw d: the draws are consecutive in the stream.
__global__ void fill_normal_kernel(float* __restrict__ y, std::uint64_t seed, std::uint64_t offset,
                                   float mean, float stddev, index_t n, index_t draws) {
  const index_t nb = (n + 3) / 4;
  for (index_t b = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; b < nb * draws;
       b += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t d = b / nb, j = b - d * nb;
    float z[4];
    philox::to_normal4(philox::block(seed, offset + static_cast<std::uint64_t>(b)), z);
    for (int k = 0; k < 4 && 4 * j + k < n; ++k) y[d * n + 4 * j + k] = fmaf(stddev, z[k], mean);
  }
}

}  // namespace

void fill(float* y, float value, index_t n, Stream stream) {
  LATENT_LAUNCH_LINEAR(fill_kernel, n, stream, y, value, n);
}

void copy(float* y, const float* x, index_t n, Stream stream) {
  if (n <= 0) return;
  LATENT_CUDA_CHECK(cudaMemcpyAsync(y, x, static_cast<std::size_t>(n) * sizeof(float),
                                    cudaMemcpyDeviceToDevice, stream));
}

void fill_uniform(float* y, std::uint64_t seed, std::uint64_t offset, float lo, float hi, index_t n,
                  Stream stream) {
  // One thread per Philox block of four numbers.
  LATENT_LAUNCH_LINEAR(fill_uniform_kernel, (n + 3) / 4, stream, y, seed, offset, lo, hi, n);
}

void fill_normal(float* y, std::uint64_t seed, std::uint64_t offset, float mean, float stddev,
                 index_t n, index_t draws, Stream stream) {
  LATENT_LAUNCH_LINEAR(fill_normal_kernel, (n + 3) / 4 * draws, stream, y, seed, offset, mean,
                       stddev, n, draws);
}

}  // namespace latent::kernels::cuda
