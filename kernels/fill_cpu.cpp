#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu_parallel.h"
#include "kernels/fill.h"
#include "kernels/philox.h"

namespace latent::kernels::cpu {

template <class T>
void fill(T* y, T value, index_t n, Stream) {
  for (index_t i = 0; i < n; ++i) y[i] = value;
}

template <class T>
void copy(T* y, const T* x, index_t n, Stream) {
  if (n > 0) std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(T));
}

template <class T>
void fill_uniform(T* y, std::uint64_t seed, std::uint64_t offset, T lo, T hi, index_t n, Stream) {
  // Whole blocks of four, then the tail: element i uses block offset + i / 4, word i % 4.
  parallel_for((n + 3) / 4, n, [&](index_t b) {
    const philox::U32x4 r = philox::block(seed, offset + static_cast<std::uint64_t>(b));
    for (int k = 0; k < 4 && 4 * b + k < n; ++k)
      // One rounding (a fused multiply-add), as the GPU, whatever the compiler contracts.
      y[4 * b + k] = std::fma(hi - lo, static_cast<T>(philox::to_uniform(r.v[k])), lo);
  });
}

template <class T>
void fill_normal(T* y, std::uint64_t seed, std::uint64_t offset, T mean, T stddev, index_t n,
                 index_t draws, Stream) {
  // Block b of the stream is block j of draw d: the draws are consecutive in the stream.
  const index_t nb = (n + 3) / 4;
  parallel_for(nb * draws, n * draws, [&](index_t b) {
    const index_t d = b / nb, j = b - d * nb;
    float z[4];
    philox::to_normal4(philox::block(seed, offset + static_cast<std::uint64_t>(b)), z);
    for (int k = 0; k < 4 && 4 * j + k < n; ++k)
      y[d * n + 4 * j + k] = std::fma(stddev, static_cast<T>(z[k]), mean);
  });
}

template <class To, class From>
void cast(To* y, const From* x, index_t n) {
  for (index_t i = 0; i < n; ++i) y[i] = static_cast<To>(x[i]);
}

template void fill<float>(float*, float, index_t, Stream);
template void fill<double>(double*, double, index_t, Stream);
template void copy<float>(float*, const float*, index_t, Stream);
template void copy<double>(double*, const double*, index_t, Stream);
template void fill_uniform<float>(float*, std::uint64_t, std::uint64_t, float, float, index_t,
                                  Stream);
template void fill_uniform<double>(double*, std::uint64_t, std::uint64_t, double, double, index_t,
                                   Stream);
template void fill_normal<float>(float*, std::uint64_t, std::uint64_t, float, float, index_t,
                                 index_t, Stream);
template void fill_normal<double>(double*, std::uint64_t, std::uint64_t, double, double, index_t,
                                  index_t, Stream);
template void cast<float, double>(float*, const double*, index_t);
template void cast<double, float>(double*, const float*, index_t);

}  // namespace latent::kernels::cpu
