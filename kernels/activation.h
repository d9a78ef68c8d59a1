// Activation family: an activation and its first two derivatives, element-wise over n values.
//   activation_forward:       y[n]   = act(x)                 (overwrites y)
//   activation_backward:      dx[n] (+)= dy * act'(x)         (adds when add, else stores)
//   activation_grad_forward:  g[n]   = act'(x)                (overwrites g)
//   activation_grad_backward: dx[n] (+)= dy * act''(x)        (adds when add, else stores)
// x is always the pre-activation. p.alpha is leaky_relu's negative slope and elu's alpha; the
// other activations ignore it. Formulas: kernels/scalar_math.h (act_forward, act_grad, act_grad2).
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

namespace cpu {
template <class T>
void activation_forward(T* y, const T* x, ActParams p, index_t n, Stream stream = nullptr);
template <class T>
void activation_backward(T* dx, bool add, const T* dy, const T* x, ActParams p, index_t n,
                         Stream stream = nullptr);
template <class T>
void activation_grad_forward(T* g, const T* x, ActParams p, index_t n, Stream stream = nullptr);
template <class T>
void activation_grad_backward(T* dx, bool add, const T* dy, const T* x, ActParams p, index_t n,
                              Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void activation_forward(float* y, const float* x, ActParams p, index_t n, Stream stream);
void activation_backward(float* dx, bool add, const float* dy, const float* x, ActParams p,
                         index_t n, Stream stream);
void activation_grad_forward(float* g, const float* x, ActParams p, index_t n, Stream stream);
void activation_grad_backward(float* dx, bool add, const float* dy, const float* x, ActParams p,
                              index_t n, Stream stream);
}  // namespace cuda

}  // namespace latent::kernels
