#include <cmath>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/cuda_reduce.cuh"
#include "kernels/philox.h"
#include "kernels/scalar_math.h"
#include "kernels/vae.h"

namespace latent::kernels::cuda {
namespace {

// ---- reparametrize ---------------------------------------------------------------------------

__device__ __forceinline__ float pick4(const float q[4], index_t j) {
  // A select chain instead of q[j]: a run-time index would put q in local memory.
  return j == 0 ? q[0] : (j == 1 ? q[1] : (j == 2 ? q[2] : q[3]));
}

// One thread per group of four consecutive elements of z [R*N, Z]: element i uses word i % 4 of
// Philox block offset + i / 4 (the CPU's mapping), so the group draws exactly one block.
// With a non-empty key.take the last block to finish moves the generator's offset (philox::Take):
// every thread has read it by then (each block counts itself done after a barrier).
__global__ void reparametrize_forward_kernel(float* __restrict__ z, const float* __restrict__ h,
                                             const float* __restrict__ eps, philox::Key key,
                                             float lv_min, float lv_max, index_t n, index_t zdim,
                                             index_t total) {
  const std::uint64_t seed = key.seed, offset = key.start();
  const index_t groups = (total + 3) / 4;
  for (index_t b = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; b < groups;
       b += static_cast<index_t>(gridDim.x) * kThreads) {
    float q[4] = {0.f, 0.f, 0.f, 0.f};
    if (!eps && key.shard.mapped()) {  // a share of a larger draw: each element on its own
      for (int j = 0; j < 4; ++j)
        if (4 * b + j < total)
          q[j] =
              philox::normal_at(seed, offset, key.shard.at(static_cast<std::uint64_t>(4 * b + j)));
    } else if (!eps) {
      philox::to_normal4(philox::block(seed, offset + static_cast<std::uint64_t>(b)), q);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const index_t i = 4 * b + j;
      if (i < total) {
        const index_t row = i / zdim;
        const index_t k = i - row * zdim;
        const float* mu = h + (row % n) * 2 * zdim + k;  // mu[zdim] is its log-variance
        z[i] =
            math::reparam_sample(mu[0], math::clamp(mu[zdim], lv_min, lv_max), eps ? eps[i] : q[j]);
      }
    }
  }
  if (key.take.counter == nullptr) return;  // the same for every thread
  if (last_block_done(key.take.done) && threadIdx.x == 0) {
    philox::complete_take(key.take);
    *key.take.done = 0ull;
  }
}

// One thread per group of four consecutive elements p of [N, Z] (p = n * Z + k). For sample s the
// group's elements are z elements s*N*Z + p: they lie in Philox block (s*N*Z + p0) / 4 and, when
// that is not a multiple of 4, the next one, so the noise is regenerated with at most two blocks
// per sample. The R samples are summed in order, in double, as the CPU does.
// With dkl non-null the KL's gradient terms (g = scale * dkl[0]) are added on the way; with add
// false dh is stored rather than added to.
__global__ void reparametrize_backward_kernel(
    float* __restrict__ dh, bool add, const float* __restrict__ dz, const float* __restrict__ dkl,
    float scale, const float* __restrict__ h, const float* __restrict__ eps, philox::Key key,
    float lv_min, float lv_max, index_t r, index_t n, index_t zdim) {
  const std::uint64_t seed = key.seed, offset = key.start();
  const float gkl = dkl ? scale * dkl[0] : 0.0f;
  const index_t nz = n * zdim;
  const index_t groups = (nz + 3) / 4;
  for (index_t b = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; b < groups;
       b += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t p0 = 4 * b;
    const index_t cnt = nz - p0 < 4 ? nz - p0 : 4;
    double acc_mu[4] = {0.0, 0.0, 0.0, 0.0};
    double acc_lv[4] = {0.0, 0.0, 0.0, 0.0};
    for (index_t s = 0; s < r; ++s) {
      const index_t base = s * nz + p0;  // z element of the group's first entry
      float e[4] = {0.f, 0.f, 0.f, 0.f};
      if (eps) {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          if (j < cnt) e[j] = eps[base + j];
      } else if (key.shard.mapped()) {  // a share of a larger draw: each element on its own
        for (int j = 0; j < 4; ++j)
          if (j < cnt)
            e[j] =
                philox::normal_at(seed, offset, key.shard.at(static_cast<std::uint64_t>(base + j)));
      } else {
        const index_t shift = base % 4;
        const std::uint64_t blk = offset + static_cast<std::uint64_t>(base / 4);
        float q0[4], q1[4] = {0.f, 0.f, 0.f, 0.f};
        philox::to_normal4(philox::block(seed, blk), q0);
        if (shift != 0 && shift + cnt > 4) philox::to_normal4(philox::block(seed, blk + 1), q1);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const index_t w = shift + j;
          e[j] = w < 4 ? pick4(q0, w) : pick4(q1, w - 4);
        }
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (j < cnt) {
          const float g = dz[base + j];
          acc_mu[j] += static_cast<double>(g);
          // The same float product as the CPU's (g times the float noise), then widened.
          acc_lv[j] += static_cast<double>(g * e[j]);
        }
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (j < cnt) {
        const index_t p = p0 + j;
        const index_t i = p / zdim;
        const index_t k = p - i * zdim;
        float* dmu = dh + i * 2 * zdim + k;  // dmu[zdim] is the log-variance's gradient
        const float mu = h[i * 2 * zdim + k];
        const float lv = h[i * 2 * zdim + zdim + k];
        const bool active = math::logvar_active(lv, lv_min, lv_max);
        float gm = static_cast<float>(acc_mu[j]);
        float gl = active ? static_cast<float>(acc_lv[j] * 0.5 * exp(0.5 * static_cast<double>(lv)))
                          : 0.0f;
        if (dkl) {
          gm += gkl * mu;
          if (active) gl += gkl * math::kl_normal_term_dlogvar(lv);
        }
        dmu[0] = add ? dmu[0] + gm : gm;
        dmu[zdim] = add ? dmu[zdim] + gl : gl;
      }
    }
  }
}

// ---- KL to N(0, I) ---------------------------------------------------------------------------

__global__ void kl_normal_terms_forward_kernel(float* __restrict__ t, const float* __restrict__ h,
                                               float lv_min, float lv_max, index_t n,
                                               index_t zdim) {
  const index_t count = n * zdim;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / zdim;
    const float* mu = h + row * 2 * zdim + (i - row * zdim);
    t[i] = math::kl_normal_term(mu[0], math::clamp(mu[zdim], lv_min, lv_max));
  }
}

struct KlTerm {  // element (r, c) of the [N, Z] terms
  const float* h;
  index_t zdim;
  float lv_min;
  float lv_max;
  __device__ double operator()(index_t, index_t r, index_t c) const {
    const float* mu = h + r * 2 * zdim + c;
    return static_cast<double>(math::kl_normal_term(mu[0], math::clamp(mu[zdim], lv_min, lv_max)));
  }
};

__global__ void kl_normal_backward_kernel(float* __restrict__ dh, const float* __restrict__ dout,
                                          index_t stride_n, index_t stride_z, float scale,
                                          const float* __restrict__ h, float lv_min, float lv_max,
                                          index_t n, index_t zdim) {
  const index_t count = n * zdim;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / zdim;
    const index_t k = i - row * zdim;
    const index_t o = row * 2 * zdim + k;
    const float g = scale * dout[row * stride_n + k * stride_z];
    const float lv = h[o + zdim];
    dh[o] += g * h[o];
    if (math::logvar_active(lv, lv_min, lv_max))
      dh[o + zdim] += g * math::kl_normal_term_dlogvar(lv);
  }
}

}  // namespace

void reparametrize_forward(float* z, const float* h, const float* eps, philox::Key key,
                           float lv_min, float lv_max, index_t r, index_t n, index_t zdim,
                           Stream stream) {
  const index_t total = r * n * zdim;
  if (total == 0) return;
  reparametrize_forward_kernel<<<blocks_for((total + 3) / 4, kThreads), kThreads, 0, stream>>>(
      z, h, eps, key, lv_min, lv_max, n, zdim, total);
  LATENT_LAUNCH_CHECK(reparametrize_forward_kernel);
}

void reparametrize_backward(float* dh, const float* dz, const float* h, const float* eps,
                            philox::Key key, float lv_min, float lv_max, index_t r, index_t n,
                            index_t zdim, Stream stream) {
  const index_t nz = n * zdim;
  if (nz == 0 || r == 0) return;
  reparametrize_backward_kernel<<<blocks_for((nz + 3) / 4, kThreads), kThreads, 0, stream>>>(
      dh, true, dz, nullptr, 0.0f, h, eps, key, lv_min, lv_max, r, n, zdim);
  LATENT_LAUNCH_CHECK(reparametrize_backward_kernel);
}

void reparametrize_kl_forward(float* z, float* kl, const float* h, philox::Key key, float scale,
                              float lv_min, float lv_max, index_t r, index_t n, index_t zdim,
                              double* scratch, Stream stream) {
  const index_t total = r * n * zdim;
  if (total > 0) {
    reparametrize_forward_kernel<<<blocks_for((total + 3) / 4, kThreads), kThreads, 0, stream>>>(
        z, h, nullptr, key, lv_min, lv_max, n, zdim, total);
    LATENT_LAUNCH_CHECK(reparametrize_forward_kernel);
  }  // else: an empty draw takes no blocks, nothing to move
  kl_normal_forward(kl, h, scale, false, lv_min, lv_max, n, zdim, scratch, stream);
}

void reparametrize_kl_backward(float* dh, bool add, const float* dz, const float* dkl, float scale,
                               const float* h, philox::Key key, float lv_min, float lv_max,
                               index_t r, index_t n, index_t zdim, Stream stream) {
  const index_t nz = n * zdim;
  if (nz == 0) return;
  reparametrize_backward_kernel<<<blocks_for((nz + 3) / 4, kThreads), kThreads, 0, stream>>>(
      dh, add, dz, dkl, scale, h, nullptr, key, lv_min, lv_max, r, n, zdim);
  LATENT_LAUNCH_CHECK(reparametrize_backward_kernel);
}

void kl_normal_terms_forward(float* t, const float* h, float lv_min, float lv_max, index_t n,
                             index_t zdim, Stream stream) {
  if (n * zdim == 0) return;
  kl_normal_terms_forward_kernel<<<blocks_for(n * zdim, kThreads), kThreads, 0, stream>>>(
      t, h, lv_min, lv_max, n, zdim);
  LATENT_LAUNCH_CHECK(kl_normal_terms_forward_kernel);
}

index_t kl_normal_scratch(index_t, index_t) {
  return total_sum_scratch();
}

void kl_normal_forward(float* out, const float* h, float scale, bool per_sample, float lv_min,
                       float lv_max, index_t n, index_t zdim, double* scratch, Stream stream) {
  const KlTerm term{h, zdim, lv_min, lv_max};
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, zdim, term, store, stream);
  else
    total_sum(scratch, n * zdim, zdim, term, store, stream);
}

void kl_normal_backward(float* dh, const float* dout, index_t stride_n, index_t stride_z,
                        float scale, const float* h, float lv_min, float lv_max, index_t n,
                        index_t zdim, Stream stream) {
  if (n * zdim == 0) return;
  kl_normal_backward_kernel<<<blocks_for(n * zdim, kThreads), kThreads, 0, stream>>>(
      dh, dout, stride_n, stride_z, scale, h, lv_min, lv_max, n, zdim);
  LATENT_LAUNCH_CHECK(kl_normal_backward_kernel);
}

}  // namespace latent::kernels::cuda
