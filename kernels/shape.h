// Shape family: moving blocks of elements between row-major matrices.
//   copy_2d:            dst[r * dst_stride + c]  = src[r * src_stride + c]   (overwrites)
//   accumulate_2d:      dst[r * dst_stride + c] += src[r * src_stride + c]   (accumulates)
//     for r < rows, c < cols. A stride of 0 repeats one row (tiling), a stride larger than cols
//     selects a column band (narrowing, concatenation). dst and src must not overlap.
//   transpose_forward:  y [cols, rows], y[c, r]  = x[r, c] for x [rows, cols] (overwrites)
//   transpose_backward: dx [rows, cols], dx[r, c] += dy[c, r] for dy [cols, rows] (accumulates)
//   tile_backward:      dx [m] (+)= sum_k dy[k * m + i] over k < repeats   (adds when add, else
//                       stores; the sum runs in double, in order of k)
// CUDA (float32): copies are one thread per element; transposes go through a 32 x 33 shared
// tile (coalesced reads and writes, no bank conflicts); tile_backward gives each thread one
// element of dx and sums over k in order, in double: the CPU's association exactly.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

namespace cpu {

template <class T>
void copy_2d(T* dst, index_t dst_stride, const T* src, index_t src_stride, index_t rows,
             index_t cols, Stream stream = nullptr);
template <class T>
void accumulate_2d(T* dst, index_t dst_stride, const T* src, index_t src_stride, index_t rows,
                   index_t cols, Stream stream = nullptr);

template <class T>
void transpose_forward(T* y, const T* x, index_t rows, index_t cols, Stream stream = nullptr);
template <class T>
void transpose_backward(T* dx, const T* dy, index_t rows, index_t cols, Stream stream = nullptr);

template <class T>
void tile_backward(T* dx, bool add, const T* dy, index_t repeats, index_t m,
                   Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
void copy_2d(float* dst, index_t dst_stride, const float* src, index_t src_stride, index_t rows,
             index_t cols, Stream stream);
void accumulate_2d(float* dst, index_t dst_stride, const float* src, index_t src_stride,
                   index_t rows, index_t cols, Stream stream);
void transpose_forward(float* y, const float* x, index_t rows, index_t cols, Stream stream);
void transpose_backward(float* dx, const float* dy, index_t rows, index_t cols, Stream stream);
void tile_backward(float* dx, bool add, const float* dy, index_t repeats, index_t m, Stream stream);
}  // namespace cuda

}  // namespace latent::kernels
