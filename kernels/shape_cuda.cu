#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/shape.h"

namespace latent::kernels::cuda {
namespace {

// Transpose tile: 32 x 32 elements moved by 32 x 8 threads, four rows each.
constexpr int kTile = 32;
constexpr int kTileRows = 8;

// dst[r, c] (+)= src[r, c] with row strides; consecutive threads take consecutive columns.
template <bool kAccumulate>
__global__ void copy_2d_kernel(float* __restrict__ dst, index_t dst_stride,
                               const float* __restrict__ src, index_t src_stride, index_t rows,
                               index_t cols) {
  const index_t n = rows * cols;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / cols, c = i - r * cols;
    if constexpr (kAccumulate)
      dst[r * dst_stride + c] += src[r * src_stride + c];
    else
      dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

// y [cols, rows] (+)= x [rows, cols]^T. A block reads a 32 x 32 tile of x along its rows into
// shared memory and writes it along the rows of y; the extra column keeps the transposed reads
// of the tile free of bank conflicts. Blocks walk the tiles with a stride, so any shape fits in
// the grid.
template <bool kAccumulate>
__global__ void transpose_kernel(float* __restrict__ y, const float* __restrict__ x, index_t rows,
                                 index_t cols) {
  __shared__ float tile[kTile][kTile + 1];
  const index_t tiles_c = (cols + kTile - 1) / kTile;
  const index_t tiles = ((rows + kTile - 1) / kTile) * tiles_c;
  const int tx = static_cast<int>(threadIdx.x), ty = static_cast<int>(threadIdx.y);
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t r0 = (t / tiles_c) * kTile, c0 = (t % tiles_c) * kTile;
    for (int j = ty; j < kTile; j += kTileRows) {
      const index_t r = r0 + j, c = c0 + tx;
      if (r < rows && c < cols) tile[j][tx] = x[r * cols + c];
    }
    __syncthreads();
    for (int j = ty; j < kTile; j += kTileRows) {
      const index_t c = c0 + j, r = r0 + tx;
      if (r < rows && c < cols) {
        if constexpr (kAccumulate)
          y[c * rows + r] += tile[tx][j];
        else
          y[c * rows + r] = tile[tx][j];
      }
    }
    __syncthreads();  // the tile is refilled by the next iteration
  }
}

template <bool kAccumulate>
void transpose(float* y, const float* x, index_t rows, index_t cols, Stream stream) {
  if (rows <= 0 || cols <= 0) return;
  const index_t tiles = ((rows + kTile - 1) / kTile) * ((cols + kTile - 1) / kTile);
  const unsigned blocks = static_cast<unsigned>(tiles < 65535 * 32 ? tiles : 65535 * 32);
  transpose_kernel<kAccumulate><<<blocks, dim3(kTile, kTileRows), 0, stream>>>(y, x, rows, cols);
  LATENT_LAUNCH_CHECK(transpose_kernel);
}

// dx[i] += sum over k, in order, of dy[k * m + i], in double: one thread per i, so a warp reads
// 32 consecutive elements of each repeat.
__global__ void tile_backward_kernel(float* __restrict__ dx, bool add, const float* __restrict__ dy,
                                     index_t repeats, index_t m) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < m;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    double acc = 0.0;
    for (index_t k = 0; k < repeats; ++k) acc += static_cast<double>(dy[k * m + i]);
    put(dx[i], static_cast<float>(acc), add);
  }
}

}  // namespace

void copy_2d(float* dst, index_t dst_stride, const float* src, index_t src_stride, index_t rows,
             index_t cols, Stream stream) {
  LATENT_LAUNCH_LINEAR(copy_2d_kernel<false>, rows * cols, stream, dst, dst_stride, src, src_stride,
                       rows, cols);
}

void accumulate_2d(float* dst, index_t dst_stride, const float* src, index_t src_stride,
                   index_t rows, index_t cols, Stream stream) {
  LATENT_LAUNCH_LINEAR(copy_2d_kernel<true>, rows * cols, stream, dst, dst_stride, src, src_stride,
                       rows, cols);
}

void transpose_forward(float* y, const float* x, index_t rows, index_t cols, Stream stream) {
  transpose<false>(y, x, rows, cols, stream);
}

void transpose_backward(float* dx, const float* dy, index_t rows, index_t cols, Stream stream) {
  // dy is [cols, rows]: dx [rows, cols] += dy^T.
  transpose<true>(dx, dy, cols, rows, stream);
}

void tile_backward(float* dx, bool add, const float* dy, index_t repeats, index_t m,
                   Stream stream) {
  LATENT_LAUNCH_LINEAR(tile_backward_kernel, m, stream, dx, add, dy, repeats, m);
}

}  // namespace latent::kernels::cuda
