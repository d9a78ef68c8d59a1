// Noise family: corruption of inputs and draws from discrete distributions, all from the shared
// Philox stream. Element i uses the i-th number of the stream (seed, offset) (kernels/philox.h:
// normal_at / uniform_at), so a result depends only on (seed, offset, i), not on threads.
//
//   gaussian_noise_forward:  y[i] = x[i] + sigma * normal_at(i)                       (overwrites)
//   masking_noise_forward:   y[i] = u_i < p ? 0 : x[i],   u_i = uniform_at(i)          (overwrites)
//   masking_noise_backward:  dx[i] += u_i < p ? 0 : dy[i]   (u_i regenerated) (accumulates)
//   salt_and_pepper_forward: y[i] = u_i < p/2 ? 0 : u_i < p ? 1 : x[i]                (overwrites)
//                            (one uniform decides both whether and how: each entry is corrupted
//                            with probability p, to 0 or 1 with probability p/2 each)
//   (the gradient of salt_and_pepper w.r.t. x is masking_noise_backward with the same p: an
//   entry passes dy where it was kept)
//   bernoulli_forward:       y[i] = u_i < probs[i] ? 1 : 0                             (overwrites)
//   categorical_forward:     probs [M, K] (non-negative weights, any positive row total S_m),
//                            y [M]: y[m] = the first k with u_m * S_m < probs[m, 0] + ... +
//                            probs[m, k] (inverse CDF, sums in double); when rounding leaves
//                            u_m * S_m above the last partial sum, the last k with probs > 0
// Uniforms lie in the open interval (0, 1), so p = 0 never corrupts and p = 1 always does.
//
// Both backends use the same element-to-number mapping, so for the same (seed, offset) the
// decisions (masking, salt-and-pepper, bernoulli, categorical) are bit-identical on the CPU and the
// GPU; gaussian noise agrees to a few ulp (libm vs CUDA math in the Box-Muller transform).
#pragma once

#include <cstdint>

#include "kernels/common.h"
#include "kernels/philox.h"

namespace latent::kernels::cpu {

template <class T>
void gaussian_noise_forward(T* y, const T* x, T sigma, philox::Key key, index_t n,
                            Stream stream = nullptr);
template <class T>
void masking_noise_forward(T* y, const T* x, double p, philox::Key key, index_t n,
                           Stream stream = nullptr);
template <class T>
void masking_noise_backward(T* dx, const T* dy, double p, philox::Key key, index_t n,
                            Stream stream = nullptr);
template <class T>
void salt_and_pepper_forward(T* y, const T* x, double p, philox::Key key, index_t n,
                             Stream stream = nullptr);
template <class T>
void bernoulli_forward(T* y, const T* probs, philox::Key key, index_t n, Stream stream = nullptr);
template <class T>
void categorical_forward(T* y, const T* probs, philox::Key key, index_t m, index_t k,
                         Stream stream = nullptr);

}  // namespace latent::kernels::cpu

// The CUDA backend: float32, same semantics as above. The kernels cannot report bad values without
// a host synchronization, so they mark them instead: bernoulli writes NaN where probs[i] is outside
// [0, 1] (or NaN), categorical writes NaN for a row with a negative or non-finite weight or without
// positive mass.
namespace latent::kernels::cuda {

void gaussian_noise_forward(float* y, const float* x, float sigma, philox::Key key, index_t n,
                            Stream stream);
void masking_noise_forward(float* y, const float* x, double p, philox::Key key, index_t n,
                           Stream stream);
void masking_noise_backward(float* dx, const float* dy, double p, philox::Key key, index_t n,
                            Stream stream);
void salt_and_pepper_forward(float* y, const float* x, double p, philox::Key key, index_t n,
                             Stream stream);
void bernoulli_forward(float* y, const float* probs, philox::Key key, index_t n, Stream stream);
void categorical_forward(float* y, const float* probs, philox::Key key, index_t m, index_t k,
                         Stream stream);

}  // namespace latent::kernels::cuda
