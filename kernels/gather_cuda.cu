#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/gather.h"

namespace latent::kernels::cuda {
namespace {

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
  LATENT_LAUNCH_LINEAR(gather_rows_kernel, n * row, stream, y, x, index, n, row);
}

}  // namespace latent::kernels::cuda
