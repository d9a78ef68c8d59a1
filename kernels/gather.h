// Row gather (mini-batches drawn through a permutation).
//   y[n, row] = x[index[i], row] for i < n
// x has at least max(index) + 1 rows of `row` elements; the caller checks the indices.
// index points to device memory for the CUDA version.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {
namespace cpu {
template <class T>
void gather_rows(T* y, const T* x, const index_t* index, index_t n, index_t row);
}  // namespace cpu

namespace cuda {
void gather_rows(float* y, const float* x, const index_t* index, index_t n, index_t row,
                 Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
