// Ops that move elements around, differentiable. (reshape and rows are Tensor methods: views.)
// Every result is a new contiguous tensor; gradients are routed back to the elements they came
// from (and summed where an element was used several times). Invalid arguments throw
// latent::Error naming the op and the shapes involved.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace latent {

// Columns [start, start + length) of a 2-D tensor: [N, D] -> [N, length]. A copy.
// Throws unless 0 <= start, 0 <= length and start + length <= D.
Tensor narrow_cols(const Tensor& x, std::int64_t start, std::int64_t length);
// Concatenation of 2-D tensors with equal row counts along columns: [N, D1] ++ [N, D2] -> [N,
// D1+D2]. Throws for an empty list, a tensor that is not 2-D, differing row counts, devices or
// dtypes. The same tensor may appear more than once.
Tensor concat_cols(const std::vector<Tensor>& xs);
// Concatenation along the first dimension (other dimensions equal; at least one dimension).
Tensor concat_rows(const std::vector<Tensor>& xs);
// R stacked copies along the first dimension: [N, ...] -> [R*N, ...], row r*N + n = x[n].
// The layout of reparametrize's R samples, so targets line up with them. R >= 0; the gradient
// sums the R copies (in double on the CPU).
Tensor tile_rows(const Tensor& x, std::int64_t repeats);
// Transpose of a 2-D tensor (a copy): [M, N] -> [N, M].
Tensor transpose(const Tensor& x);

}  // namespace latent
