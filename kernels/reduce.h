// Reduce family: sums and log-sum-exps, all accumulated in double on the CPU.
//
// Whole tensor, x [n]:
//   sum_all_forward:   y [1]   = scale * sum_i x[i]                    (overwrites y)
//   sum_all_backward:  dx[i]  += scale * dy[0]                         (accumulates)
// Along one dimension of a matrix x [rows, cols]; dim 0 reduces each column (result [cols]),
// dim 1 each row (result [rows]):
//   sum_dim_forward:        y[k]  = scale * sum_j x[.]                 (overwrites y)
//   sum_dim_backward:       dx[r, c] += scale * dy[k]                  (accumulates)
//   logsumexp_dim_forward:  y[k]  = log(sum_j exp(x[.])) + shift       (overwrites y)
//                           computed as m + log(sum_j exp(x - m)), m the max, so nothing
//                           overflows; -inf when every element is -inf or the count is 0; NaN
//                           when any element is NaN.
//   logsumexp_dim_backward: dx[r, c] += dy[k] * exp(x[r, c] - (y[k] - shift))
//                           (accumulates; y is the forward's output; elements at -inf get 0)
// where k = c for dim 0 and k = r for dim 1. scale is 1 for a sum and 1/count for a mean; shift is
// 0 for logsumexp and -log(count) for logmeanexp. Every sum has a fixed association, so results
// do not depend on the number of threads.
#pragma once

#include "kernels/common.h"

namespace latent::kernels::cpu {

template <class T>
void sum_all_forward(T* y, const T* x, double scale, index_t n);
template <class T>
void sum_all_backward(T* dx, const T* dy, double scale, index_t n);

template <class T>
void sum_dim_forward(T* y, const T* x, double scale, int dim, index_t rows, index_t cols);
template <class T>
void sum_dim_backward(T* dx, const T* dy, double scale, int dim, index_t rows, index_t cols);

template <class T>
void logsumexp_dim_forward(T* y, const T* x, double shift, int dim, index_t rows, index_t cols);
template <class T>
void logsumexp_dim_backward(T* dx, const T* dy, const T* x, const T* y, double shift, int dim,
                            index_t rows, index_t cols);

}  // namespace latent::kernels::cpu
