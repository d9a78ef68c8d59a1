// Deterministic reductions shared by the CUDA kernel families: launch shapes, fixed-shape warp and
// block sums in double, and three reduction drivers over an [rows, cols] matrix of terms
// (row_sums, total_sum, column_sums). Private to kernels/*.cu: include it from .cu files only.
//
// Determinism: every driver partitions the work by the SHAPE alone (rows, cols, count), never by
// the device, the occupancy or timing, and adds in a fixed order (sequential per thread, then a
// fixed tree: the xor butterfly of a warp or cub::BlockReduce, then partials in index order). No
// atomics. So two runs on the same shape give the same bits, on any GPU.
//
// Terms and stores are device functors (copied to the kernel by value):
//   term(i, r, c) -> double   the element at row r, column c, flat index i = r * cols + c
//   store(k, s)               receives the sum s of row k, column k, or (k = 0) of everything
// ScaledStore, AddStore and DoubleStore below are the common stores.
//
// Scratch (doubles of device memory the caller passes, e.g. from the stream-ordered pool):
//   row_sums      none
//   total_sum     total_sum_scratch() = kMaxPartials
//   column_sums   column_sums_scratch(rows, cols) = col_chunks(rows, cols) * cols
// The drivers only launch kernels on `stream` (no allocation, no host synchronization), so a
// scratch buffer can be reused by the next driver on the same stream.
//
// Everything lives in an unnamed namespace: each .cu file gets its own copies of the kernels, as if
// it had written them itself (no template kernel shared across translation units).
#pragma once

#include <cub/block/block_reduce.cuh>

#include "kernels/common.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"

namespace latent::kernels::cuda {
namespace {

// Most blocks of total_sum's first pass, hence the doubles of scratch it writes.
constexpr int kMaxPartials = 1024;
// row_sums: rows up to this long are summed by one warp (eight rows per block), longer ones by a
// whole block.
constexpr index_t kWarpRowMax = 256;
// Column sums: a block is kColTile columns x kColLanes row lanes (threadIdx.x: column, threadIdx.y:
// lane); a warp reads 32 consecutive floats of a row (coalesced).
constexpr int kColTile = 32;
constexpr int kColLanes = 8;

// ---- launch shapes -----------------------------------------------------------------------------

// Blocks for a grid-stride loop over `work` items, `per_block` per block (cuda_launch.cuh).
inline unsigned blocks_for(index_t work, index_t per_block) {
  return grid_for(work, per_block);
}

// Blocks of total_sum's first pass: about 4 terms per thread, between 1 and kMaxPartials.
inline int partial_blocks(index_t count) {
  const index_t b = (count + kThreads * 4 - 1) / (kThreads * 4);
  return static_cast<int>(b < 1 ? 1 : (b < kMaxPartials ? b : kMaxPartials));
}

// Row chunks of column_sums: enough blocks to fill the GPU (about 512), at least 16 rows each.
inline index_t col_chunks(index_t rows, index_t cols) {
  if (cols == 0) return 1;
  const index_t tiles = (cols + kColTile - 1) / kColTile;
  const index_t want = (512 + tiles - 1) / tiles;
  const index_t most = (rows + 15) / 16;
  const index_t c = want < most ? want : most;
  return c < 1 ? 1 : c;
}

// A second chunk policy, by rows alone (the dense layer's bias gradient and the column sum /
// logsumexp ops): ceil(rows / 64) chunks, between 1 and 128.
inline index_t row_chunks(index_t rows) {
  constexpr index_t kMinRowsPerChunk = 64;
  constexpr index_t kMaxChunks = 128;
  const index_t c = (rows + kMinRowsPerChunk - 1) / kMinRowsPerChunk;
  return c < 1 ? 1 : (c > kMaxChunks ? kMaxChunks : c);
}

inline index_t total_sum_scratch() {
  return kMaxPartials;
}

inline index_t column_sums_scratch(index_t rows, index_t cols) {
  return col_chunks(rows, cols) * cols;
}

// ---- fixed-shape sums ------------------------------------------------------------------------

// The sum of v over a group, received by every thread of it: a warp when kTpr == 32 (xor butterfly:
// every lane gets the same bits, since a + b == b + a exactly), else the whole block of kThreads
// (cub::BlockReduce, then broadcast). Every thread of the group must call it.
template <int kTpr>
__device__ __forceinline__ double group_sum(double v) {
  static_assert(kTpr == 32 || kTpr == kThreads, "a warp or a block of kThreads");
  if constexpr (kTpr == 32) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
  } else {
    using Reduce = cub::BlockReduce<double, kThreads>;
    __shared__ typename Reduce::TempStorage tmp;
    __shared__ double total;
    const double s = Reduce(tmp).Sum(v);
    if (threadIdx.x == 0) total = s;
    __syncthreads();
    const double r = total;
    __syncthreads();  // tmp and total are reused by the next call
    return r;
  }
}

// In a (kColTile x kColLanes) block: the sum of acc over the kColLanes thread rows of each column,
// added in lane order starting from 0.0; the result is valid in thread row 0 (0.0 elsewhere). Every
// thread of the block must call it.
__device__ __forceinline__ double sum_col_lanes(double acc) {
  __shared__ double buf[kColLanes][kColTile + 1];
  buf[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  double s = 0.0;
  if (threadIdx.y == 0)
    for (int k = 0; k < kColLanes; ++k) s += buf[k][threadIdx.x];
  __syncthreads();  // buf is reused by a later call
  return s;
}

// ---- kernels -----------------------------------------------------------------------------------

// Per-row sums of term(i, r, c) over an [rows, cols] matrix, then store(r, s). A group of kTpr
// threads per row: lane l adds columns l, l + kTpr, ... in order, then group_sum.
template <int kTpr, class Term, class Store>
__global__ void row_sum_kernel(index_t rows, index_t cols, Term term, Store store) {
  constexpr int kGroups = kThreads / kTpr;
  const int lane = static_cast<int>(threadIdx.x) % kTpr;
  for (index_t r = static_cast<index_t>(blockIdx.x) * kGroups + threadIdx.x / kTpr; r < rows;
       r += static_cast<index_t>(gridDim.x) * kGroups) {
    double acc = 0.0;
    for (index_t c = lane; c < cols; c += kTpr) acc += term(r * cols + c, r, c);
    const double s = group_sum<kTpr>(acc);
    if (lane == 0) store(r, s);
  }
}

// The count of blocks of fused_sum_kernel that have stored their partial: 0 between launches (the
// last block resets it). One per translation unit and device; a device's kernels run one after
// another on its one stream, so no two sums share it at once.
__device__ unsigned long long g_sum_blocks_done = 0;

// Both passes of a flat sum in one launch: each block stores its partial, and the last block to
// finish (counted in g_sum_blocks_done after a fence) adds all partials exactly as
// final_sum_kernel does, so the result has the same bits; store(0, total).
template <class Term, class Store>
__global__ void fused_sum_kernel(double* partials, index_t count, index_t cols, Term term,
                                 Store store) {
  double acc = 0.0;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t r = i / cols;
    acc += term(i, r, i - r * cols);
  }
  const double s = group_sum<kThreads>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
  if (!last_block_done(&g_sum_blocks_done)) return;  // the same for every thread of the block
  double a = 0.0;
  for (int p = static_cast<int>(threadIdx.x); p < static_cast<int>(gridDim.x); p += kThreads)
    a += *reinterpret_cast<volatile double*>(&partials[p]);
  const double total = group_sum<kThreads>(a);
  if (threadIdx.x == 0) {
    store(0, total);
    g_sum_blocks_done = 0ull;
  }
}

// Second pass: one block of kThreads adds the partials (thread t: partials t, t + kThreads, ... in
// order, then the block tree); store(0, total).
template <class Store>
__global__ void final_sum_kernel(const double* __restrict__ partials, int parts, Store store) {
  double acc = 0.0;
  for (int p = static_cast<int>(threadIdx.x); p < parts; p += kThreads) acc += partials[p];
  const double s = group_sum<kThreads>(acc);
  if (threadIdx.x == 0) store(0, s);
}

// Column sums, first pass: block (x, y) sums columns [32x, 32x + 32) over row chunk y (rows
// [y * chunk_rows, (y + 1) * chunk_rows)); lane l adds rows l, l + 8, ... of the chunk in order,
// then the lanes are added in order. partials[y * cols + c] receives the chunk's sum.
template <class Term>
__global__ void col_partial_kernel(double* __restrict__ partials, index_t rows, index_t cols,
                                   index_t chunk_rows, Term term) {
  const index_t c = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * chunk_rows;
  const index_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double acc = 0.0;
  if (c < cols)
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) acc += term(r * cols + c, r, c);
  const double s = sum_col_lanes(acc);
  if (threadIdx.y == 0 && c < cols) partials[static_cast<index_t>(blockIdx.y) * cols + c] = s;
}

// Column sums, second pass: one thread per column adds its `chunks` partials in chunk order;
// store(c, s).
template <class Store>
__global__ void col_final_kernel(const double* __restrict__ partials, index_t chunks, index_t cols,
                                 Store store) {
  for (index_t c = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; c < cols;
       c += static_cast<index_t>(gridDim.x) * kThreads) {
    double s = 0.0;
    for (index_t k = 0; k < chunks; ++k) s += partials[k * cols + c];
    store(c, s);
  }
}

// ---- drivers -----------------------------------------------------------------------------------

// store(r, sum over c of term(i, r, c)) for every row r: a warp per row for rows up to kWarpRowMax
// long, else a block per row. Nothing for rows == 0; a row of zero columns stores 0.
template <class Term, class Store>
void row_sums(index_t rows, index_t cols, Term term, Store store, Stream stream) {
  if (rows == 0) return;
  if (cols <= kWarpRowMax) {
    row_sum_kernel<32>
        <<<blocks_for(rows, kThreads / 32), kThreads, 0, stream>>>(rows, cols, term, store);
    LATENT_LAUNCH_CHECK(row_sum_kernel);
  } else {
    row_sum_kernel<kThreads><<<blocks_for(rows, 1), kThreads, 0, stream>>>(rows, cols, term, store);
    LATENT_LAUNCH_CHECK(row_sum_kernel);
  }
}

// store(0, the sum of all `count` terms) (zero for none), in one launch of two passes:
// partial_blocks(count) partials into scratch, then the last block adds them (fused_sum_kernel).
// scratch: total_sum_scratch() doubles.
template <class Term, class Store>
void total_sum(double* scratch, index_t count, index_t cols, Term term, Store store,
               Stream stream) {
  if (count <= 0) {
    final_sum_kernel<<<1, kThreads, 0, stream>>>(scratch, 0, store);
    LATENT_LAUNCH_CHECK(final_sum_kernel);
    return;
  }
  fused_sum_kernel<<<partial_blocks(count), kThreads, 0, stream>>>(scratch, count, cols, term,
                                                                   store);
  LATENT_LAUNCH_CHECK(fused_sum_kernel);
}

// store(c, sum over r of term(i, r, c)) for every column c, by two passes: col_chunks(rows, cols)
// chunks of rows into scratch, then the chunks in order. Nothing for cols == 0.
// scratch: column_sums_scratch(rows, cols) doubles.
template <class Term, class Store>
void column_sums(double* scratch, index_t rows, index_t cols, Term term, Store store,
                 Stream stream) {
  if (cols == 0) return;
  const index_t chunks = col_chunks(rows, cols);
  const index_t chunk_rows = (rows + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  col_partial_kernel<<<grid, dim3(kColTile, kColLanes), 0, stream>>>(scratch, rows, cols,
                                                                     chunk_rows, term);
  LATENT_LAUNCH_CHECK(col_partial_kernel);
  col_final_kernel<<<blocks_for(cols, kThreads), kThreads, 0, stream>>>(scratch, chunks, cols,
                                                                        store);
  LATENT_LAUNCH_CHECK(col_final_kernel);
}

// ---- stores ------------------------------------------------------------------------------------

struct ScaledStore {  // out[k] = scale * s, rounded to float once
  float* out;
  double scale;
  __device__ void operator()(index_t k, double s) const { out[k] = static_cast<float>(scale * s); }
};

struct AddStore {  // out[k] += s (accumulating gradients)
  float* out;
  __device__ void operator()(index_t k, double s) const { out[k] += static_cast<float>(s); }
};

struct PutStore {  // out[k] (+)= s: a gradient's first write of a pass stores (kernels::put)
  float* out;
  bool add;
  __device__ void operator()(index_t k, double s) const { put(out[k], static_cast<float>(s), add); }
};

struct DoubleStore {  // out[k] = s, kept in double
  double* out;
  __device__ void operator()(index_t k, double s) const { out[k] = s; }
};

}  // namespace
}  // namespace latent::kernels::cuda
