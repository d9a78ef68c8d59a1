#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/gather.h"
#include "kernels/philox.h"

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

// Every thread reads the cursor first; a block counts itself done once all its threads have
// (the barrier), and the last block to do so moves the cursor: no block can read it after.
__global__ void batch_rows_kernel(float* __restrict__ y, const float* __restrict__ x,
                                  const index_t* __restrict__ perm, std::int64_t* state,
                                  bool binarize, std::uint64_t seed, index_t skip, index_t n,
                                  index_t advance, index_t row) {
  const index_t start = static_cast<index_t>(*reinterpret_cast<volatile std::int64_t*>(state));
  const index_t cursor = start + skip;  // the first row drawn
  const auto base = static_cast<std::uint64_t>(state[2]);
  const index_t total = n * row;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / row, c = i - r * row;
    const float v = x[perm[cursor + r] * row + c];
    if (binarize) {
      const float u =
          philox::uniform_at(seed, base, static_cast<std::uint64_t>((cursor + r) * row + c));
      y[i] = u < v ? 1.0f : 0.0f;
    } else {
      y[i] = v;
    }
  }
  auto* done = reinterpret_cast<unsigned long long*>(state + 1);
  if (last_block_done(done) && threadIdx.x == 0) {
    state[0] = start + advance;
    *done = 0ull;
  }
}

}  // namespace

void batch_rows(float* y, const float* x, const index_t* perm, std::int64_t* state, bool binarize,
                std::uint64_t seed, index_t skip, index_t n, index_t advance, index_t row,
                Stream stream) {
  // Launched even for no rows: its last block moves the cursor, as the CPU does.
  batch_rows_kernel<<<grid_for(n * row), kThreads, 0, stream>>>(y, x, perm, state, binarize, seed,
                                                                skip, n, advance, row);
  LATENT_LAUNCH_CHECK(batch_rows_kernel);
}

void gather_rows(float* y, const float* x, const index_t* index, index_t n, index_t row,
                 Stream stream) {
  LATENT_LAUNCH_LINEAR(gather_rows_kernel, n * row, stream, y, x, index, n, row);
}

}  // namespace latent::kernels::cuda
