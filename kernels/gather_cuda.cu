#include "kernels/cuda_check.h"
#include "kernels/gather.h"

namespace latent::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// One block-stride loop over all n * row outputs: consecutive threads copy consecutive elements
// of a row, so reads and writes are coalesced.
__global__ void gather_rows_kernel(float* __restrict__ y, const float* __restrict__ x,
                                   const index_t* __restrict__ index, index_t n, index_t row) {
  const index_t total = n * row;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / row, c = i - r * row;
    y[i] = x[index[r] * row + c];
  }
}

}  // namespace

void gather_rows(float* y, const float* x, const index_t* index, index_t n, index_t row,
                 Stream stream) {
  if (n == 0 || row == 0) return;
  const index_t blocks = (n * row + kThreads - 1) / kThreads;
  gather_rows_kernel<<<static_cast<unsigned>(blocks < 65535 * 32 ? blocks : 65535 * 32), kThreads,
                       0, stream>>>(y, x, index, n, row);
  LATENT_LAUNCH_CHECK(gather_rows_kernel);
}

}  // namespace latent::kernels::cuda
