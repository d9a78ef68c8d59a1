// Reduce family: sums and log-sum-exps, all accumulated in double on the CPU.
//
// Whole tensor, x [n]:
//   sum_all_forward:   y [1]   = scale * sum_i x[i]                    (overwrites y)
//   sum_all_backward:  dx[i] (+)= scale * dy[0]                        (adds when add, else stores)
// Along one dimension of a matrix x [rows, cols]; dim 0 reduces each column (result [cols]),
// dim 1 each row (result [rows]):
//   sum_dim_forward:        y[k]  = scale * sum_j x[.]                 (overwrites y)
//   sum_dim_backward:       dx[r, c] (+)= scale * dy[k]                (adds when add, else stores)
//   logsumexp_dim_forward:  y[k]  = log(sum_j exp(x[.])) + shift       (overwrites y)
//                           computed as m + log(sum_j exp(x - m)), m the max, so nothing
//                           overflows; -inf when every element is -inf or the count is 0; NaN
//                           when any element is NaN.
//   logsumexp_dim_backward: dx[r, c] (+)= dy[k] * exp(x[r, c] - (y[k] - shift))
//                           (adds when add, else stores; y is the forward's output; elements at
//                           -inf get 0)
// where k = c for dim 0 and k = r for dim 1. scale is 1 for a sum and 1/count for a mean; shift is
// 0 for logsumexp and -log(count) for logmeanexp. Every sum has a fixed association, so results
// do not depend on the number of threads.
//
// CUDA (float32): the same contracts, sums accumulated in double with fixed-shape block
// reductions. A reduction spanning many blocks writes per-block partials to device scratch (the
// caller allocates <op>_scratch(...) doubles; null when that is 0) and one more kernel adds them
// in a fixed order: no atomics, identical bits run to run.
//   whole tensor: blocks sum strided slices, one block adds the partials.
//   dim 1 (rows): one warp per row, shuffle tree.
//   dim 0 (cols): blocks of 32 columns x a chunk of rows, then the chunks per column in order;
//                 logsumexp takes one such pass for the column maxima and one for the sums.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

namespace cpu {

template <class T>
void sum_all_forward(T* y, const T* x, double scale, index_t n, double* scratch,
                     Stream stream = nullptr);
template <class T>
void sum_all_backward(T* dx, bool add, const T* dy, double scale, index_t n,
                      Stream stream = nullptr);

template <class T>
void sum_dim_forward(T* y, const T* x, double scale, int dim, index_t rows, index_t cols,
                     double* scratch, Stream stream = nullptr);
template <class T>
void sum_dim_backward(T* dx, bool add, const T* dy, double scale, int dim, index_t rows,
                      index_t cols, Stream stream = nullptr);

template <class T>
void logsumexp_dim_forward(T* y, const T* x, double shift, int dim, index_t rows, index_t cols,
                           double* scratch, Stream stream = nullptr);
template <class T>
void logsumexp_dim_backward(T* dx, bool add, const T* dy, const T* x, const T* y, double shift,
                            int dim, index_t rows, index_t cols, Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
index_t sum_all_scratch(index_t n);
void sum_all_forward(float* y, const float* x, double scale, index_t n, double* scratch,
                     Stream stream);
void sum_all_backward(float* dx, bool add, const float* dy, double scale, index_t n, Stream stream);

index_t sum_dim_scratch(int dim, index_t rows, index_t cols);
void sum_dim_forward(float* y, const float* x, double scale, int dim, index_t rows, index_t cols,
                     double* scratch, Stream stream);
void sum_dim_backward(float* dx, bool add, const float* dy, double scale, int dim, index_t rows,
                      index_t cols, Stream stream);

index_t logsumexp_dim_scratch(int dim, index_t rows, index_t cols);
void logsumexp_dim_forward(float* y, const float* x, double shift, int dim, index_t rows,
                           index_t cols, double* scratch, Stream stream);
void logsumexp_dim_backward(float* dx, bool add, const float* dy, const float* x, const float* y,
                            double shift, int dim, index_t rows, index_t cols, Stream stream);
}  // namespace cuda

}  // namespace latent::kernels
