// VAE family: reparametrized sampling and the KL divergence of a diagonal Gaussian to N(0, I).
//
// h [N, 2Z] holds (mu | logvar) per row: mu = h[n, z], logvar = h[n, Z + z]. Every kernel clamps
// logvar to [lv_min, lv_max] and passes no gradient to a logvar the clamp changed.
//
//   reparametrize_forward:  z [R*N, Z], z[r*N + n, k] = mu[n, k] + exp(lv[n, k] / 2) * e
//                           (overwrites z)
//   reparametrize_backward: dh [N, 2Z] += (sum_r dz[r*N + n, k], sum_r dz * e * exp(lv / 2) / 2)
//                           (accumulates; sums over r in double, in order of r)
//     where e = eps[(r*N + n) * Z + k] when eps is non-null, otherwise the standard normal
//     philox::normal_at(seed, offset, (r*N + n) * Z + k), so the backward regenerates the noise
//     from its counters instead of storing it.
//
//   kl_normal_terms_forward: t [N, Z], t[n, k] = -1/2 (1 + lv - mu^2 - exp(lv))   (overwrites t)
//   kl_normal_forward:       per_sample: out [N], out[n] = scale * sum_k t[n, k]
//                            otherwise:  out [1], out[0] = scale * sum_n sum_k t[n, k]
//                            (overwrites out; sums in double, in a fixed order)
//   kl_normal_backward:      g = scale * dout[n * stride_n + k * stride_z];
//                            dh[n, k] += g * mu, dh[n, Z + k] += g * (exp(lv) - 1) / 2
//                            (accumulates). Strides (Z, 1) for the [N, Z] terms, (1, 0) for
//                            per-sample values, (0, 0) for a scalar.
//   reparametrize_kl_forward:  reparametrize_forward (drawn noise) and, in the same call,
//                              kl [1] = scale * sum_n sum_k t[n, k] (kl_normal_forward, reduced);
//                              with a non-empty key.take the kernel moves the generator's
//                              offset itself (philox::Take)
//   reparametrize_kl_backward: dh [N, 2Z] (=, or += when add) the reparametrize_backward sum
//                              plus, when dkl is non-null, the kl_normal_backward terms with
//                              g = scale * dkl[0]: the gradients of z and of the KL together.
// Formulas: kernels/scalar_math.h (vae section).
//
// CUDA (float32): the same contract. The noise comes from the same Philox elements, so for the
// same (seed, offset) the GPU's z equals the CPU's to a few ulp (Box-Muller through CUDA's
// logf/sinf/cosf instead of libm's). Sums run in double in a fixed-shape order (over r: in
// order; kl_normal reduced: per-block partials, then one block over them), so two runs give
// identical bits. kl_normal_forward with per_sample false needs `scratch`: device memory for
// kl_normal_scratch(n, zdim) doubles, contents ignored (null is fine per sample).
#pragma once

#include <cstdint>

#include "kernels/common.h"
#include "kernels/philox.h"

namespace latent::kernels {
namespace cpu {

template <class T>
void reparametrize_forward(T* z, const T* h, const T* eps, philox::Key key, T lv_min, T lv_max,
                           index_t r, index_t n, index_t zdim, Stream stream = nullptr);
template <class T>
void reparametrize_backward(T* dh, const T* dz, const T* h, const T* eps, philox::Key key, T lv_min,
                            T lv_max, index_t r, index_t n, index_t zdim, Stream stream = nullptr);

template <class T>
void reparametrize_kl_forward(T* z, T* kl, const T* h, philox::Key key, T scale, T lv_min, T lv_max,
                              index_t r, index_t n, index_t zdim, double* scratch,
                              Stream stream = nullptr);
template <class T>
void reparametrize_kl_backward(T* dh, bool add, const T* dz, const T* dkl, T scale, const T* h,
                               philox::Key key, T lv_min, T lv_max, index_t r, index_t n,
                               index_t zdim, Stream stream = nullptr);

template <class T>
void kl_normal_terms_forward(T* t, const T* h, T lv_min, T lv_max, index_t n, index_t zdim,
                             Stream stream = nullptr);
template <class T>
void kl_normal_forward(T* out, const T* h, T scale, bool per_sample, T lv_min, T lv_max, index_t n,
                       index_t zdim, double* scratch, Stream stream = nullptr);
template <class T>
void kl_normal_backward(T* dh, const T* dout, index_t stride_n, index_t stride_z, T scale,
                        const T* h, T lv_min, T lv_max, index_t n, index_t zdim,
                        Stream stream = nullptr);

}  // namespace cpu

namespace cuda {

void reparametrize_forward(float* z, const float* h, const float* eps, philox::Key key,
                           float lv_min, float lv_max, index_t r, index_t n, index_t zdim,
                           Stream stream);
void reparametrize_backward(float* dh, const float* dz, const float* h, const float* eps,
                            philox::Key key, float lv_min, float lv_max, index_t r, index_t n,
                            index_t zdim, Stream stream);

// The sample, then the KL sum (kl_normal_scratch doubles): two launches of their own kernels.
void reparametrize_kl_forward(float* z, float* kl, const float* h, philox::Key key, float scale,
                              float lv_min, float lv_max, index_t r, index_t n, index_t zdim,
                              double* scratch, Stream stream);
// One kernel.
void reparametrize_kl_backward(float* dh, bool add, const float* dz, const float* dkl, float scale,
                               const float* h, philox::Key key, float lv_min, float lv_max,
                               index_t r, index_t n, index_t zdim, Stream stream);

void kl_normal_terms_forward(float* t, const float* h, float lv_min, float lv_max, index_t n,
                             index_t zdim, Stream stream);
index_t kl_normal_scratch(index_t n, index_t zdim);
void kl_normal_forward(float* out, const float* h, float scale, bool per_sample, float lv_min,
                       float lv_max, index_t n, index_t zdim, double* scratch, Stream stream);
void kl_normal_backward(float* dh, const float* dout, index_t stride_n, index_t stride_z,
                        float scale, const float* h, float lv_min, float lv_max, index_t n,
                        index_t zdim, Stream stream);

}  // namespace cuda
}  // namespace latent::kernels
