// Reductions, differentiable. CPU reductions accumulate in double.
//   sum(x), mean(x)               -> shape () (all elements)
//   sum(x, dim), mean(x, dim)     for 2-D x: dim 0 (per column) -> [D], dim 1 / -1 (per row) ->
//   [N];
//                                 keepdim keeps the reduced dimension as 1 ([1, D] or [N, 1]).
//   logsumexp(x, dim)             log sum_j exp(x_j), stable (max subtracted)
//   logmeanexp(x, dim)            logsumexp - log(count): the IWAE bound's estimator
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
