#include <cub/block/block_reduce.cuh>

#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/reduce.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

constexpr int kWarps = kThreads / 32;
// sum_all: each block covers at least this many elements per grid-stride sweep, and there are at
// most kMaxBlocks partials; both depend on n alone, so the association is fixed by the shape.
constexpr index_t kItemsPerBlock = kThreads * 8;
constexpr index_t kMaxBlocks = 1024;
// Column reductions: blocks of kColTile columns by kColLanes thread rows over one chunk of rows,
// row_chunks(rows) chunks (kernels/cuda_reduce.cuh).

inline index_t sum_blocks(index_t n) {
  const index_t b = (n + kItemsPerBlock - 1) / kItemsPerBlock;
  return b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b);
}

using BlockSum = cub::BlockReduce<double, kThreads>;

// ---- whole tensor ----------------------------------------------------------------------------

// Each block sums a strided slice of x in double; one block writes y directly, several write
// their partials.
__global__ void sum_blocks_kernel(double* __restrict__ partials, float* __restrict__ y,
                                  double scale, const float* __restrict__ x, index_t n) {
  __shared__ typename BlockSum::TempStorage tmp;
  double acc = 0.0;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    acc += static_cast<double>(x[i]);
  const double s = BlockSum(tmp).Sum(acc);
  if (threadIdx.x == 0) {
    if (gridDim.x == 1)
      y[0] = static_cast<float>(scale * s);
    else
      partials[blockIdx.x] = s;
  }
}

__global__ void sum_all_backward_kernel(float* __restrict__ dx, bool add,
                                        const float* __restrict__ dy, double scale, index_t n) {
  const float g = static_cast<float>(scale * static_cast<double>(dy[0]));
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    put(dx[i], g, add);
}

// ---- along rows (dim 1): one warp per row ----------------------------------------------------

// Every lane receives the warp's max (NaN wins), taken by lane 0 over a fixed tree.
__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1)
    v = math::max_propagate_nan(v, __shfl_down_sync(0xffffffffu, v, off));
  return __shfl_sync(0xffffffffu, v, 0);
}

// kLse false: y[r] = post * sum_c x[r, c]; true: y[r] = logsumexp_c x[r, c] + post.
template <bool kLse>
__global__ void row_reduce_kernel(float* __restrict__ y, const float* __restrict__ x, double post,
                                  index_t rows, index_t cols) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const index_t warp = threadIdx.x / 32;
  // r is the same for all lanes of a warp, so the shuffles below see every lane.
  for (index_t r = blockIdx.x * static_cast<index_t>(kWarps) + warp; r < rows;
       r += static_cast<index_t>(gridDim.x) * kWarps) {
    const float* xr = x + r * cols;
    if constexpr (!kLse) {
      double acc = 0.0;
      for (index_t c = lane; c < cols; c += 32) acc += static_cast<double>(xr[c]);
      acc = group_sum<32>(acc);
      if (lane == 0) y[r] = static_cast<float>(post * acc);
    } else {
      float m = -INFINITY;
      for (index_t c = lane; c < cols; c += 32) m = math::max_propagate_nan(m, xr[c]);
      m = warp_max(m);
      // A non-finite max makes these terms meaningless; logsumexp_finish then ignores them.
      double s = 0.0;
      for (index_t c = lane; c < cols; c += 32) s += static_cast<double>(expf(xr[c] - m));
      s = group_sum<32>(s);
      if (lane == 0)
        y[r] = static_cast<float>(math::logsumexp_finish(static_cast<double>(m), s) + post);
    }
  }
}

// ---- along columns (dim 0): chunks of rows, then the chunks in order ---------------------------

// sum: y = post * sum.  max: colmax = the column max (NaN wins).  sumexp: y = logsumexp from
// colmax and the sum of exp(x - colmax), plus post.
enum class ColOp { sum, max, sumexp };

template <ColOp O>
__device__ __forceinline__ double col_identity() {
  return O == ColOp::max ? -static_cast<double>(INFINITY) : 0.0;
}

template <ColOp O>
__device__ __forceinline__ double col_combine(double a, double b) {
  if constexpr (O == ColOp::max)
    return math::max_propagate_nan(a, b);
  else
    return a + b;
}

template <ColOp O>
__device__ __forceinline__ void col_finish(double acc, index_t c, float* y, double* colmax,
                                           double post) {
  if constexpr (O == ColOp::sum)
    y[c] = static_cast<float>(post * acc);
  else if constexpr (O == ColOp::max)
    colmax[c] = acc;
  else
    y[c] = static_cast<float>(math::logsumexp_finish(colmax[c], acc) + post);
}

// Block (column stripe, chunk): each thread folds its rows of the chunk in order, then thread row
// 0 folds the 8 thread rows in order. With one chunk the result is final; otherwise it goes to
// partials[chunk, column] for col_finish_kernel.
template <ColOp O>
__global__ void col_partials_kernel(double* __restrict__ partials, double* colmax, float* y,
                                    const float* __restrict__ x, double post, index_t rows,
                                    index_t cols, index_t rows_per_chunk) {
  __shared__ double part[kColLanes][kColTile + 1];
  const index_t c = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * rows_per_chunk;
  const index_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  double acc = col_identity<O>();
  if (c < cols) {
    const float m = O == ColOp::sumexp ? static_cast<float>(colmax[c]) : 0.0f;
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      const float v = x[r * cols + c];
      if constexpr (O == ColOp::sum)
        acc += static_cast<double>(v);
      else if constexpr (O == ColOp::max)
        acc = math::max_propagate_nan(acc, static_cast<double>(v));
      else
        acc += static_cast<double>(expf(v - m));
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    double s = part[0][threadIdx.x];
    for (int k = 1; k < kColLanes; ++k) s = col_combine<O>(s, part[k][threadIdx.x]);
    if (gridDim.y == 1)
      col_finish<O>(s, c, y, colmax, post);
    else
      partials[static_cast<index_t>(blockIdx.y) * cols + c] = s;
  }
}

template <ColOp O>
__global__ void col_finish_kernel(const double* __restrict__ partials, double* colmax, float* y,
                                  double post, index_t chunks, index_t cols) {
  for (index_t c = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<index_t>(gridDim.x) * blockDim.x) {
    double s = partials[c];
    for (index_t k = 1; k < chunks; ++k) s = col_combine<O>(s, partials[k * cols + c]);
    col_finish<O>(s, c, y, colmax, post);
  }
}

// One column reduction. partials: chunks * cols doubles when chunks > 1.
template <ColOp O>
void col_reduce(float* y, double* colmax, double* partials, const float* x, double post,
                index_t rows, index_t cols, Stream stream) {
  const index_t chunks = row_chunks(rows);
  const index_t rows_per_chunk = (rows + chunks - 1) / chunks;
  const dim3 block(kColTile, kColLanes);
  const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  col_partials_kernel<O>
      <<<grid, block, 0, stream>>>(partials, colmax, y, x, post, rows, cols, rows_per_chunk);
  LATENT_LAUNCH_CHECK(col_partials_kernel);
  if (chunks > 1) {
    col_finish_kernel<O><<<blocks_for(cols, kThreads), kThreads, 0, stream>>>(partials, colmax, y,
                                                                              post, chunks, cols);
    LATENT_LAUNCH_CHECK(col_finish_kernel);
  }
}

index_t col_partials_size(index_t rows, index_t cols) {
  const index_t chunks = row_chunks(rows);
  return chunks > 1 ? chunks * cols : 0;
}

// ---- backward: broadcast dout over the reduced elements ---------------------------------------

__global__ void sum_dim_backward_kernel(float* __restrict__ dx, bool add,
                                        const float* __restrict__ dy, double scale, int dim,
                                        index_t rows, index_t cols) {
  const index_t n = rows * cols;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / cols;
    const index_t k = dim == 0 ? i - r * cols : r;
    put(dx[i], static_cast<float>(scale * static_cast<double>(dy[k])), add);
  }
}

__global__ void logsumexp_backward_kernel(float* __restrict__ dx, bool add,
                                          const float* __restrict__ dy, const float* __restrict__ x,
                                          const float* __restrict__ y, double shift, int dim,
                                          index_t rows, index_t cols) {
  const index_t n = rows * cols;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / cols;
    const index_t k = dim == 0 ? i - r * cols : r;
    // The softmax weight from the saved output: lse = y - shift.
    const float lse = static_cast<float>(static_cast<double>(y[k]) - shift);
    put(dx[i], dy[k] * math::logsumexp_weight(x[i], lse), add);
  }
}

void need_scratch(double* scratch, index_t size, const char* op) {
  check(size == 0 || scratch != nullptr, op, "needs ", size, " doubles of device scratch");
}

}  // namespace

index_t sum_all_scratch(index_t n) {
  const index_t b = sum_blocks(n);
  return b > 1 ? b : 0;
}

void sum_all_forward(float* y, const float* x, double scale, index_t n, double* scratch,
                     Stream stream) {
  // n == 0 still launches one block: it writes y = 0.
  const index_t blocks = sum_blocks(n);
  need_scratch(scratch, sum_all_scratch(n), "sum");
  sum_blocks_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(scratch, y, scale, x,
                                                                            n);
  LATENT_LAUNCH_CHECK(sum_blocks_kernel);
  if (blocks > 1) {
    // One block: y = scale * the sum of the partials (strided per thread, then the block tree).
    final_sum_kernel<<<1, kThreads, 0, stream>>>(scratch, static_cast<int>(blocks),
                                                 ScaledStore{y, scale});
    LATENT_LAUNCH_CHECK(final_sum_kernel);
  }
}

void sum_all_backward(float* dx, bool add, const float* dy, double scale, index_t n,
                      Stream stream) {
  if (n <= 0) return;
  sum_all_backward_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(dx, add, dy, scale, n);
  LATENT_LAUNCH_CHECK(sum_all_backward_kernel);
}

index_t sum_dim_scratch(int dim, index_t rows, index_t cols) {
  return dim == 0 ? col_partials_size(rows, cols) : 0;
}

void sum_dim_forward(float* y, const float* x, double scale, int dim, index_t rows, index_t cols,
                     double* scratch, Stream stream) {
  if (dim == 1) {
    if (rows <= 0) return;
    row_reduce_kernel<false>
        <<<blocks_for(rows, kWarps), kThreads, 0, stream>>>(y, x, scale, rows, cols);
    LATENT_LAUNCH_CHECK(row_reduce_kernel);
    return;
  }
  if (cols <= 0) return;
  need_scratch(scratch, sum_dim_scratch(dim, rows, cols), "sum");
  col_reduce<ColOp::sum>(y, nullptr, scratch, x, scale, rows, cols, stream);
}

void sum_dim_backward(float* dx, bool add, const float* dy, double scale, int dim, index_t rows,
                      index_t cols, Stream stream) {
  if (rows <= 0 || cols <= 0) return;
  sum_dim_backward_kernel<<<blocks_for(rows * cols, kThreads), kThreads, 0, stream>>>(
      dx, add, dy, scale, dim, rows, cols);
  LATENT_LAUNCH_CHECK(sum_dim_backward_kernel);
}

index_t logsumexp_dim_scratch(int dim, index_t rows, index_t cols) {
  // The column maxima first, then the partials of whichever pass runs.
  return dim == 0 ? cols + col_partials_size(rows, cols) : 0;
}

void logsumexp_dim_forward(float* y, const float* x, double shift, int dim, index_t rows,
                           index_t cols, double* scratch, Stream stream) {
  if (dim == 1) {
    if (rows <= 0) return;
    row_reduce_kernel<true>
        <<<blocks_for(rows, kWarps), kThreads, 0, stream>>>(y, x, shift, rows, cols);
    LATENT_LAUNCH_CHECK(row_reduce_kernel);
    return;
  }
  if (cols <= 0) return;
  need_scratch(scratch, logsumexp_dim_scratch(dim, rows, cols), "logsumexp");
  double* colmax = scratch;
  double* partials = scratch + cols;
  col_reduce<ColOp::max>(y, colmax, partials, x, 0.0, rows, cols, stream);
  col_reduce<ColOp::sumexp>(y, colmax, partials, x, shift, rows, cols, stream);
}

void logsumexp_dim_backward(float* dx, bool add, const float* dy, const float* x, const float* y,
                            double shift, int dim, index_t rows, index_t cols, Stream stream) {
  if (rows <= 0 || cols <= 0) return;
  logsumexp_backward_kernel<<<blocks_for(rows * cols, kThreads), kThreads, 0, stream>>>(
      dx, add, dy, x, y, shift, dim, rows, cols);
  LATENT_LAUNCH_CHECK(logsumexp_backward_kernel);
}

}  // namespace latent::kernels::cuda
