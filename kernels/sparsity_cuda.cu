#include <cub/cub.cuh>

#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/scalar_math.h"
#include "kernels/sparsity.h"

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

struct AbsTerm {
  const float* h;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(fabsf(h[i]));
  }
};

struct ValueTerm {  // h itself, for the column sums
  const float* h;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(h[i]);
  }
};

struct MeanStore {  // rho_hat[j] = s / N
  float* rho_hat;
  double n;
  __device__ void operator()(index_t j, double s) const { rho_hat[j] = static_cast<float>(s / n); }
};

struct KlBernoulliTerm {  // KL(rho || clamp(rho_hat[j])), one term per unit j
  const float* rho_hat;
  float rho;
  __device__ double operator()(index_t j, index_t, index_t) const {
    const float q =
        math::clamp(rho_hat[j], static_cast<float>(kRhoHatMin), static_cast<float>(kRhoHatMax));
    return static_cast<double>(math::kl_bernoulli(rho, q));
  }
};

__global__ void l1_penalty_backward_kernel(float* __restrict__ dh, const float* __restrict__ dout,
                                           index_t stride, float scale, const float* __restrict__ h,
                                           index_t hdim, index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const float g = scale * dout[(i / hdim) * stride];
    dh[i] += g * math::l1_grad(h[i]);
  }
}

// dh[n, j] += dout[0] / N * dKL/dq at rho_hat[j], nothing where the clamp changed rho_hat[j]; the
// per-unit factor is recomputed per element (the same float operations as the CPU's table).
__global__ void kl_sparsity_backward_kernel(float* __restrict__ dh, const float* __restrict__ dout,
                                            const float* __restrict__ rho_hat, float rho, index_t n,
                                            index_t hdim) {
  const index_t count = n * hdim;
  const float g = dout[0] / static_cast<float>(n);
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const float q = rho_hat[i % hdim];
    const bool inside = q >= static_cast<float>(kRhoHatMin) && q <= static_cast<float>(kRhoHatMax);
    dh[i] += inside ? g * math::kl_bernoulli_dq(rho, q) : 0.0f;
  }
}

}  // namespace

index_t sparsity_scratch(index_t n, index_t hdim) {
  const index_t cols = col_chunks(n, hdim) * hdim;
  return cols > kMaxPartials ? cols : kMaxPartials;
}

void l1_penalty_forward(float* out, const float* h, float scale, bool per_sample, index_t n,
                        index_t hdim, double* scratch, Stream stream) {
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, hdim, AbsTerm{h}, store, stream);
  else
    total_sum(scratch, n * hdim, hdim, AbsTerm{h}, store, stream);
}

void l1_penalty_backward(float* dh, const float* dout, index_t stride, float scale, const float* h,
                         index_t n, index_t hdim, Stream stream) {
  const index_t count = n * hdim;
  if (count == 0) return;
  l1_penalty_backward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(
      dh, dout, stride, scale, h, hdim, count);
  LATENT_LAUNCH_CHECK(l1_penalty_backward_kernel);
}

void kl_sparsity_forward(float* out, float* rho_hat, const float* h, float rho, index_t n,
                         index_t hdim, double* scratch, Stream stream) {
  // rho_hat first (column means), then the KL terms summed over the units. The second sum reuses
  // the scratch: the stream runs the kernels in order.
  column_sums(scratch, n, hdim, ValueTerm{h}, MeanStore{rho_hat, static_cast<double>(n)}, stream);
  total_sum(scratch, hdim, hdim, KlBernoulliTerm{rho_hat, rho}, ScaledStore{out, 1.0}, stream);
}

void kl_sparsity_backward(float* dh, const float* dout, const float* rho_hat, float rho, index_t n,
                          index_t hdim, Stream stream) {
  if (n * hdim == 0) return;
  kl_sparsity_backward_kernel<<<blocks_for(n * hdim, kThreads), kThreads, 0, stream>>>(
      dh, dout, rho_hat, rho, n, hdim);
  LATENT_LAUNCH_CHECK(kl_sparsity_backward_kernel);
}

}  // namespace latent::kernels::cuda
