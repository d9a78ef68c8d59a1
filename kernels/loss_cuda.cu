#include <cub/cub.cuh>

#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/loss.h"
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

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The group's maximum, NaN ignored (a NaN still reaches the sum of exponentials).
template <int kTpr>
__device__ __forceinline__ float group_max(float v) {
  if constexpr (kTpr == 32) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  } else {
    using Reduce = cub::BlockReduce<float, kThreads>;
    __shared__ typename Reduce::TempStorage tmp;
    __shared__ float total;
    const float s = Reduce(tmp).Reduce(v, MaxOp());
    if (threadIdx.x == 0) total = s;
    __syncthreads();
    const float r = total;
    __syncthreads();
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

// body(i, c, g) for every element i = r * d + c of an [n, d] matrix, g = scale * dout[r * stride].
template <class Body>
__global__ void scaled_rows_kernel(index_t count, index_t d, const float* __restrict__ dout,
                                   index_t stride, float scale, Body body) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t r = i / d;
    body(i, i - r * d, scale * dout[r * stride]);
  }
}

template <class Body>
void scaled_rows(index_t n, index_t d, const float* dout, index_t stride, float scale, Body body,
                 Stream stream) {
  const index_t count = n * d;
  if (count == 0) return;
  scaled_rows_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(count, d, dout, stride,
                                                                           scale, body);
  LATENT_LAUNCH_CHECK(scaled_rows_kernel);
}

// ---- element terms and stores ----------------------------------------------------------------

struct ScaledStore {  // out[r] = scale * s, rounded once
  float* out;
  double scale;
  __device__ void operator()(index_t r, double s) const { out[r] = static_cast<float>(scale * s); }
};

struct AddStore {  // out[r] += s
  float* out;
  __device__ void operator()(index_t r, double s) const { out[r] += static_cast<float>(s); }
};

struct BceTerm {
  const float* x;
  const float* t;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(math::bce_with_logits(x[i], t[i]));
  }
};

struct MseTerm {
  const float* x;
  const float* t;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(math::squared_error(x[i], t[i]));
  }
};

// The log-variance of element i (column c) under each layout.
__device__ __forceinline__ float lv_at(const float* lv, VarShape vs, index_t i, index_t c) {
  return vs == VarShape::full ? lv[i] : (vs == VarShape::row ? lv[c] : lv[0]);
}

struct GaussNllTerm {
  const float* mu;
  const float* lv;
  VarShape vs;
  const float* t;
  __device__ double operator()(index_t i, index_t, index_t c) const {
    return static_cast<double>(math::gaussian_nll(mu[i], lv_at(lv, vs, i, c), t[i]));
  }
};

// The gradient of a shared log-variance at element i (row r): g_r * d nll / d lv.
struct GaussDlvTerm {
  const float* dout;
  index_t stride;
  float scale;
  const float* mu;
  const float* lv;
  VarShape vs;
  const float* t;
  __device__ double operator()(index_t i, index_t r, index_t c) const {
    return static_cast<double>(scale * dout[r * stride]) *
           static_cast<double>(math::gaussian_nll_dlogvar(mu[i], lv_at(lv, vs, i, c), t[i]));
  }
};

struct ValueTerm {  // a stored double, one per row
  const double* v;
  __device__ double operator()(index_t i, index_t, index_t) const { return v[i]; }
};

// Backward bodies: body(i, c, g) updates element i (column c) with its row's factor g.
struct BceGrad {  // dx and dt may alias: one thread updates both, dx first, as the CPU does
  float* dx;
  float* dt;
  const float* x;
  const float* t;
  __device__ void operator()(index_t i, index_t, float g) const {
    if (dx) dx[i] += g * math::bce_with_logits_grad(x[i], t[i]);
    if (dt) dt[i] -= g * x[i];
  }
};

struct MseGrad {
  float* dx;
  float* dt;
  const float* x;
  const float* t;
  __device__ void operator()(index_t i, index_t, float g) const {
    if (dx) dx[i] += g * math::squared_error_grad(x[i], t[i]);
    if (dt) dt[i] -= g * math::squared_error_grad(x[i], t[i]);
  }
};

struct GaussNllGrad {  // dlv only for the full layout (null otherwise)
  float* dmu;
  float* dlv;
  float* dt;
  const float* mu;
  const float* lv;
  VarShape vs;
  const float* t;
  __device__ void operator()(index_t i, index_t c, float g) const {
    const float l = lv_at(lv, vs, i, c);
    if (dmu) dmu[i] += g * math::gaussian_nll_dmean(mu[i], l, t[i]);
    if (dt) dt[i] -= g * math::gaussian_nll_dmean(mu[i], l, t[i]);
    if (dlv) dlv[i] += g * math::gaussian_nll_dlogvar(mu[i], l, t[i]);
  }
};

// Per-sample values to out [N], or their scaled sum to out [1].
template <class Term>
void reduce_loss(float* out, float scale, bool per_sample, index_t n, index_t d, Term term,
                 double* scratch, Stream stream) {
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, d, term, store, stream);
  else
    total_sum(scratch, n * d, d, term, store, stream);
}

// ---- log_softmax, cross_entropy: one group (warp or block) per row ---------------------------

// True when v is a class index in [0, k); NaN fails every comparison.
__device__ __forceinline__ bool valid_target(float v, index_t k) {
  return v >= 0.0f && v < static_cast<float>(k) && floorf(v) == v;
}

// logsumexp of row xr [k] in double, as the CPU computes it: a non-finite max is the answer.
// Every thread of the group must call it (it synchronizes the group).
template <int kTpr>
__device__ __forceinline__ double row_logsumexp(const float* xr, index_t k, int lane) {
  float mx = -INFINITY;
  for (index_t c = lane; c < k; c += kTpr) mx = fmaxf(mx, xr[c]);
  mx = group_max<kTpr>(mx);
  double s = 0.0;
  for (index_t c = lane; c < k; c += kTpr)
    s += exp(static_cast<double>(xr[c]) - static_cast<double>(mx));
  s = group_sum<kTpr>(s);
  return isinf(mx) ? static_cast<double>(mx) : static_cast<double>(mx) + log(s);
}

template <int kTpr>
__global__ void log_softmax_forward_kernel(float* __restrict__ y, const float* __restrict__ x,
                                           index_t m, index_t k) {
  constexpr int kGroups = kThreads / kTpr;
  const int lane = static_cast<int>(threadIdx.x) % kTpr;
  for (index_t r = static_cast<index_t>(blockIdx.x) * kGroups + threadIdx.x / kTpr; r < m;
       r += static_cast<index_t>(gridDim.x) * kGroups) {
    const float* xr = x + r * k;
    const double lse = row_logsumexp<kTpr>(xr, k, lane);
    for (index_t c = lane; c < k; c += kTpr)
      y[r * k + c] = static_cast<float>(static_cast<double>(xr[c]) - lse);
  }
}

template <int kTpr>
__global__ void log_softmax_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                            const float* __restrict__ y, index_t m, index_t k) {
  constexpr int kGroups = kThreads / kTpr;
  const int lane = static_cast<int>(threadIdx.x) % kTpr;
  for (index_t r = static_cast<index_t>(blockIdx.x) * kGroups + threadIdx.x / kTpr; r < m;
       r += static_cast<index_t>(gridDim.x) * kGroups) {
    const index_t o = r * k;
    double s = 0.0;
    for (index_t c = lane; c < k; c += kTpr) s += static_cast<double>(dy[o + c]);
    const float st = static_cast<float>(group_sum<kTpr>(s));
    for (index_t c = lane; c < k; c += kTpr) dx[o + c] += dy[o + c] - expf(y[o + c]) * st;
  }
}

// Writes lse[r] and the row's loss: scaled to out[r] (per sample) or unscaled to values[r].
template <int kTpr>
__global__ void cross_entropy_forward_kernel(float* __restrict__ out, float* __restrict__ lse,
                                             double* __restrict__ values,
                                             const float* __restrict__ x,
                                             const float* __restrict__ target, double scale,
                                             index_t m, index_t k) {
  constexpr int kGroups = kThreads / kTpr;
  const int lane = static_cast<int>(threadIdx.x) % kTpr;
  for (index_t r = static_cast<index_t>(blockIdx.x) * kGroups + threadIdx.x / kTpr; r < m;
       r += static_cast<index_t>(gridDim.x) * kGroups) {
    const float* xr = x + r * k;
    const double l = row_logsumexp<kTpr>(xr, k, lane);
    if (lane == 0) {
      const float tv = target[r];
      const bool ok = valid_target(tv, k);
      const double v = ok ? l - static_cast<double>(xr[static_cast<index_t>(tv)]) : NAN;
      lse[r] = ok ? static_cast<float>(l) : NAN;
      if (values)
        values[r] = v;
      else
        out[r] = static_cast<float>(scale * v);
    }
  }
}

struct CrossEntropyGrad {
  float* dx;
  const float* x;
  const float* lse;
  const float* target;
  index_t k;
  __device__ void operator()(index_t i, index_t c, float g) const {
    const index_t r = i / k;
    // The CPU's two steps in its order: += g softmax, then -= g at the target. An invalid target
    // has lse NaN, so its whole row turns NaN and is never used as an index.
    float v = dx[i] + g * expf(x[i] - lse[r]);
    const float tv = target[r];
    if (valid_target(tv, k) && static_cast<index_t>(tv) == c) v -= g;
    dx[i] = v;
  }
};

template <class Kernel32, class KernelBlock, class... Args>
void launch_rows(Kernel32 warp_kernel, KernelBlock block_kernel, index_t m, index_t k,
                 Stream stream, Args... args) {
  if (m == 0) return;
  if (k <= kWarpRowMax) {
    warp_kernel<<<blocks_for(m, kThreads / 32), kThreads, 0, stream>>>(args..., m, k);
    LATENT_LAUNCH_CHECK(warp_kernel);
  } else {
    block_kernel<<<blocks_for(m, 1), kThreads, 0, stream>>>(args..., m, k);
    LATENT_LAUNCH_CHECK(block_kernel);
  }
}

}  // namespace

index_t loss_scratch(index_t n, index_t d) {
  const index_t flat = kMaxPartials + n;  // cross_entropy: partials, then one value per row
  const index_t cols = col_chunks(n, d) * d;
  return flat > cols ? flat : cols;
}

void bce_with_logits_forward(float* out, const float* x, const float* t, float scale,
                             bool per_sample, index_t n, index_t d, double* scratch,
                             Stream stream) {
  reduce_loss(out, scale, per_sample, n, d, BceTerm{x, t}, scratch, stream);
}

void bce_with_logits_backward(float* dx, float* dt, const float* dout, index_t stride, float scale,
                              const float* x, const float* t, index_t n, index_t d, Stream stream) {
  scaled_rows(n, d, dout, stride, scale, BceGrad{dx, dt, x, t}, stream);
}

void mse_forward(float* out, const float* x, const float* t, float scale, bool per_sample,
                 index_t n, index_t d, double* scratch, Stream stream) {
  reduce_loss(out, scale, per_sample, n, d, MseTerm{x, t}, scratch, stream);
}

void mse_backward(float* dx, float* dt, const float* dout, index_t stride, float scale,
                  const float* x, const float* t, index_t n, index_t d, Stream stream) {
  scaled_rows(n, d, dout, stride, scale, MseGrad{dx, dt, x, t}, stream);
}

void gaussian_nll_forward(float* out, const float* mu, const float* lv, VarShape vs, const float* t,
                          float scale, bool per_sample, index_t n, index_t d, double* scratch,
                          Stream stream) {
  reduce_loss(out, scale, per_sample, n, d, GaussNllTerm{mu, lv, vs, t}, scratch, stream);
}

void gaussian_nll_backward(float* dmu, float* dlv, float* dt, const float* dout, index_t stride,
                           float scale, const float* mu, const float* lv, VarShape vs,
                           const float* t, index_t n, index_t d, double* scratch, Stream stream) {
  float* dlv_full = vs == VarShape::full ? dlv : nullptr;
  if (dmu || dt || dlv_full)
    scaled_rows(n, d, dout, stride, scale, GaussNllGrad{dmu, dlv_full, dt, mu, lv, vs, t}, stream);
  if (!dlv || vs == VarShape::full || n * d == 0) return;
  // A shared log-variance: its gradient sums over the rows (and, for a scalar, the columns).
  const GaussDlvTerm term{dout, stride, scale, mu, lv, vs, t};
  if (vs == VarShape::row)
    column_sums(scratch, n, d, term, AddStore{dlv}, stream);
  else
    total_sum(scratch, n * d, d, term, AddStore{dlv}, stream);
}

void log_softmax_forward(float* y, const float* x, index_t m, index_t k, Stream stream) {
  launch_rows(log_softmax_forward_kernel<32>, log_softmax_forward_kernel<kThreads>, m, k, stream, y,
              x);
}

void log_softmax_backward(float* dx, const float* dy, const float* y, index_t m, index_t k,
                          Stream stream) {
  launch_rows(log_softmax_backward_kernel<32>, log_softmax_backward_kernel<kThreads>, m, k, stream,
              dx, dy, y);
}

void cross_entropy_forward(float* out, float* lse, const float* x, const float* target, float scale,
                           bool per_sample, index_t m, index_t k, double* scratch, Stream stream) {
  // Reduced: the row values go after the partials, then a flat two-pass sum over them.
  double* values = per_sample ? nullptr : scratch + kMaxPartials;
  launch_rows(cross_entropy_forward_kernel<32>, cross_entropy_forward_kernel<kThreads>, m, k,
              stream, out, lse, values, x, target, static_cast<double>(scale));
  if (!per_sample)
    total_sum(scratch, m, 1, ValueTerm{values}, ScaledStore{out, static_cast<double>(scale)},
              stream);
}

void cross_entropy_backward(float* dx, const float* dout, index_t stride, float scale,
                            const float* x, const float* lse, const float* target, index_t m,
                            index_t k, Stream stream) {
  scaled_rows(m, k, dout, stride, scale, CrossEntropyGrad{dx, x, lse, target, k}, stream);
}

}  // namespace latent::kernels::cuda
