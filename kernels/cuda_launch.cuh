// The launch shape every one-dimensional CUDA kernel of latent shares: blocks of kThreads threads
// and a grid for a grid-stride loop, plus the launch with its empty-size guard and launch check.
// Include only from .cu files.
#pragma once

#include "kernels/common.h"
#include "kernels/cuda_check.h"

namespace latent::kernels::cuda {

// Threads of a one-dimensional block.
inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `work` items, `per_block` per block: at least one, at most
// 65535 * 32 (the loop covers the rest).
inline unsigned grid_for(index_t work, index_t per_block = kThreads) {
  constexpr index_t kMax = index_t{65535} * 32;
  const index_t b = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b < kMax ? b : kMax));
}

// "The last block to finish": call from every thread of every block once the block is done
// reading the state the last block will change (and, in thread 0, writing what the last block will
// read). Returns true, in every thread, in the one block that gets here last; that block's thread
// 0 must set *done back to 0 (it counts the blocks of one launch, and is 0 between launches). The
// count is taken after a fence, so the last block sees every other block's writes.
__device__ __forceinline__ bool last_block_done(unsigned long long* done) {
  __shared__ bool last;
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    last = atomicAdd(done, 1ull) == gridDim.x - 1;
  }
  __syncthreads();
  return last;
}

}  // namespace latent::kernels::cuda

// kernel<<<grid_for(work), kThreads, 0, stream>>>(args...) when work > 0, then the launch check
// (which names the kernel, file and line).
#define LATENT_LAUNCH_LINEAR(kernel, work, stream, ...)                                       \
  do {                                                                                        \
    if ((work) > 0) {                                                                         \
      kernel<<<::latent::kernels::cuda::grid_for(work), ::latent::kernels::cuda::kThreads, 0, \
               stream>>>(__VA_ARGS__);                                                        \
      LATENT_LAUNCH_CHECK(kernel);                                                            \
    }                                                                                         \
  } while (0)
