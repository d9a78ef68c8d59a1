// Sparsity family: penalties on a code h [N, H].
//
//   l1_penalty_forward:  per-sample sums s[n] = sum_j |h[n, j]| (double), then
//                        per_sample: out [N], out[n] = scale * s[n]
//                        otherwise:  out [1], out[0] = scale * sum_n s[n]        (overwrites out)
//   l1_penalty_backward: dh[n, j] += scale * dout[n * stride] * sign(h[n, j]), sign(0) = 0
//                        (stride 1 for per-sample values, 0 for a scalar; accumulates)
//
//   kl_sparsity_forward:  rho_hat [H], rho_hat[j] = mean_n h[n, j] (unclamped; kept for the
//                         backward), out [1], out[0] = sum_j KL(rho || clamp(rho_hat[j]))
//                         with KL(p || q) = p log(p / q) + (1 - p) log((1 - p) / (1 - q)) and the
//                         clamp to [kRhoHatMin, kRhoHatMax]                  (overwrites both)
//   kl_sparsity_backward: dh[n, j] += dout[0] / N * dKL/dq(rho, rho_hat[j]) where rho_hat[j] lies
//                         inside the clamp range, nothing where the clamp changed it (accumulates)
// Column means and sums run in double in order of n (independent of the thread count).
// Formulas: kernels/scalar_math.h (loss section).
//
// CUDA (float32): the same contract. Sums run in double in a fixed-shape order (per row: a warp
// or a block; a scalar: per-block partials, then one block; column means: row chunks per column,
// then the chunks in order), so two runs give identical bits. `scratch` is device memory for
// sparsity_scratch(n, hdim) doubles, contents ignored; l1_penalty_forward per sample needs none
// (null).
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

// The range rho_hat is clamped to, so that log(rho_hat) and log(1 - rho_hat) stay finite.
inline constexpr double kRhoHatMin = 1e-6;
inline constexpr double kRhoHatMax = 1.0 - 1e-6;

namespace cpu {

template <class T>
void l1_penalty_forward(T* out, const T* h, T scale, bool per_sample, index_t n, index_t hdim,
                        double* scratch, Stream stream = nullptr);
template <class T>
void l1_penalty_backward(T* dh, const T* dout, index_t stride, T scale, const T* h, index_t n,
                         index_t hdim, Stream stream = nullptr);

template <class T>
void kl_sparsity_forward(T* out, T* rho_hat, const T* h, T rho, index_t n, index_t hdim,
                         double* scratch, Stream stream = nullptr);
template <class T>
void kl_sparsity_backward(T* dh, const T* dout, const T* rho_hat, T rho, index_t n, index_t hdim,
                          Stream stream = nullptr);

}  // namespace cpu

namespace cuda {

index_t sparsity_scratch(index_t n, index_t hdim);

void l1_penalty_forward(float* out, const float* h, float scale, bool per_sample, index_t n,
                        index_t hdim, double* scratch, Stream stream);
void l1_penalty_backward(float* dh, const float* dout, index_t stride, float scale, const float* h,
                         index_t n, index_t hdim, Stream stream);

void kl_sparsity_forward(float* out, float* rho_hat, const float* h, float rho, index_t n,
                         index_t hdim, double* scratch, Stream stream);
void kl_sparsity_backward(float* dh, const float* dout, const float* rho_hat, float rho, index_t n,
                          index_t hdim, Stream stream);

}  // namespace cuda
}  // namespace latent::kernels
