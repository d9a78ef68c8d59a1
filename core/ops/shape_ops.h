// Ops that move elements around, differentiable. (reshape and rows are Tensor methods: views.)
#pragma once

#include <vector>

#include "core/tensor.h"

namespace latent {

// Columns [start, start + length) of a 2-D tensor: [N, D] -> [N, length]. A copy.
Tensor narrow_cols(const Tensor& x, std::int64_t start, std::int64_t length);
// Concatenation of 2-D tensors with equal row counts along columns: [N, D1] ++ [N, D2] -> [N,
// D1+D2].
Tensor concat_cols(const std::vector<Tensor>& xs);
// Concatenation along the first dimension (other dimensions equal).
Tensor concat_rows(const std::vector<Tensor>& xs);
// R stacked copies along the first dimension: [N, ...] -> [R*N, ...], row r*N + n = x[n].
// The layout of reparametrize's R samples, so targets line up with them.
Tensor tile_rows(const Tensor& x, std::int64_t repeats);
// Transpose of a 2-D tensor (a copy): [M, N] -> [N, M].
Tensor transpose(const Tensor& x);

}  // namespace latent
