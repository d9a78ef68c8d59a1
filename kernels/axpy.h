// Vector updates used by gradient accumulation and in-place tensor methods.
//   y[n] += alpha * x[n]        (axpy)
//   y[n] *= alpha               (scale)
#pragma once

#include "kernels/common.h"

namespace latent::kernels {
namespace cpu {
template <class T>
void axpy(T* y, const T* x, T alpha, index_t n, Stream stream = nullptr);
template <class T>
void scale(T* y, T alpha, index_t n, Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void axpy(float* y, const float* x, float alpha, index_t n, Stream stream);
void scale(float* y, float alpha, index_t n, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
