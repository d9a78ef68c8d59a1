#include <cmath>

#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/loss.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

// ---- the group maximum (log-softmax rows) ------------------------------------------------------

struct MaxOp {
  __device__ float operator()(float a, float b) const { return math::max_propagate_nan(a, b); }
};

// The group's maximum; a NaN of any thread makes it NaN (as on the CPU).
template <int kTpr>
__device__ __forceinline__ float group_max(float v) {
  if constexpr (kTpr == 32) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      v = math::max_propagate_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
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

struct BceTerm {
  const float* x;
  const float* t;
  __device__ double operator()(index_t i, index_t, index_t) const {
    return static_cast<double>(math::bce_with_logits(x[i], t[i]));
  }
};

struct BceTermWithGrad {  // the term, and dx written on the way (each element is visited once)
  const float* x;
  const float* t;
  float* dx;
  float scale;
  __device__ double operator()(index_t i, index_t, index_t) const {
    dx[i] = scale * math::bce_with_logits_grad(x[i], t[i]);
    return static_cast<double>(math::bce_with_logits(x[i], t[i]));
  }
};

struct GaussPackedTerm {  // element (r, c) of [N, D]; p [N, 2D] = (mu | lv); dp written on the way
  const float* p;
  const float* t;
  float* dp;
  float scale;
  index_t d;
  __device__ double operator()(index_t i, index_t r, index_t c) const {
    const index_t o = r * 2 * d + c;
    const float mu = p[o], lv = p[o + d];
    if (dp) {
      dp[o] = scale * math::gaussian_nll_dmean(mu, lv, t[i]);
      dp[o + d] = scale * math::gaussian_nll_dlogvar(mu, lv, t[i]);
    }
    return static_cast<double>(math::gaussian_nll(mu, lv, t[i]));
  }
};

struct CategoricalTerm {  // element (r, c) of x [N, D]: one K-way softmax; dp written on the way
  const float* p;
  const float* x;
  float* dp;
  float scale;
  index_t k;
  __device__ double operator()(index_t i, index_t, index_t) const {
    const float* pr = p + i * k;
    const long long level = math::level_of(x[i], k);
    if (level < 0) {  // not a level: the loss and this row's gradient are NaN
      if (dp)
        for (index_t c = 0; c < k; ++c) dp[i * k + c] = NAN;
      return NAN;
    }
    float mx = pr[0];
    for (index_t c = 1; c < k; ++c) mx = math::max_propagate_nan(mx, pr[c]);
    // All -inf, an inf that dominates, or NaN: the CPU's row_logsumexp gives mx itself.
    double lse = static_cast<double>(mx);
    if (isfinite(mx)) {
      double sum = 0.0;
      for (index_t c = 0; c < k; ++c) sum += exp(static_cast<double>(pr[c]) - mx);
      lse += log(sum);
    }
    if (dp) {
      float* g = dp + i * k;
      for (index_t c = 0; c < k; ++c)
        g[c] = scale * static_cast<float>(exp(static_cast<double>(pr[c]) - lse));
      g[level] -= scale;
    }
    return lse - static_cast<double>(pr[level]);
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

struct GaussNllTermWithGrad {  // the term, and dmu written on the way (each element visited once)
  const float* mu;
  const float* lv;
  VarShape vs;
  const float* t;
  float* dmu;
  float scale;
  __device__ double operator()(index_t i, index_t, index_t c) const {
    const float l = lv_at(lv, vs, i, c);
    dmu[i] = scale * math::gaussian_nll_dmean(mu[i], l, t[i]);
    return static_cast<double>(math::gaussian_nll(mu[i], l, t[i]));
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
  for (index_t c = lane; c < k; c += kTpr) mx = math::max_propagate_nan(mx, xr[c]);
  mx = group_max<kTpr>(mx);
  double s = 0.0;
  for (index_t c = lane; c < k; c += kTpr)
    s += exp(static_cast<double>(xr[c]) - static_cast<double>(mx));
  s = group_sum<kTpr>(s);
  return isfinite(mx) ? static_cast<double>(mx) + log(s) : static_cast<double>(mx);
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
  // cross_entropy: the partials, then one value per row.
  const index_t flat = total_sum_scratch() + n;
  const index_t cols = column_sums_scratch(n, d);
  return flat > cols ? flat : cols;
}

void bce_with_logits_forward(float* out, const float* x, const float* t, float scale,
                             bool per_sample, index_t n, index_t d, double* scratch,
                             Stream stream) {
  reduce_loss(out, scale, per_sample, n, d, BceTerm{x, t}, scratch, stream);
}

void bce_with_logits_forward_grad(float* out, float* dx, const float* x, const float* t,
                                  float scale, index_t n, index_t d, double* scratch,
                                  Stream stream) {
  reduce_loss(out, scale, false, n, d, BceTermWithGrad{x, t, dx, scale}, scratch, stream);
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

void gaussian_nll_forward_grad(float* out, float* dmu, const float* mu, const float* lv,
                               VarShape vs, const float* t, float scale, index_t n, index_t d,
                               double* scratch, Stream stream) {
  reduce_loss(out, scale, false, n, d, GaussNllTermWithGrad{mu, lv, vs, t, dmu, scale}, scratch,
              stream);
}

void gaussian_packed_forward_grad(float* out, float* dp, const float* p, const float* t,
                                  float scale, index_t n, index_t d, double* scratch,
                                  Stream stream) {
  reduce_loss(out, scale, false, n, d, GaussPackedTerm{p, t, dp, scale, d}, scratch, stream);
}

void categorical_forward_grad(float* out, float* dp, const float* p, const float* x, float scale,
                              index_t n, index_t d, index_t k, double* scratch, Stream stream) {
  reduce_loss(out, scale, false, n, d, CategoricalTerm{p, x, dp, scale, k}, scratch, stream);
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
  double* values = per_sample ? nullptr : scratch + total_sum_scratch();
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
