#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/optim.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {
// sum_squares works on fixed chunks, so its rounding is the same on any number of threads.
constexpr index_t kChunk = index_t{1} << 14;
constexpr int kLanes = 8;

template <class T>
double chunk_sum_squares(const T* x, index_t n) {
  // Independent partial sums per lane: a fixed order that the compiler can still vectorize.
  double lane[kLanes] = {};
  index_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) {
      const double v = static_cast<double>(x[i + k]);
      lane[k] += v * v;
    }
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    lane[0] += v * v;
  }
  double s = 0;
  for (double l : lane) s += l;
  return s;
}
}  // namespace

void optim_begin_step(double* state, LrSpec schedule, double beta1, double beta2, ParamMask mask,
                      index_t count, Stream) {
  const double lr = lr_at(schedule, static_cast<std::int64_t>(state[0]) + schedule.offset);
  state[0] += 1;
  state[1] = lr;
  for (index_t i = 0; i < count; ++i) {
    if (!mask.has(i)) continue;
    double* s = state + 2 + 3 * i;
    s[0] += 1;
    // In double: 1 - beta2^t is tiny in early steps.
    s[1] = lr / (1.0 - std::pow(beta1, s[0]));
    s[2] = 1.0 / std::sqrt(1.0 - std::pow(beta2, s[0]));
  }
}

template <class T>
void sgd_step(T* p, T* buf, const T* g, index_t n, SgdStep hp, const double* state, index_t param,
              Stream) {
  const T lr = T(state[1]), mu = T(hp.momentum), damp = T(hp.dampening), wd = T(hp.weight_decay);
  const bool nesterov = hp.nesterov, first = state[2 + 3 * param] == 1.0;
  parallel_for(n, n, [&](index_t i) {
    math::sgd_update(p[i], buf ? buf + i : nullptr, g[i], lr, mu, damp, wd, nesterov, first);
  });
}

template <class T>
void adam_step(T* p, T* m, T* v, const T* g, index_t n, AdamStep hp, const double* state,
               index_t param, Stream) {
  const T lr = T(state[1]), b1 = T(hp.beta1), b2 = T(hp.beta2), eps = T(hp.eps);
  const T wd = T(hp.weight_decay);
  const T step_size = T(state[3 + 3 * param]);
  const T inv_sqrt_bc2 = T(state[4 + 3 * param]);
  const bool decoupled = hp.decoupled;
  // Chunks of unaliased arrays, so the update vectorizes (its square root and division are
  // exactly rounded in vector form too: the same bits as one element at a time).
  constexpr index_t kAdamChunk = 4096;
  const index_t chunks = (n + kAdamChunk - 1) / kAdamChunk;
  parallel_for(chunks, n, [&](index_t c) {
    const index_t i0 = c * kAdamChunk;
    const index_t len = std::min(kAdamChunk, n - i0);
    T* __restrict pc = p + i0;
    T* __restrict mc = m + i0;
    T* __restrict vc = v + i0;
    const T* __restrict gc = g + i0;
#pragma omp simd
    for (index_t i = 0; i < len; ++i)
      math::adam_update(pc[i], mc[i], vc[i], gc[i], lr, b1, b2, eps, wd, decoupled, step_size,
                        inv_sqrt_bc2);
  });
}

template <class T>
double sum_squares(const T* x, index_t n) {
  if (n <= kChunk) return chunk_sum_squares(x, n);
  const index_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
  parallel_for(chunks, n, [&](index_t c) {
    const index_t start = c * kChunk;
    const index_t len = start + kChunk <= n ? kChunk : n - start;
    partial[static_cast<std::size_t>(c)] = chunk_sum_squares(x + start, len);
  });
  double s = 0;
  for (double v : partial) s += v;
  return s;
}

template <class T>
void clip_accumulate(double* clip, const T* x, index_t n, bool first, Stream) {
  clip[0] = (first ? 0.0 : clip[0]) + sum_squares(x, n);
}

void clip_factor(double* clip, double max_norm, Stream) {
  const double norm = std::sqrt(clip[0]);
  clip[1] = norm;
  clip[2] = !std::isfinite(norm) ? 0.0 : norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

template <class T>
void clip_scale(T* x, const double* clip, index_t n, Stream) {
  const double f = clip[2];
  if (f == 1.0) return;
  const T ft = T(f);
  parallel_for(n, n, [&](index_t i) { x[i] = f == 0.0 ? T(0) : x[i] * ft; });
}

#define LATENT_INSTANTIATE(T)                                                                    \
  template void sgd_step<T>(T*, T*, const T*, index_t, SgdStep, const double*, index_t, Stream); \
  template void adam_step<T>(T*, T*, T*, const T*, index_t, AdamStep, const double*, index_t,    \
                             Stream);                                                            \
  template double sum_squares<T>(const T*, index_t);                                             \
  template void clip_accumulate<T>(double*, const T*, index_t, bool, Stream);                    \
  template void clip_scale<T>(T*, const double*, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
