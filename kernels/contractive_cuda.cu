#include <cub/cub.cuh>

#include "kernels/contractive.h"
#include "kernels/cuda_check.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

constexpr int kThreads = 256;
// Blocks of a flat first pass, hence the doubles of scratch it writes.
constexpr int kMaxPartials = 1024;
// Rows up to this long are summed by one warp (eight rows per block), longer ones by a block.
constexpr index_t kWarpRowMax = 256;
// Column sums: a block is 32 columns x 8 row lanes.
constexpr int kColTile = 32;
constexpr int kColLanes = 8;

// Blocks for a grid-stride loop over `work` items, `per_block` per block (at least one).
inline unsigned blocks_for(index_t work, index_t per_block) {
  constexpr index_t kMax = index_t{65535} * 32;
  const index_t b = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : (b < kMax ? b : kMax));
}

inline int partial_blocks(index_t count) {
  const index_t b = (count + kThreads * 4 - 1) / (kThreads * 4);
  return static_cast<int>(b < 1 ? 1 : (b < kMaxPartials ? b : kMaxPartials));
}

// Row chunks of a column sum: enough blocks to fill the GPU (about 512), at least 16 rows each.
// A function of the shape only, so the summation order never changes between runs.
inline index_t col_chunks(index_t rows, index_t cols) {
  if (cols == 0) return 1;
  const index_t tiles = (cols + kColTile - 1) / kColTile;
  const index_t want = (512 + tiles - 1) / tiles;
  const index_t most = (rows + 15) / 16;
  const index_t c = want < most ? want : most;
  return c < 1 ? 1 : c;
}

// ---- fixed-shape reductions ------------------------------------------------------------------
// Every thread of the group (a warp when kTpr == 32, else the whole block) gets the same sum. The
// xor butterfly gives each lane the same bits: a + b == b + a exactly.
template <int kTpr>
__device__ __forceinline__ double group_sum(double v) {
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

// Per-row sums of term(i, r, c) over an [rows, cols] matrix (i = r * cols + c), then store(r, s).
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

// First pass of a flat sum over `count` elements of a matrix with `cols` columns: one partial per
// block, in a grid whose size depends on count only.
template <class Term>
__global__ void partial_sum_kernel(double* __restrict__ partials, index_t count, index_t cols,
                                   Term term) {
  double acc = 0.0;
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t r = i / cols;
    acc += term(i, r, i - r * cols);
  }
  const double s = group_sum<kThreads>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// Second pass: one block adds the partials; store(0, total).
template <class Store>
__global__ void final_sum_kernel(const double* __restrict__ partials, int parts, Store store) {
  double acc = 0.0;
  for (int p = static_cast<int>(threadIdx.x); p < parts; p += kThreads) acc += partials[p];
  const double s = group_sum<kThreads>(acc);
  if (threadIdx.x == 0) store(0, s);
}

// Column sums, first pass: block (x, y) sums columns [32x, 32x + 32) over row chunk y; the 8 row
// lanes are added in order. Consecutive threads read consecutive columns (coalesced).
template <class Term>
__global__ void col_partial_kernel(double* __restrict__ partials, index_t rows, index_t cols,
                                   index_t chunk_rows, Term term) {
  __shared__ double buf[kColLanes][kColTile + 1];
  const index_t c = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * chunk_rows;
  const index_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  double acc = 0.0;
  if (c < cols)
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) acc += term(r * cols + c, r, c);
  buf[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    double s = 0.0;
    for (int k = 0; k < kColLanes; ++k) s += buf[k][threadIdx.x];
    partials[static_cast<index_t>(blockIdx.y) * cols + c] = s;
  }
}

// Column sums, second pass: one thread per column adds its chunks in order; store(c, s).
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

// The sum of all `count` terms (zero for none), handed to store(0, total).
template <class Term, class Store>
void total_sum(double* scratch, index_t count, index_t cols, Term term, Store store,
               Stream stream) {
  const int parts = count > 0 ? partial_blocks(count) : 0;
  if (parts > 0) {
    partial_sum_kernel<<<parts, kThreads, 0, stream>>>(scratch, count, cols, term);
    LATENT_LAUNCH_CHECK(partial_sum_kernel);
  }
  final_sum_kernel<<<1, kThreads, 0, stream>>>(scratch, parts, store);
  LATENT_LAUNCH_CHECK(final_sum_kernel);
}

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

struct ScaledStore {  // out[r] = scale * s, rounded once
  float* out;
  double scale;
  __device__ void operator()(index_t r, double s) const { out[r] = static_cast<float>(scale * s); }
};

struct AddStore {  // out[r] += s
  float* out;
  __device__ void operator()(index_t r, double s) const { out[r] += static_cast<float>(s); }
};

struct DoubleStore {  // out[r] = s, kept in double
  double* out;
  __device__ void operator()(index_t r, double s) const { out[r] = s; }
};

// ---- contractive penalty ---------------------------------------------------------------------

struct SquareTerm {  // w[i]^2, for the row norms c_j = ||w_j||^2
  const float* w;
  __device__ double operator()(index_t i, index_t, index_t) const {
    const double v = static_cast<double>(w[i]);
    return v * v;
  }
};

struct PenaltyTerm {  // a'(pre[n, j])^2 c_j
  const float* pre;
  const double* c;
  Act act;
  float alpha;
  __device__ double operator()(index_t i, index_t, index_t j) const {
    const double a = static_cast<double>(math::act_grad(act, alpha, pre[i]));
    return a * a * c[j];
  }
};

// c[j] = ||w_j||^2 for w [h, d], in double, once per call.
void row_norms(double* c, const float* w, index_t h, index_t d, Stream stream) {
  row_sums(h, d, SquareTerm{w}, DoubleStore{c}, stream);
}

// One pass over pre [N, H] in the column-sum layout (block (x, y): columns [32x, 32x + 32), row
// chunk y; every element visited once): dpre += g 2 a' a'' c_j, and, when partials is non-null,
// the chunk's sum of g a'^2 per column j (the 8 row lanes added in order).
__global__ void contractive_backward_kernel(float* __restrict__ dpre, double* __restrict__ partials,
                                            const float* __restrict__ dout, index_t stride_n,
                                            float scale, const float* __restrict__ pre,
                                            const double* __restrict__ c, Act act, float alpha,
                                            index_t n, index_t h, index_t chunk_rows) {
  __shared__ double buf[kColLanes][kColTile + 1];
  const index_t j = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * chunk_rows;
  const index_t r1 = r0 + chunk_rows < n ? r0 + chunk_rows : n;
  double acc = 0.0;
  if (j < h) {
    const double cj = c[j];
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      const double g = static_cast<double>(scale) * static_cast<double>(dout[r * stride_n]);
      const float p = pre[r * h + j];
      const double a = static_cast<double>(math::act_grad(act, alpha, p));
      if (dpre) {
        const double a2 = static_cast<double>(math::act_grad2(act, alpha, p));
        dpre[r * h + j] += static_cast<float>(2.0 * g * a * a2 * cj);
      }
      acc += g * a * a;
    }
  }
  if (!partials) return;  // uniform over the grid: no thread is left waiting at the barrier
  buf[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < h) {
    double s = 0.0;
    for (int k = 0; k < kColLanes; ++k) s += buf[k][threadIdx.x];
    partials[static_cast<index_t>(blockIdx.y) * h + j] = s;
  }
}

// One block per row j of w: coef_j = the sum of its chunk partials (fixed block order), then
// dw[j, :] += 2 coef_j w[j, :] (coalesced along the row).
__global__ void contractive_dw_kernel(float* __restrict__ dw, const double* __restrict__ partials,
                                      index_t chunks, const float* __restrict__ w, index_t h,
                                      index_t d) {
  for (index_t j = blockIdx.x; j < h; j += gridDim.x) {
    double acc = 0.0;
    for (index_t k = threadIdx.x; k < chunks; k += kThreads) acc += partials[k * h + j];
    const float two_coef = static_cast<float>(2.0 * group_sum<kThreads>(acc));
    for (index_t k = threadIdx.x; k < d; k += kThreads) dw[j * d + k] += two_coef * w[j * d + k];
  }
}

// ---- Jacobian chain blocks -------------------------------------------------------------------

__global__ void jacobian_seed_forward_kernel(float* __restrict__ out, const float* __restrict__ d,
                                             const float* __restrict__ w, index_t z, index_t h,
                                             index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / h;
    out[i] = d[row] * w[(row % z) * h + (i - row * h)];
  }
}

struct SeedDdTerm {  // dout[(n, z), k] w[z, k], summed over k for dd[(n, z)]
  const float* dout;
  const float* w;
  index_t z;
  index_t h;
  __device__ double operator()(index_t i, index_t row, index_t k) const {
    return static_cast<double>(dout[i]) * static_cast<double>(w[(row % z) * h + k]);
  }
};

// dout seen as [N, Z*H]: column q*H + k of row n is dout[(n, q), k], weighted by d[n, q].
struct SeedDwTerm {
  const float* dout;
  const float* d;
  index_t z;
  index_t h;
  __device__ double operator()(index_t i, index_t n, index_t col) const {
    return static_cast<double>(d[n * z + col / h]) * static_cast<double>(dout[i]);
  }
};

__global__ void scale_rows_forward_kernel(float* __restrict__ out, const float* __restrict__ m,
                                          const float* __restrict__ d, index_t g, index_t h,
                                          index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / h;
    out[i] = m[i] * d[(row / g) * h + (i - row * h)];
  }
}

// One thread per element (n, k) of d [N, H]: it owns column k of sample n's G rows, so it updates
// their dm and sums dd[n, k] over them in order (coalesced along k). dm and dd are not restrict:
// scale_row_groups(x, x) with G = 1 makes them one buffer (each element still has one thread).
__global__ void scale_rows_backward_kernel(float* dm, float* dd, const float* __restrict__ dout,
                                           const float* __restrict__ m, const float* __restrict__ d,
                                           index_t n, index_t g, index_t h) {
  const index_t count = n * h;
  for (index_t e = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; e < count;
       e += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t s = e / h;
    const index_t k = e - s * h;
    const float dv = d[e];
    double acc = 0.0;
    for (index_t q = 0; q < g; ++q) {
      const index_t i = (s * g + q) * h + k;
      if (dm) dm[i] += dout[i] * dv;
      if (dd) acc += static_cast<double>(dout[i]) * static_cast<double>(m[i]);
    }
    if (dd) dd[e] += static_cast<float>(acc);
  }
}

}  // namespace

index_t contractive_scratch(index_t n, index_t h) {
  // The row norms, then the partials (flat for the reduced forward, per chunk in the backward).
  const index_t cols = col_chunks(n, h) * h;
  return h + (cols > kMaxPartials ? cols : kMaxPartials);
}

void contractive_forward(float* out, const float* pre, const float* w, Act act, float alpha,
                         float scale, bool per_sample, index_t n, index_t h, index_t d,
                         double* scratch, Stream stream) {
  double* c = scratch;
  row_norms(c, w, h, d, stream);
  const PenaltyTerm term{pre, c, act, alpha};
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, h, term, store, stream);
  else
    total_sum(scratch + h, n * h, h, term, store, stream);
}

void contractive_backward(float* dpre, float* dw, const float* dout, index_t stride_n, float scale,
                          const float* pre, const float* w, Act act, float alpha, index_t n,
                          index_t h, index_t d, double* scratch, Stream stream) {
  if (n * h == 0 || (!dpre && !dw)) return;
  double* c = scratch;
  double* partials = dw ? scratch + h : nullptr;
  row_norms(c, w, h, d, stream);
  const index_t chunks = col_chunks(n, h);
  const index_t chunk_rows = (n + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((h + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  contractive_backward_kernel<<<grid, dim3(kColTile, kColLanes), 0, stream>>>(
      dpre, partials, dout, stride_n, scale, pre, c, act, alpha, n, h, chunk_rows);
  LATENT_LAUNCH_CHECK(contractive_backward_kernel);
  if (!dw || d == 0) return;
  contractive_dw_kernel<<<blocks_for(h, 1), kThreads, 0, stream>>>(dw, partials, chunks, w, h, d);
  LATENT_LAUNCH_CHECK(contractive_dw_kernel);
}

void jacobian_seed_forward(float* out, const float* d, const float* w, index_t n, index_t z,
                           index_t h, Stream stream) {
  const index_t count = n * z * h;
  if (count == 0) return;
  jacobian_seed_forward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(out, d, w, z,
                                                                                     h, count);
  LATENT_LAUNCH_CHECK(jacobian_seed_forward_kernel);
}

index_t jacobian_seed_scratch(index_t n, index_t z, index_t h) {
  return col_chunks(n, z * h) * z * h;
}

void jacobian_seed_backward(float* dd, float* dw, const float* dout, const float* d, const float* w,
                            index_t n, index_t z, index_t h, double* scratch, Stream stream) {
  if (n * z * h == 0) return;
  if (dd) row_sums(n * z, h, SeedDdTerm{dout, w, z, h}, AddStore{dd}, stream);
  if (dw) column_sums(scratch, n, z * h, SeedDwTerm{dout, d, z, h}, AddStore{dw}, stream);
}

void scale_rows_forward(float* out, const float* m, const float* d, index_t n, index_t g, index_t h,
                        Stream stream) {
  const index_t count = n * g * h;
  if (count == 0) return;
  scale_rows_forward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(out, m, d, g, h,
                                                                                  count);
  LATENT_LAUNCH_CHECK(scale_rows_forward_kernel);
}

void scale_rows_backward(float* dm, float* dd, const float* dout, const float* m, const float* d,
                         index_t n, index_t g, index_t h, Stream stream) {
  if (n * h == 0 || (!dm && !dd)) return;
  scale_rows_backward_kernel<<<blocks_for(n * h, kThreads), kThreads, 0, stream>>>(dm, dd, dout, m,
                                                                                   d, n, g, h);
  LATENT_LAUNCH_CHECK(scale_rows_backward_kernel);
}

}  // namespace latent::kernels::cuda
