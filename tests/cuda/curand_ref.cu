// Device side of curand_philox_test.cpp: Philox4x32-10 blocks computed on the GPU by
// kernels/philox.h and by cuRAND's device API, copied back to the host. A test helper, so it may
// allocate and synchronize freely.
#include <curand_kernel.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/philox.h"

namespace latent::cuda_ref {
namespace {

// Thread i: ours = philox::block(seed_i, offset_i); by_curand4 = curand4 after curand_init(seed_i,
// subsequence 0, offset 4 * offset_i); by_curand = four curand() calls from the same start.
__global__ void philox_reference_kernel(std::uint32_t* ours, std::uint32_t* by_curand4,
                                        std::uint32_t* by_curand, const std::uint64_t* seeds,
                                        const std::uint64_t* offsets, int count) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= count) return;
  const kernels::philox::U32x4 r = kernels::philox::block(seeds[i], offsets[i]);
  curandStatePhilox4_32_10_t a;
  curand_init(seeds[i], 0ull, 4ull * offsets[i], &a);
  const uint4 q = curand4(&a);
  curandStatePhilox4_32_10_t b;
  curand_init(seeds[i], 0ull, 4ull * offsets[i], &b);
  const std::uint32_t q4[4] = {q.x, q.y, q.z, q.w};
  for (int w = 0; w < 4; ++w) {
    ours[4 * i + w] = r.v[w];
    by_curand4[4 * i + w] = q4[w];
    by_curand[4 * i + w] = curand(&b);
  }
}

template <class T>
T* to_device(const std::vector<T>& v) {
  T* p = nullptr;
  LATENT_CUDA_CHECK(cudaMalloc(&p, v.size() * sizeof(T)));
  LATENT_CUDA_CHECK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

std::vector<std::uint32_t> to_host(const std::uint32_t* p, std::size_t n) {
  std::vector<std::uint32_t> v(n);
  LATENT_CUDA_CHECK(cudaMemcpy(v.data(), p, n * sizeof(std::uint32_t), cudaMemcpyDeviceToHost));
  return v;
}

}  // namespace

// Declared in curand_philox_test.cpp. Four words per (seed, offset) pair in each output.
void philox_blocks_on_gpu(const std::vector<std::uint64_t>& seeds,
                          const std::vector<std::uint64_t>& offsets,
                          std::vector<std::uint32_t>& ours, std::vector<std::uint32_t>& by_curand4,
                          std::vector<std::uint32_t>& by_curand) {
  const int count = static_cast<int>(seeds.size());
  if (count == 0) return;
  const std::size_t words = 4 * seeds.size();
  std::uint64_t* d_seeds = to_device(seeds);
  std::uint64_t* d_offsets = to_device(offsets);
  std::uint32_t* d_out = nullptr;
  LATENT_CUDA_CHECK(cudaMalloc(&d_out, 3 * words * sizeof(std::uint32_t)));
  philox_reference_kernel<<<(count + 127) / 128, 128>>>(d_out, d_out + words, d_out + 2 * words,
                                                        d_seeds, d_offsets, count);
  LATENT_LAUNCH_CHECK(philox_reference_kernel);
  LATENT_CUDA_CHECK(cudaDeviceSynchronize());
  ours = to_host(d_out, words);
  by_curand4 = to_host(d_out + words, words);
  by_curand = to_host(d_out + 2 * words, words);
  LATENT_CUDA_CHECK(cudaFree(d_out));
  LATENT_CUDA_CHECK(cudaFree(d_offsets));
  LATENT_CUDA_CHECK(cudaFree(d_seeds));
}

}  // namespace latent::cuda_ref
