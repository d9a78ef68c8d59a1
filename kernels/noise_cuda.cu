#include <cmath>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/noise.h"
#include "kernels/philox.h"

namespace latent::kernels::cuda {
namespace {

// One thread per group of four consecutive elements: element i uses word i % 4 of Philox block
// offset + i / 4 (the CPU's mapping), so each thread computes exactly one block and the result
// depends only on (key, i). body(i, u_i) handles one element.
template <class Body>
__global__ void uniform_groups_kernel(philox::Key key, index_t n, Body body) {
  const std::uint64_t seed = key.seed, offset = key.start();
  const index_t groups = (n + 3) / 4;
  for (index_t b = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; b < groups;
       b += static_cast<index_t>(gridDim.x) * kThreads) {
    if (key.shard.mapped()) {  // a share of a larger draw: each element's uniform on its own
      for (int j = 0; j < 4; ++j) {
        const index_t i = 4 * b + j;
        if (i < n)
          body(i, philox::uniform_at(seed, offset, key.shard.at(static_cast<std::uint64_t>(i))));
      }
      continue;
    }
    const philox::U32x4 r = philox::block(seed, offset + static_cast<std::uint64_t>(b));
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const index_t i = 4 * b + j;
      if (i < n) body(i, philox::to_uniform(r.v[j]));
    }
  }
  // A take_inside draw: the last block moves the generator's offset (the same in every thread).
  if (key.take.counter && last_block_done(key.take.done) && threadIdx.x == 0) {
    philox::complete_take(key.take);
    *key.take.done = 0ull;
  }
}

template <class Body>
void for_each_uniform(philox::Key key, index_t n, Body body, Stream stream) {
  if (n <= 0) return;
  uniform_groups_kernel<<<blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(key, n, body);
  LATENT_LAUNCH_CHECK(uniform_groups_kernel);
}

// The comparisons below mirror kernels/noise_cpu.cpp exactly (a float uniform against a double p
// compares in double), so the decisions are bit-identical to the CPU's.

struct MaskForward {
  float* y;
  const float* x;
  double p;
  __device__ void operator()(index_t i, float u) const { y[i] = u < p ? 0.0f : x[i]; }
};

struct MaskBackward {  // accumulates: the kept entries pass dy
  float* dx;
  const float* dy;
  double p;
  __device__ void operator()(index_t i, float u) const {
    if (!(u < p)) dx[i] += dy[i];
  }
};

struct SaltAndPepper {
  float* y;
  const float* x;
  double half;
  double p;
  __device__ void operator()(index_t i, float u) const {
    y[i] = u < half ? 0.0f : (u < p ? 1.0f : x[i]);
  }
};

struct Bernoulli {  // NaN marks a probability outside [0, 1] (the op cannot throw from here)
  float* y;
  const float* probs;
  __device__ void operator()(index_t i, float u) const {
    const float q = probs[i];
    y[i] = q >= 0.0f && q <= 1.0f ? (u < q ? 1.0f : 0.0f) : NAN;
  }
};

// Inverse CDF over one row, sums in double in column order as the CPU does. A thread reads its row
// sequentially (rows are short: the number of classes); NaN marks a row the CPU would reject.
struct Categorical {
  float* y;
  const float* probs;
  index_t k;
  __device__ void operator()(index_t row, float u) const {
    const float* p = probs + row * k;
    double total = 0;
    bool valid = true;
    for (index_t j = 0; j < k; ++j) {
      const float v = p[j];
      valid = valid && v >= 0.0f && isfinite(v);
      total += static_cast<double>(v);
    }
    if (!valid || !(total > 0.0)) {
      y[row] = NAN;
      return;
    }
    const double target = static_cast<double>(u) * total;
    double cdf = 0;
    index_t level = -1, last_possible = k - 1;
    for (index_t j = 0; j < k; ++j) {
      if (p[j] > 0.0f) last_possible = j;
      cdf += static_cast<double>(p[j]);
      if (level < 0 && target < cdf) level = j;
    }
    // Rounding can leave u * total at or above the last partial sum: the last possible level.
    y[row] = static_cast<float>(level < 0 ? last_possible : level);
  }
};

// Four normals per thread from one block (Box-Muller on both word pairs), as the CPU.
__global__ void gaussian_noise_forward_kernel(float* __restrict__ y, const float* __restrict__ x,
                                              float sigma, philox::Key key, index_t n) {
  const std::uint64_t seed = key.seed, offset = key.start();
  const index_t groups = (n + 3) / 4;
  for (index_t b = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; b < groups;
       b += static_cast<index_t>(gridDim.x) * kThreads) {
    float z[4];
    if (key.shard.mapped()) {  // a share of a larger draw: each element's normal on its own
      for (int j = 0; j < 4; ++j)
        z[j] = 4 * b + j < n
                   ? philox::normal_at(seed, offset,
                                       key.shard.at(static_cast<std::uint64_t>(4 * b + j)))
                   : 0.0f;
    } else {
      philox::to_normal4(philox::block(seed, offset + static_cast<std::uint64_t>(b)), z);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const index_t i = 4 * b + j;
      if (i < n) y[i] = x[i] + sigma * z[j];
    }
  }
  if (key.take.counter && last_block_done(key.take.done) && threadIdx.x == 0) {
    philox::complete_take(key.take);
    *key.take.done = 0ull;
  }
}

}  // namespace

void gaussian_noise_forward(float* y, const float* x, float sigma, philox::Key key, index_t n,
                            Stream stream) {
  if (n <= 0) return;
  gaussian_noise_forward_kernel<<<blocks_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(
      y, x, sigma, key, n);
  LATENT_LAUNCH_CHECK(gaussian_noise_forward_kernel);
}

void masking_noise_forward(float* y, const float* x, double p, philox::Key key, index_t n,
                           Stream stream) {
  for_each_uniform(key, n, MaskForward{y, x, p}, stream);
}

void masking_noise_backward(float* dx, const float* dy, double p, philox::Key key, index_t n,
                            Stream stream) {
  for_each_uniform(key, n, MaskBackward{dx, dy, p}, stream);
}

void salt_and_pepper_forward(float* y, const float* x, double p, philox::Key key, index_t n,
                             Stream stream) {
  for_each_uniform(key, n, SaltAndPepper{y, x, 0.5 * p, p}, stream);
}

void bernoulli_forward(float* y, const float* probs, philox::Key key, index_t n, Stream stream) {
  for_each_uniform(key, n, Bernoulli{y, probs}, stream);
}

void categorical_forward(float* y, const float* probs, philox::Key key, index_t m, index_t k,
                         Stream stream) {
  if (k <= 0) return;  // no classes: the op only allows that for m == 0
  for_each_uniform(key, m, Categorical{y, probs, k}, stream);
}

}  // namespace latent::kernels::cuda
