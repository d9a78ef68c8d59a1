// Optimizer family: in-place parameter updates, one fused loop per tensor, and the reduction that
// gradient clipping needs.
//   sgd_step:    p[n], buf[n] (null when momentum == 0), g[n] -> p, buf updated in place
//   adam_step:   p[n], m[n], v[n], g[n]                    -> p, m, v updated in place
//   sum_squares: x[n] -> sum of x[i]^2, accumulated in double in an order fixed by n alone (the
//                result does not depend on the number of threads)
// The clipping scale itself is kernels/axpy.h's scale. Formulas: kernels/scalar_math.h
// (sgd_update, adam_update). Hyperparameters travel as double and are rounded to T once.
#pragma once

#include <cstddef>
#include <cstdint>

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
void sgd_step(T* p, T* buf, const T* g, index_t n, const SgdStep& hp, Stream stream = nullptr);
template <class T>
void adam_step(T* p, T* m, T* v, const T* g, index_t n, const AdamStep& hp,
               Stream stream = nullptr);
template <class T>
double sum_squares(const T* x, index_t n);
}  // namespace cpu

// CUDA (float32): multi-tensor kernels. One launch updates every tensor of a list (a launch per
// kMaxTensorsPerLaunch tensors): the list travels in the kernel's parameters (no copy, nothing to
// allocate, so the launch can be captured in a CUDA graph), and blocks walk (tensor, chunk)
// pairs. Each element is updated exactly as on the CPU (scalar_math.h), with the hyperparameters
// rounded to float and the bias corrections formed in double on the host the same way.
namespace cuda {
inline constexpr std::size_t kMaxTensorsPerLaunch = 48;

// One tensor of an SGD step (device pointers, n elements). buf is null when momentum == 0;
// first: buf holds nothing yet (it starts as the gradient). SgdStep::first is ignored.
struct SgdTensor {
  float* p = nullptr;
  float* buf = nullptr;
  const float* g = nullptr;
  index_t n = 0;
  bool first = false;
};

// One tensor of an Adam step; `step` is this parameter's update count t >= 1, from which its
// bias corrections 1 - beta^t are formed (AdamStep's bias_correction fields are ignored).
struct AdamTensor {
  float* p = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const float* g = nullptr;
  index_t n = 0;
  std::int64_t step = 1;
};

void sgd_step_multi(const SgdTensor* tensors, std::size_t count, const SgdStep& hp, Stream stream);
void adam_step_multi(const AdamTensor* tensors, std::size_t count, const AdamStep& hp,
                     Stream stream);

// out[0] (device) = sum over the tensors of sum x[i]^2, in double: a partial per fixed chunk of
// each tensor, then one block adds the partials in order, so the result depends on the sizes
// alone. scratch: sum_squares_scratch(...) doubles.
struct SquaresTensor {
  const float* x = nullptr;
  index_t n = 0;
};
index_t sum_squares_scratch(const SquaresTensor* tensors, std::size_t count);
void sum_squares_multi(double* out, double* scratch, const SquaresTensor* tensors,
                       std::size_t count, Stream stream);
}  // namespace cuda

}  // namespace latent::kernels
