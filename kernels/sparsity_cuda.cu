#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/scalar_math.h"
#include "kernels/sparsity.h"

namespace latent::kernels::cuda {
namespace {

// ---- terms and stores -----------------------------------------------------------------------

struct AbsTerm {
  const float* h;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(fabsf(h[i]));
  }
};

struct ValueTerm {  // h itself, for the column sums
  const float* h;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(h[i]);
  }
};

struct MeanStore {  // rho_hat[j] = s / N
  float* rho_hat;
  double n;
  __device__ void operator()(index_t j, double s) const { rho_hat[j] = static_cast<float>(s / n); }
};

struct KlBernoulliTerm {  // KL(rho || clamp(rho_hat[j])), one term per unit j
  const float* rho_hat;
  float rho;
  __device__ double operator()(index_t j, index_t, index_t) const {
    const float q =
        math::clamp(rho_hat[j], static_cast<float>(kRhoHatMin), static_cast<float>(kRhoHatMax));
    return static_cast<double>(math::kl_bernoulli(rho, q));
  }
};

__global__ void l1_penalty_backward_kernel(float* __restrict__ dh, const float* __restrict__ dout,
                                           index_t stride, float scale, const float* __restrict__ h,
                                           index_t hdim, index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const float g = scale * dout[(i / hdim) * stride];
    dh[i] += g * math::l1_grad(h[i]);
  }
}

// dh[n, j] += dout[0] / N * dKL/dq at rho_hat[j], nothing where the clamp changed rho_hat[j]; the
// per-unit factor is recomputed per element (the same float operations as the CPU's table).
__global__ void kl_sparsity_backward_kernel(float* __restrict__ dh, const float* __restrict__ dout,
                                            const float* __restrict__ rho_hat, float rho, index_t n,
                                            index_t hdim) {
  const index_t count = n * hdim;
  const float g = dout[0] / static_cast<float>(n);
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const float q = rho_hat[i % hdim];
    const bool inside = q >= static_cast<float>(kRhoHatMin) && q <= static_cast<float>(kRhoHatMax);
    dh[i] += inside ? g * math::kl_bernoulli_dq(rho, q) : 0.0f;
  }
}

}  // namespace

index_t sparsity_scratch(index_t n, index_t hdim) {
  const index_t cols = column_sums_scratch(n, hdim);
  return cols > total_sum_scratch() ? cols : total_sum_scratch();
}

void l1_penalty_forward(float* out, const float* h, float scale, bool per_sample, index_t n,
                        index_t hdim, double* scratch, Stream stream) {
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, hdim, AbsTerm{h}, store, stream);
  else
    total_sum(scratch, n * hdim, hdim, AbsTerm{h}, store, stream);
}

void l1_penalty_backward(float* dh, const float* dout, index_t stride, float scale, const float* h,
                         index_t n, index_t hdim, Stream stream) {
  const index_t count = n * hdim;
  if (count == 0) return;
  l1_penalty_backward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
      dh, dout, stride, scale, h, hdim, count);
  LATENT_LAUNCH_CHECK(l1_penalty_backward_kernel);
}

void kl_sparsity_forward(float* out, float* rho_hat, const float* h, float rho, index_t n,
                         index_t hdim, double* scratch, Stream stream) {
  // rho_hat first (column means), then the KL terms summed over the units. The second sum reuses
  // the scratch: the stream runs the kernels in order.
  column_sums(scratch, n, hdim, ValueTerm{h}, MeanStore{rho_hat, static_cast<double>(n)}, stream);
  total_sum(scratch, hdim, hdim, KlBernoulliTerm{rho_hat, rho}, ScaledStore{out, 1.0}, stream);
}

void kl_sparsity_backward(float* dh, const float* dout, const float* rho_hat, float rho, index_t n,
                          index_t hdim, Stream stream) {
  if (n * hdim == 0) return;
  kl_sparsity_backward_kernel<<<blocks_for(n * hdim, kThreads), kThreads, 0, stream>>>(
      dh, dout, rho_hat, rho, n, hdim);
  LATENT_LAUNCH_CHECK(kl_sparsity_backward_kernel);
}

}  // namespace latent::kernels::cuda
