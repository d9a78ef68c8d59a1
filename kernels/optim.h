// Optimizer family: in-place parameter updates, one fused loop per tensor, and the reduction that
// gradient clipping needs.
//   optim_begin_step: the values of this step, in memory (`state`, below)
//   sgd_step:    p[n], buf[n] (null when momentum == 0), g[n] -> p, buf updated in place
//   adam_step:   p[n], m[n], v[n], g[n]                    -> p, m, v updated in place
//   sum_squares: x[n] -> sum of x[i]^2, accumulated in double in an order fixed by n alone (the
//                result does not depend on the number of threads)
// The clipping scale itself is kernels/axpy.h's scale. Formulas: kernels/scalar_math.h
// (sgd_update, adam_update). Hyperparameters travel as double and are rounded to T once.
//
// What changes from one step to the next (the step count, the learning rate of a schedule, each
// parameter's update count t and Adam's bias corrections) lives in memory the kernels read when
// they run, never in their arguments, so a recorded step (a CPU plan, a CUDA graph) replays
// correctly. That memory, `state`, holds optim_state_size(P) doubles for P parameters:
//   state[0]          steps taken
//   state[1]          the learning rate of the last step
//   state[2 + 3 i]    t_i, the updates of parameter i
//   state[3 + 3 i]    lr / (1 - beta1^t_i)    (Adam's step size; lr for SGD)
//   state[4 + 3 i]    1 / sqrt(1 - beta2^t_i) (1 for SGD)
// optim_begin_step runs first in every step: lr = lr_at(schedule, state[0]), state[0] += 1, and
// for each parameter in `mask` t_i += 1 and its corrections; then the update kernels read them.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace latent::kernels {

// A learning-rate schedule as plain values (core/optim/schedule.h builds and documents it):
// lr_at(s, step) on the host and on the device alike.
enum class LrKind : int { constant, step_decay, exponential, cosine };
struct LrSpec {
  LrKind kind = LrKind::constant;
  double lr0 = 0;
  double gamma = 1;
  std::int64_t every = 1;  // step_decay: steps between decays; cosine: total steps
  double floor = 0;
  std::int64_t warmup = 0;
  double warmup_start = 0;
  std::int64_t offset = 0;  // schedule step = steps taken + offset
};

LATENT_HD double lr_base_at(const LrSpec& s, std::int64_t step) {
  switch (s.kind) {
    case LrKind::step_decay:
      return s.lr0 * pow(s.gamma, static_cast<double>(step / s.every));
    case LrKind::exponential:
      return s.lr0 * pow(s.gamma, static_cast<double>(step));
    case LrKind::cosine: {
      const double t =
          static_cast<double>(step < s.every ? step : s.every) / static_cast<double>(s.every);
      return s.floor + (s.lr0 - s.floor) * 0.5 * (1.0 + cos(3.14159265358979323846 * t));
    }
    case LrKind::constant:
      break;
  }
  return s.lr0;
}

// The learning rate at schedule step `step` (>= 0; a negative step is read as 0).
LATENT_HD double lr_at(const LrSpec& s, std::int64_t step) {
  if (step < 0) step = 0;
  if (step < s.warmup) {
    const double frac = static_cast<double>(step) / static_cast<double>(s.warmup);
    return lr_base_at(s, 0) * (s.warmup_start + (1.0 - s.warmup_start) * frac);
  }
  return lr_base_at(s, step - s.warmup);
}

inline constexpr index_t kMaxOptimParams = 1024;
inline constexpr index_t optim_state_size(index_t params) {
  return 2 + 3 * params;
}
// The parameters a step updates (those with a gradient), as bits.
struct ParamMask {
  std::uint64_t bits[kMaxOptimParams / 64] = {};
  LATENT_HD bool has(index_t i) const { return (bits[i / 64] >> (i % 64)) & 1u; }
  void set(index_t i) { bits[i / 64] |= std::uint64_t{1} << (i % 64); }
};

struct SgdStep {
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

struct AdamStep {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;  // AdamW
};

namespace cpu {
// beta1 = beta2 = 0 for SGD. count: the parameters of the state (mask bits beyond are ignored).
void optim_begin_step(double* state, LrSpec schedule, double beta1, double beta2, ParamMask mask,
                      index_t count, Stream stream = nullptr);
// Parameter `param` of the state; its momentum buffer starts as the gradient when t_param == 1.
template <class T>
void sgd_step(T* p, T* buf, const T* g, index_t n, SgdStep hp, const double* state, index_t param,
              Stream stream = nullptr);
template <class T>
void adam_step(T* p, T* m, T* v, const T* g, index_t n, AdamStep hp, const double* state,
               index_t param, Stream stream = nullptr);
template <class T>
double sum_squares(const T* x, index_t n);
}  // namespace cpu

// Gradient clipping with its norm in memory, clip[3] doubles: [sum of squares, norm, factor].
//   clip_accumulate: clip[0] = (first ? 0 : clip[0]) + sum x[i]^2   (double, as sum_squares)
//   clip_factor:     clip[1] = sqrt(clip[0]); clip[2] = max_norm / (norm + 1e-6) when
//                    norm > max_norm, 1 when not, 0 when the norm is not finite
//   clip_scale:      x[i] *= clip[2], and x[i] = 0 where the factor is 0 (no NaN spreads)
namespace cpu {
template <class T>
void clip_accumulate(double* clip, const T* x, index_t n, bool first, Stream stream = nullptr);
void clip_factor(double* clip, double max_norm, Stream stream = nullptr);
template <class T>
void clip_scale(T* x, const double* clip, index_t n, Stream stream = nullptr);
}  // namespace cpu

// CUDA (float32): multi-tensor kernels. One launch updates every tensor of a list (a launch per
// kMaxTensorsPerLaunch tensors): the list travels in the kernel's parameters (no copy, nothing to
// allocate, so the launch can be captured in a CUDA graph), and blocks walk (tensor, chunk)
// pairs. Each element is updated exactly as on the CPU (scalar_math.h), with the hyperparameters
// rounded to float and the step's values read from `state` (device memory).
namespace cuda {
inline constexpr std::size_t kMaxTensorsPerLaunch = 48;

void optim_begin_step(double* state, LrSpec schedule, double beta1, double beta2, ParamMask mask,
                      index_t count, Stream stream);

// One tensor of an SGD step (device pointers, n elements); `param` is its index in the state.
// buf is null when momentum == 0.
struct SgdTensor {
  float* p = nullptr;
  float* buf = nullptr;
  const float* g = nullptr;
  index_t n = 0;
  index_t param = 0;
};

// One tensor of an Adam step; `param` is its index in the state.
struct AdamTensor {
  float* p = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  const float* g = nullptr;
  index_t n = 0;
  index_t param = 0;
};

void sgd_step_multi(const SgdTensor* tensors, std::size_t count, SgdStep hp, const double* state,
                    Stream stream);
void adam_step_multi(const AdamTensor* tensors, std::size_t count, AdamStep hp, const double* state,
                     Stream stream);

// out[0] (device) = sum over the tensors of sum x[i]^2, in double: a partial per fixed chunk of
// each tensor, then one block adds the partials in order, so the result depends on the sizes
// alone. scratch: sum_squares_scratch(...) doubles.
struct SquaresTensor {
  const float* x = nullptr;
  index_t n = 0;
};
index_t sum_squares_scratch(const SquaresTensor* tensors, std::size_t count);
void clip_factor(double* clip, double max_norm, Stream stream);
void clip_scale(float* x, const double* clip, index_t n, Stream stream);
void sum_squares_multi(double* out, double* scratch, const SquaresTensor* tensors,
                       std::size_t count, Stream stream);
}  // namespace cuda

}  // namespace latent::kernels
