// Vector updates used by gradient accumulation and in-place tensor methods.
//   y[n] += alpha * x[n]        (axpy)
//   y[n] *= alpha               (scale)
//   y[n] = a[n] + w[0] * b[n], wb[n] = w[0] * b[n]   (add_scaled: w read from memory when the
//                                                     kernel runs; wb may be null)
//   accumulate_scalars: acc[k] += w * values.v[k][0] for k < values.count, in double (running
//                       sums of a step's loss terms: one launch for all of them)
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

// Up to kMaxScalars one-element tensors, passed by value.
inline constexpr int kMaxScalars = 16;
template <class T>
struct ScalarList {
  const T* v[kMaxScalars] = {};
  int count = 0;
};

namespace cpu {
template <class T>
void axpy(T* y, const T* x, T alpha, index_t n, Stream stream = nullptr);
template <class T>
void scale(T* y, T alpha, index_t n, Stream stream = nullptr);
template <class T>
void accumulate_scalars(double* acc, ScalarList<T> values, double w, Stream stream = nullptr);
template <class T>
void add_scaled(T* y, T* wb, const T* a, const T* b, const T* w, index_t n,
                Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void axpy(float* y, const float* x, float alpha, index_t n, Stream stream);
void scale(float* y, float alpha, index_t n, Stream stream);
void add_scaled(float* y, float* wb, const float* a, const float* b, const float* w, index_t n,
                Stream stream);
void accumulate_scalars(double* acc, ScalarList<float> values, double w, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
