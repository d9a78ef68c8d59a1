#include "kernels/axpy.h"
#include "kernels/cuda_check.h"

namespace latent::kernels::cuda {
namespace {

constexpr int kThreads = 256;

inline unsigned grid_for(index_t n) {
  const index_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 32 ? b : 65535 * 32);
}

__global__ void axpy_kernel(float* __restrict__ y, const float* __restrict__ x, float alpha,
                            index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void scale_kernel(float* __restrict__ y, float alpha, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] *= alpha;
}

}  // namespace

void axpy(float* y, const float* x, float alpha, index_t n, Stream stream) {
  if (n == 0) return;
  axpy_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, x, alpha, n);
  LATENT_LAUNCH_CHECK(axpy_kernel);
}

void scale(float* y, float alpha, index_t n, Stream stream) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), kThreads, 0, stream>>>(y, alpha, n);
  LATENT_LAUNCH_CHECK(scale_kernel);
}

}  // namespace latent::kernels::cuda
