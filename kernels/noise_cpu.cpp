#include <cstdint>

#include "kernels/cpu_parallel.h"
#include "kernels/noise.h"
#include "kernels/philox.h"

namespace latent::kernels::cpu {
namespace {

// Calls fn(i, u_i) for every element, one Philox block per four elements (the layout of
// uniform_at), so each block is computed once instead of four times.
// A share of a larger draw (key.shard) takes each element's uniform on its own.
template <class Fn>
void for_each_uniform(philox::Key key, index_t n, Fn&& fn) {
  const std::uint64_t seed = key.seed, offset = key.start();
  if (key.shard.mapped()) {
    parallel_for(n, n, [&](index_t i) {
      fn(i, philox::uniform_at(seed, offset, key.shard.at(static_cast<std::uint64_t>(i))));
    });
  } else {
    parallel_for((n + 3) / 4, n, [&](index_t b) {
      const philox::U32x4 r = philox::block(seed, offset + static_cast<std::uint64_t>(b));
      for (int k = 0; k < 4 && 4 * b + k < n; ++k) fn(4 * b + k, philox::to_uniform(r.v[k]));
    });
  }
  if (key.take.counter) philox::complete_take(key.take);
}

}  // namespace

template <class T>
void gaussian_noise_forward(T* y, const T* x, T sigma, philox::Key key, index_t n, Stream) {
  const std::uint64_t seed = key.seed, offset = key.start();
  if (key.shard.mapped()) {
    parallel_for(n, n, [&](index_t i) {
      const float z = philox::normal_at(seed, offset, key.shard.at(static_cast<std::uint64_t>(i)));
      y[i] = x[i] + sigma * static_cast<T>(z);
    });
    if (key.take.counter) philox::complete_take(key.take);
    return;
  }
  parallel_for((n + 3) / 4, n, [&](index_t b) {
    float z[4];
    philox::to_normal4(philox::block(seed, offset + static_cast<std::uint64_t>(b)), z);
    for (int k = 0; k < 4 && 4 * b + k < n; ++k)
      y[4 * b + k] = x[4 * b + k] + sigma * static_cast<T>(z[k]);
  });
  if (key.take.counter) philox::complete_take(key.take);
}

template <class T>
void masking_noise_forward(T* y, const T* x, double p, philox::Key key, index_t n, Stream) {
  for_each_uniform(key, n, [&](index_t i, float u) { y[i] = u < p ? T(0) : x[i]; });
}

template <class T>
void masking_noise_backward(T* dx, const T* dy, double p, philox::Key key, index_t n, Stream) {
  for_each_uniform(key, n, [&](index_t i, float u) {
    if (!(u < p)) dx[i] += dy[i];
  });
}

template <class T>
void salt_and_pepper_forward(T* y, const T* x, double p, philox::Key key, index_t n, Stream) {
  const double half = 0.5 * p;
  for_each_uniform(key, n, [&](index_t i, float u) {
    y[i] = u < half ? T(0) : u < p ? T(1) : x[i];
  });
}

template <class T>
void bernoulli_forward(T* y, const T* probs, philox::Key key, index_t n, Stream) {
  for_each_uniform(key, n,
                   [&](index_t i, float u) { y[i] = static_cast<T>(u) < probs[i] ? T(1) : T(0); });
}

template <class T>
void categorical_forward(T* y, const T* probs, philox::Key key, index_t m, index_t k, Stream) {
  for_each_uniform(key, m, [&](index_t row, float u) {
    const T* p = probs + row * k;
    double total = 0;
    for (index_t j = 0; j < k; ++j) total += static_cast<double>(p[j]);
    const double target = static_cast<double>(u) * total;
    double cdf = 0;
    index_t level = -1, last_possible = k - 1;
    for (index_t j = 0; j < k; ++j) {
      if (p[j] > T(0)) last_possible = j;
      cdf += static_cast<double>(p[j]);
      if (level < 0 && target < cdf) level = j;
    }
    // Rounding can leave u * total at or above the last partial sum: the draw then belongs to
    // the last level that has any probability, never to an impossible one.
    y[row] = static_cast<T>(level < 0 ? last_possible : level);
  });
}

#define LATENT_NOISE_INSTANTIATE(T)                                                             \
  template void gaussian_noise_forward<T>(T*, const T*, T, philox::Key, index_t, Stream);       \
  template void masking_noise_forward<T>(T*, const T*, double, philox::Key, index_t, Stream);   \
  template void masking_noise_backward<T>(T*, const T*, double, philox::Key, index_t, Stream);  \
  template void salt_and_pepper_forward<T>(T*, const T*, double, philox::Key, index_t, Stream); \
  template void bernoulli_forward<T>(T*, const T*, philox::Key, index_t, Stream);               \
  template void categorical_forward<T>(T*, const T*, philox::Key, index_t, index_t, Stream);
LATENT_NOISE_INSTANTIATE(float)
LATENT_NOISE_INSTANTIATE(double)
#undef LATENT_NOISE_INSTANTIATE

}  // namespace latent::kernels::cpu
