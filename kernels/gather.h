// Row gather (mini-batches drawn through a permutation).
//   gather_rows: y[i, :] = x[index[i], :] for i < n
//     x has at least max(index) + 1 rows of `row` elements; the caller checks the indices.
//     index points to device memory for the CUDA version.
//   batch_rows: the next batch of an epoch, drawn inside a training step from memory alone.
//     state (3 int64 in memory): [0] the cursor, the position in the epoch's permutation `perm` of
//     the batch's first row; [1] 0 between calls (the GPU's count of finished blocks); [2] the
//     Philox block offset of the epoch's binarization draws.
//       y[r, c] = x[perm[cursor + skip + r], c]                           (binarize false)
//       y[r, c] = u < x[perm[cursor + skip + r], c] ? 1 : 0,              (binarize true)
//                 u = philox::uniform_at(seed, state[2], (cursor + skip + r) * row + c)
//     for r < n, then state[0] = cursor + advance (on the GPU by the last block to finish, after
//     every block has read the cursor), so a replayed step draws the next rows. skip 0 and
//     advance n draw a whole batch; one rank's share of a batch of B rows skips the rows of the
//     ranks before it and advances by B, drawing exactly the rows and bits of the whole batch.
//     The caller keeps cursor + max(skip + n, advance) within perm.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace latent::kernels {
namespace cpu {
template <class T>
void gather_rows(T* y, const T* x, const index_t* index, index_t n, index_t row);
template <class T>
void batch_rows(T* y, const T* x, const index_t* perm, std::int64_t* state, bool binarize,
                std::uint64_t seed, index_t skip, index_t n, index_t advance, index_t row,
                Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void gather_rows(float* y, const float* x, const index_t* index, index_t n, index_t row,
                 Stream stream);
void batch_rows(float* y, const float* x, const index_t* perm, std::int64_t* state, bool binarize,
                std::uint64_t seed, index_t skip, index_t n, index_t advance, index_t row,
                Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
