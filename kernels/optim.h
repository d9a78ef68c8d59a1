// Optimizer family: in-place parameter updates, one fused loop per tensor, and the reduction that
// gradient clipping needs.
//   sgd_step:    p[n], buf[n] (null when momentum == 0), g[n] -> p, buf updated in place
//   adam_step:   p[n], m[n], v[n], g[n]                    -> p, m, v updated in place
//   sum_squares: x[n] -> sum of x[i]^2, accumulated in double in an order fixed by n alone (the
//                result does not depend on the number of threads)
// The clipping scale itself is kernels/axpy.h's scale. Formulas: kernels/scalar_math.h
// (sgd_update, adam_update). Hyperparameters travel as double and are rounded to T once.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

struct SgdStep {
  double lr = 0;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool first = false;  // the momentum buffer holds nothing yet: it starts as the gradient
};

struct AdamStep {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;       // AdamW
  double bias_correction1 = 1;  // 1 - beta1^t
  double bias_correction2 = 1;  // 1 - beta2^t
};

namespace cpu {
template <class T>
void sgd_step(T* p, T* buf, const T* g, index_t n, const SgdStep& hp);
template <class T>
void adam_step(T* p, T* m, T* v, const T* g, index_t n, const AdamStep& hp);
template <class T>
double sum_squares(const T* x, index_t n);
}  // namespace cpu

}  // namespace latent::kernels
