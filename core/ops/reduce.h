// Reductions, differentiable. CPU reductions accumulate in double, in an order that does not
// depend on the number of threads.
//   sum(x), mean(x)               any shape -> shape () (all elements)
//   sum(x, dim), mean(x, dim)     2-D x [N, D] only: dim 0 (or -2) reduces each column -> [D],
//                                 dim 1 (or -1) each row -> [N]; keepdim keeps the reduced
//                                 dimension as 1: [1, D] or [N, 1].
//   logsumexp(x, dim)             log sum_j exp(x_j), computed as m + log sum_j exp(x_j - m) with
//                                 m the max, so large values do not overflow. A slice of all -inf
//                                 (or an empty one) gives -inf, a +inf element +inf, a NaN NaN.
//                                 Gradient: the softmax weights exp(x_j - lse) times dout (0 for
//                                 elements at -inf, so a row of -inf has a zero gradient).
//   logmeanexp(x, dim)            logsumexp - log(count): the IWAE bound's estimator.
// The gradient of every reduction broadcasts dout back over the reduced elements.
// Errors (latent::Error naming the op and the shape): a dim on a tensor that is not 2-D, a dim
// outside [-2, 1], and a mean (or logmeanexp) over zero elements. sum of an empty tensor is 0.
#pragma once

#include "core/tensor.h"

namespace latent {

Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor sum(const Tensor& x, int dim, bool keepdim = false);
Tensor mean(const Tensor& x, int dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, int dim, bool keepdim = false);
Tensor logmeanexp(const Tensor& x, int dim, bool keepdim = false);

}  // namespace latent
