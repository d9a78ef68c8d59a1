// Vector updates used by gradient accumulation and in-place tensor methods.
//   y[n] += alpha * x[n]        (axpy)
//   y[n] *= alpha               (scale)
//   y[n] = a[n] + w[0] * b[n], wb[n] = w[0] * b[n]   (add_scaled: w read from memory when the
//                                                     kernel runs; wb may be null; with a ramp,
//                                                     w[0] is first set from a step count in
//                                                     memory, below)
//   accumulate_scalars: acc[k] += w * values.v[k][0] for k < values.count, in double (running
//                       sums of a step's loss terms: one launch for all of them)
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace latent::kernels {

// Up to kMaxScalars one-element tensors, passed by value.
inline constexpr int kMaxScalars = 16;
template <class T>
struct ScalarList {
  const T* v[kMaxScalars] = {};
  int count = 0;
};

// A weight that follows a step count kept in memory: with `step` set, add_scaled computes
// w = scale * ramp_factor(*this, *step), writes it to w[0] (instead of reading it) and counts the
// step (*step += 1), so a recorded step replays with each step's weight. The factor, in [0, 1], at
// step s (negative: 0):
//   constant   1
//   linear     min(1, s / steps)
//   cyclical   min(1, (s mod steps) / steps / ratio)   (cycles of `steps`, rising over `ratio`)
enum class RampKind : int { constant, linear, cyclical };
struct Ramp {
  RampKind kind = RampKind::constant;
  std::int64_t steps = 1;  // >= 1
  double ratio = 1;        // in (0, 1]
  double scale = 1;
  std::int64_t* step = nullptr;  // the count in memory; null: no ramp, w[0] is read as it is
};

LATENT_HD double ramp_factor(const Ramp& r, std::int64_t step) {
  const std::int64_t s = step < 0 ? 0 : step;
  const std::int64_t period = r.steps < 1 ? 1 : r.steps;
  switch (r.kind) {
    case RampKind::linear: {
      const double f = static_cast<double>(s) / static_cast<double>(period);
      return f < 1.0 ? f : 1.0;
    }
    case RampKind::cyclical: {
      const double f = static_cast<double>(s % period) / static_cast<double>(period) / r.ratio;
      return f < 1.0 ? f : 1.0;
    }
    case RampKind::constant:
      break;
  }
  return 1.0;
}

namespace cpu {
template <class T>
void axpy(T* y, const T* x, T alpha, index_t n, Stream stream = nullptr);
template <class T>
void scale(T* y, T alpha, index_t n, Stream stream = nullptr);
template <class T>
void accumulate_scalars(double* acc, ScalarList<T> values, double w, Stream stream = nullptr);
template <class T>
void add_scaled(T* y, T* wb, const T* a, const T* b, T* w, Ramp ramp, index_t n,
                Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void axpy(float* y, const float* x, float alpha, index_t n, Stream stream);
void scale(float* y, float alpha, index_t n, Stream stream);
void add_scaled(float* y, float* wb, const float* a, const float* b, float* w, Ramp ramp, index_t n,
                Stream stream);
void accumulate_scalars(double* acc, ScalarList<float> values, double w, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
