#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/cpu_vmath.h"
#include "kernels/loss.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {

// Per-sample sums row_sum(i) (double) -> out, per sample or reduced in order of i. Each row is
// summed by one thread, so the result is independent of the thread count.
template <class T, class RowSum>
void reduce_rows(T* out, T scale, bool per_sample, index_t n, index_t d, RowSum row_sum) {
  std::vector<double> s(static_cast<std::size_t>(n));
  parallel_for(n, n * d, [&](index_t i) { s[static_cast<std::size_t>(i)] = row_sum(i); });
  if (per_sample) {
    for (index_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(static_cast<double>(scale) * s[static_cast<std::size_t>(i)]);
    return;
  }
  double total = 0;
  for (double v : s) total += v;
  out[0] = static_cast<T>(static_cast<double>(scale) * total);
}

// Runs body(i, g) for every row i with its gradient factor g = scale * dout[i * stride].
template <class T, class Body>
void for_rows(const T* dout, index_t stride, T scale, index_t n, index_t d, Body body) {
  parallel_for(n, n * d, [&](index_t i) { body(i, scale * dout[i * stride]); });
}

// Row max and logsumexp of x[0..k), in double: the max shift keeps exp from overflowing. A NaN
// anywhere in the row makes it NaN (the max lets it through, wherever it stands).
template <class T>
double row_logsumexp(const T* x, index_t k) {
  if (k == 0) return -INFINITY;
  T mx = x[0];
  for (index_t j = 1; j < k; ++j) mx = math::max_propagate_nan(mx, x[j]);
  if (!std::isfinite(mx)) return static_cast<double>(mx);  // -inf (all), an inf that dominates, NaN
  double s = 0;
  for (index_t j = 0; j < k; ++j) s += std::exp(static_cast<double>(x[j]) - mx);
  return static_cast<double>(mx) + std::log(s);
}

}  // namespace

// ---- bce_with_logits, mse ---------------------------------------------------------------------

namespace {

// The float terms of a row piece x[0, n) with targets t: the loss max(x, 0) - x t + log1p(e) and
// (grad) its derivative sigmoid(x) - t, e = exp(-|x|) through the vector functions
// (cpu_vmath.h); the formulas of scalar_math.h, written as selects.
void bce_chunk(const float* x, const float* t, index_t n, float* loss, float* grad) {
  alignas(64) float e[vmath::kChunk];
  for (index_t j = 0; j < n; ++j) e[j] = -std::fabs(x[j]);
  vmath::exp(e, n);
  if (grad)
    for (index_t j = 0; j < n; ++j)
      grad[j] = (x[j] >= 0.0f ? 1.0f / (1.0f + e[j]) : e[j] / (1.0f + e[j])) - t[j];
  if (loss) {
    vmath::log1p(loss, e, n);
    for (index_t j = 0; j < n; ++j) loss[j] += (x[j] > 0.0f ? x[j] : 0.0f) - x[j] * t[j];
  }
}

// Row i's loss (summed in double in the order of j) and, when dx, scale times its gradient.
template <class T>
double bce_row(const T* x, const T* t, index_t i, index_t d, T* dx, T scale) {
  double s = 0;
  if constexpr (std::is_same_v<T, float>) {
    alignas(64) float l[vmath::kChunk];
    alignas(64) float g[vmath::kChunk];
    for (index_t j0 = i * d; j0 < (i + 1) * d; j0 += vmath::kChunk) {
      const index_t len = std::min(vmath::kChunk, (i + 1) * d - j0);
      bce_chunk(x + j0, t + j0, len, l, dx ? g : nullptr);
      for (index_t j = 0; j < len; ++j) s += l[j];
      if (dx)
        for (index_t j = 0; j < len; ++j) dx[j0 + j] = scale * g[j];
    }
  } else {
    for (index_t j = i * d; j < (i + 1) * d; ++j) {
      s += math::bce_with_logits(x[j], t[j]);
      if (dx) dx[j] = scale * math::bce_with_logits_grad(x[j], t[j]);
    }
  }
  return s;
}

}  // namespace

template <class T>
void bce_with_logits_forward(T* out, const T* x, const T* t, T scale, bool per_sample, index_t n,
                             index_t d, double*, Stream) {
  reduce_rows(out, scale, per_sample, n, d,
              [&](index_t i) { return bce_row<T>(x, t, i, d, nullptr, scale); });
}

template <class T>
void bce_with_logits_forward_grad(T* out, T* dx, const T* x, const T* t, T scale, index_t n,
                                  index_t d, double*, Stream) {
  reduce_rows(out, scale, false, n, d,
              [&](index_t i) { return bce_row<T>(x, t, i, d, dx, scale); });
}

template <class T>
void bce_with_logits_backward(T* dx, T* dt, const T* dout, index_t stride, T scale, const T* x,
                              const T* t, index_t n, index_t d, Stream) {
  for_rows(dout, stride, scale, n, d, [&](index_t i, T g) {
    if (dx) {
      if constexpr (std::is_same_v<T, float>) {
        alignas(64) float gr[vmath::kChunk];
        for (index_t j0 = i * d; j0 < (i + 1) * d; j0 += vmath::kChunk) {
          const index_t len = std::min(vmath::kChunk, (i + 1) * d - j0);
          bce_chunk(x + j0, t + j0, len, nullptr, gr);
          for (index_t j = 0; j < len; ++j) dx[j0 + j] += g * gr[j];
        }
      } else {
        for (index_t j = i * d; j < (i + 1) * d; ++j)
          dx[j] += g * math::bce_with_logits_grad(x[j], t[j]);
      }
    }
    if (dt)
      for (index_t j = i * d; j < (i + 1) * d; ++j) dt[j] -= g * x[j];
  });
}

template <class T>
void mse_forward(T* out, const T* x, const T* t, T scale, bool per_sample, index_t n, index_t d,
                 double*, Stream) {
  reduce_rows(out, scale, per_sample, n, d, [&](index_t i) {
    double s = 0;
    for (index_t j = i * d; j < (i + 1) * d; ++j) s += math::squared_error(x[j], t[j]);
    return s;
  });
}

template <class T>
void mse_backward(T* dx, T* dt, const T* dout, index_t stride, T scale, const T* x, const T* t,
                  index_t n, index_t d, Stream) {
  for_rows(dout, stride, scale, n, d, [&](index_t i, T g) {
    // Separate loops (not one with two updates) so each vectorizes, and so dx and dt may alias.
    if (dx)
      for (index_t j = i * d; j < (i + 1) * d; ++j)
        dx[j] += g * math::squared_error_grad(x[j], t[j]);
    if (dt)
      for (index_t j = i * d; j < (i + 1) * d; ++j)
        dt[j] -= g * math::squared_error_grad(x[j], t[j]);
  });
}

// ---- gaussian_nll -----------------------------------------------------------------------------

namespace {
// Row i's log-variances as lv_row(i)[j * lv_step(vs)]: a step of 0 repeats the scalar.
template <class T>
const T* lv_row(const T* lv, VarShape vs, index_t i, index_t d) {
  return vs == VarShape::full ? lv + i * d : lv;
}
inline index_t lv_step(VarShape vs) {
  return vs == VarShape::scalar ? 0 : 1;
}

// Row sums of the Gaussian NLL 0.5 (log 2 pi + lv + (t - mu)^2 w), w = exp(-lv), over d
// elements whose log-variances are lv[j * step], with (when dmu) scale times d/dmu = (mu - t) w
// and (when dlv) d/dlv = 0.5 (1 - (t - mu)^2 w): the formulas of scalar_math.h, with w computed
// by the vector functions in float (cpu_vmath.h) and by the C library in double.
template <class T>
double gaussian_row(const T* mu, const T* lv, index_t step, const T* t, index_t d, T* dmu, T* dlv,
                    T scale) {
  double s = 0;
  alignas(64) T w[vmath::kChunk];
  for (index_t j0 = 0; j0 < d; j0 += vmath::kChunk) {
    const index_t len = std::min(vmath::kChunk, d - j0);
    for (index_t j = 0; j < len; ++j) w[j] = -lv[(j0 + j) * step];
    if constexpr (std::is_same_v<T, float>) {
      vmath::exp(w, len);
    } else {
      for (index_t j = 0; j < len; ++j) w[j] = std::exp(w[j]);
    }
    for (index_t j = 0; j < len; ++j) {
      const T e = t[j0 + j] - mu[j0 + j];
      s += T(0.5) * (T(1.83787706640934548356) + lv[(j0 + j) * step] + e * e * w[j]);
      if (dmu) dmu[j0 + j] = scale * ((mu[j0 + j] - t[j0 + j]) * w[j]);
      if (dlv) dlv[j0 + j] = scale * (T(0.5) * (T(1) - e * e * w[j]));
    }
  }
  return s;
}
}  // namespace

template <class T>
void gaussian_nll_forward(T* out, const T* mu, const T* lv, VarShape vs, const T* t, T scale,
                          bool per_sample, index_t n, index_t d, double*, Stream) {
  const index_t step = lv_step(vs);
  reduce_rows(out, scale, per_sample, n, d, [&](index_t i) {
    return gaussian_row<T>(mu + i * d, lv_row(lv, vs, i, d), step, t + i * d, d, nullptr, nullptr,
                           scale);
  });
}

template <class T>
void gaussian_nll_forward_grad(T* out, T* dmu, const T* mu, const T* lv, VarShape vs, const T* t,
                               T scale, index_t n, index_t d, double*, Stream) {
  const index_t step = lv_step(vs);
  reduce_rows(out, scale, false, n, d, [&](index_t i) {
    return gaussian_row<T>(mu + i * d, lv_row(lv, vs, i, d), step, t + i * d, d, dmu + i * d,
                           nullptr, scale);
  });
}

template <class T>
void gaussian_packed_forward_grad(T* out, T* dp, const T* p, const T* t, T scale, index_t n,
                                  index_t d, double*, Stream) {
  reduce_rows(out, scale, false, n, d, [&](index_t i) {
    const T* mu = p + i * 2 * d;
    return gaussian_row<T>(mu, mu + d, 1, t + i * d, d, dp ? dp + i * 2 * d : nullptr,
                           dp ? dp + i * 2 * d + d : nullptr, scale);
  });
}

template <class T>
void categorical_forward_grad(T* out, T* dp, const T* p, const T* x, T scale, index_t n, index_t d,
                              index_t k, double*, Stream) {
  reduce_rows(out, scale, false, n, d * k, [&](index_t i) {
    double s = 0;
    for (index_t j = 0; j < d; ++j) {
      const T* pr = p + (i * d + j) * k;
      const long long level = math::level_of(x[i * d + j], k);
      if (level < 0) {  // not a level: the loss and this row's gradient are NaN
        s = NAN;
        if (dp) std::fill(dp + (i * d + j) * k, dp + (i * d + j + 1) * k, static_cast<T>(NAN));
        continue;
      }
      const double lse = row_logsumexp(pr, k);
      s += lse - static_cast<double>(pr[level]);
      if (dp) {
        T* g = dp + (i * d + j) * k;
        for (index_t c = 0; c < k; ++c)
          g[c] = scale * static_cast<T>(std::exp(static_cast<double>(pr[c]) - lse));
        g[level] -= scale;
      }
    }
    return s;
  });
}

template <class T>
void gaussian_nll_backward(T* dmu, T* dlv, T* dt, const T* dout, index_t stride, T scale,
                           const T* mu, const T* lv, VarShape vs, const T* t, index_t n, index_t d,
                           double*, Stream) {
  const index_t step = lv_step(vs);
  for_rows(dout, stride, scale, n, d, [&](index_t i, T g) {
    const index_t o = i * d;
    const T* lvr = lv_row(lv, vs, i, d);
    if (dmu)
      for (index_t j = 0; j < d; ++j)
        dmu[o + j] += g * math::gaussian_nll_dmean(mu[o + j], lvr[j * step], t[o + j]);
    if (dt)
      for (index_t j = 0; j < d; ++j)
        dt[o + j] -= g * math::gaussian_nll_dmean(mu[o + j], lvr[j * step], t[o + j]);
    if (dlv && vs == VarShape::full)
      for (index_t j = 0; j < d; ++j)
        dlv[o + j] += g * math::gaussian_nll_dlogvar(mu[o + j], lvr[j], t[o + j]);
  });
  if (!dlv || vs == VarShape::full) return;

  // A shared log-variance: its gradient sums over the rows (and, for a scalar, the columns) in
  // double, in a fixed order.
  auto term = [&](index_t i, index_t j) {
    return static_cast<double>(scale * dout[i * stride]) *
           static_cast<double>(
               math::gaussian_nll_dlogvar(mu[i * d + j], lv[j * step], t[i * d + j]));
  };
  if (vs == VarShape::row) {
    // Column blocks: each thread owns some columns and walks all rows in order, with a
    // contiguous inner loop.
    constexpr index_t kBlock = 64;
    const index_t blocks = (d + kBlock - 1) / kBlock;
    parallel_for(blocks, n * d, [&](index_t b) {
      const index_t c0 = b * kBlock, c1 = std::min(d, c0 + kBlock);
      double acc[kBlock] = {};
      for (index_t i = 0; i < n; ++i)
        for (index_t j = c0; j < c1; ++j) acc[j - c0] += term(i, j);
      for (index_t j = c0; j < c1; ++j) dlv[j] += static_cast<T>(acc[j - c0]);
    });
    return;
  }
  // Scalar: per-row partial sums, then added in order of rows.
  std::vector<double> part(static_cast<std::size_t>(n));
  parallel_for(n, n * d, [&](index_t i) {
    double s = 0;
    for (index_t j = 0; j < d; ++j) s += term(i, j);
    part[static_cast<std::size_t>(i)] = s;
  });
  double total = 0;
  for (double v : part) total += v;
  dlv[0] += static_cast<T>(total);
}

// ---- log_softmax, cross_entropy ---------------------------------------------------------------

template <class T>
void log_softmax_forward(T* y, const T* x, index_t m, index_t k, Stream) {
  parallel_for(m, m * k, [&](index_t i) {
    const T* xr = x + i * k;
    const double lse = row_logsumexp(xr, k);
    for (index_t j = 0; j < k; ++j) y[i * k + j] = static_cast<T>(xr[j] - lse);
  });
}

template <class T>
void log_softmax_backward(T* dx, const T* dy, const T* y, index_t m, index_t k, Stream) {
  parallel_for(m, m * k, [&](index_t i) {
    const index_t o = i * k;
    double s = 0;
    for (index_t j = 0; j < k; ++j) s += dy[o + j];
    const T st = static_cast<T>(s);
    for (index_t j = 0; j < k; ++j) dx[o + j] += dy[o + j] - std::exp(y[o + j]) * st;
  });
}

template <class T>
index_t cross_entropy_find_bad_target(const T* target, index_t m, index_t k) {
  for (index_t i = 0; i < m; ++i) {
    const T v = target[i];
    // Written so that NaN fails every comparison and is reported.
    if (!(v >= T(0) && v < static_cast<T>(k) && std::floor(v) == v)) return i;
  }
  return -1;
}

template <class T>
void cross_entropy_forward(T* out, T* lse, const T* x, const T* target, T scale, bool per_sample,
                           index_t m, index_t k, double*, Stream) {
  reduce_rows(out, scale, per_sample, m, k, [&](index_t i) {
    const double l = row_logsumexp(x + i * k, k);
    lse[i] = static_cast<T>(l);
    return l - static_cast<double>(x[i * k + static_cast<index_t>(target[i])]);
  });
}

template <class T>
void cross_entropy_backward(T* dx, const T* dout, index_t stride, T scale, const T* x, const T* lse,
                            const T* target, index_t m, index_t k, Stream) {
  for_rows(dout, stride, scale, m, k, [&](index_t i, T g) {
    const index_t o = i * k;
    const T l = lse[i];
    for (index_t j = 0; j < k; ++j) dx[o + j] += g * std::exp(x[o + j] - l);
    dx[o + static_cast<index_t>(target[i])] -= g;
  });
}

#define LATENT_INSTANTIATE(T)                                                                     \
  template void bce_with_logits_forward<T>(T*, const T*, const T*, T, bool, index_t, index_t,     \
                                           double*, Stream);                                      \
  template void bce_with_logits_forward_grad<T>(T*, T*, const T*, const T*, T, index_t, index_t,  \
                                                double*, Stream);                                 \
  template void bce_with_logits_backward<T>(T*, T*, const T*, index_t, T, const T*, const T*,     \
                                            index_t, index_t, Stream);                            \
  template void mse_forward<T>(T*, const T*, const T*, T, bool, index_t, index_t, double*,        \
                               Stream);                                                           \
  template void mse_backward<T>(T*, T*, const T*, index_t, T, const T*, const T*, index_t,        \
                                index_t, Stream);                                                 \
  template void gaussian_nll_forward<T>(T*, const T*, const T*, VarShape, const T*, T, bool,      \
                                        index_t, index_t, double*, Stream);                       \
  template void gaussian_nll_forward_grad<T>(T*, T*, const T*, const T*, VarShape, const T*, T,   \
                                             index_t, index_t, double*, Stream);                  \
  template void gaussian_packed_forward_grad<T>(T*, T*, const T*, const T*, T, index_t, index_t,  \
                                                double*, Stream);                                 \
  template void categorical_forward_grad<T>(T*, T*, const T*, const T*, T, index_t, index_t,      \
                                            index_t, double*, Stream);                            \
  template void gaussian_nll_backward<T>(T*, T*, T*, const T*, index_t, T, const T*, const T*,    \
                                         VarShape, const T*, index_t, index_t, double*, Stream);  \
  template void log_softmax_forward<T>(T*, const T*, index_t, index_t, Stream);                   \
  template void log_softmax_backward<T>(T*, const T*, const T*, index_t, index_t, Stream);        \
  template index_t cross_entropy_find_bad_target<T>(const T*, index_t, index_t);                  \
  template void cross_entropy_forward<T>(T*, T*, const T*, const T*, T, bool, index_t, index_t,   \
                                         double*, Stream);                                        \
  template void cross_entropy_backward<T>(T*, const T*, index_t, T, const T*, const T*, const T*, \
                                          index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
