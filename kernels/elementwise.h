// Element-wise family: unary math and binary arithmetic with limited broadcasting.
//
// Binary ops see the result as a matrix [rows, cols] (cols = the last dimension, or 1 for a
// scalar result), and each operand as one of
//   Bcast::full    [rows, cols], index r * cols + c
//   Bcast::row     [cols],       index c         (repeated over rows)
//   Bcast::col     [rows],       index r         (repeated over columns)
//   Bcast::scalar  [1],          index 0
//   binary_forward:  y[r, c] = a[ia] op b[ib]                      (overwrites y)
//   binary_backward: da[r, c] (+)= dy[r, c] * d(op)/da, likewise db (adds when add_a / add_b,
//                    else stores; null = skip), for full operands only: the gradient of a
//                    broadcast operand is a sum, which core/ops/elementwise.cpp makes with the
//                    reduction kernels (kernels/reduce.h); a broadcast da or db is refused
//                    (latent::kernels::Error)
//   unary_forward:   y[i] = f(x[i])                                (overwrites y)
//   unary_backward:  dx[i] (+)= dy[i] * f'(x[i]) given y = f(x)    (adds when add, else stores)
// Formulas: kernels/scalar_math.h.
#pragma once

#include "kernels/common.h"
#include "kernels/scalar_math.h"

namespace latent::kernels {

enum class Bcast : int { full, row, col, scalar };

// binary_backward's refusal of a gradient for a broadcast operand (both backends).
void check_full_gradients(const void* da, Bcast ba, const void* db, Bcast bb);

namespace cpu {
template <class T>
void unary_forward(T* y, const T* x, math::Unary op, T p0, T p1, index_t n,
                   Stream stream = nullptr);
template <class T>
void unary_backward(T* dx, bool add, const T* dy, const T* x, const T* y, math::Unary op, T p0,
                    T p1, index_t n, Stream stream = nullptr);
template <class T>
void binary_forward(T* y, const T* a, Bcast ba, const T* b, Bcast bb, math::Binary op, index_t rows,
                    index_t cols, Stream stream = nullptr);
template <class T>
void binary_backward(T* da, bool add_a, T* db, bool add_b, const T* dy, const T* a, Bcast ba,
                     const T* b, Bcast bb, math::Binary op, index_t rows, index_t cols,
                     Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void unary_forward(float* y, const float* x, math::Unary op, float p0, float p1, index_t n,
                   Stream stream);
void unary_backward(float* dx, bool add, const float* dy, const float* x, const float* y,
                    math::Unary op, float p0, float p1, index_t n, Stream stream);
void binary_forward(float* y, const float* a, Bcast ba, const float* b, Bcast bb, math::Binary op,
                    index_t rows, index_t cols, Stream stream);
void binary_backward(float* da, bool add_a, float* db, bool add_b, const float* dy, const float* a,
                     Bcast ba, const float* b, Bcast bb, math::Binary op, index_t rows,
                     index_t cols, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
