#include <algorithm>
#include <cstring>

#include "kernels/cpu_parallel.h"
#include "kernels/shape.h"

namespace latent::kernels::cpu {
namespace {

// Transposes go through square tiles so that both the reads and the writes stay within a few
// cache lines per tile row.
constexpr index_t kTile = 32;
// tile_backward sums this many columns at a time in a double buffer that stays in L1.
constexpr index_t kColBlock = 256;

// y[c * rows + r] (op)= x[r * cols + c], tile by tile; tiles of y are disjoint, so they can run
// in parallel.
template <bool kAccumulate, class T>
void transpose_tiles(T* y, const T* x, index_t rows, index_t cols) {
  const index_t tr = (rows + kTile - 1) / kTile;
  const index_t tc = (cols + kTile - 1) / kTile;
  parallel_for(tr * tc, rows * cols, [&](index_t t) {
    const index_t r0 = (t / tc) * kTile, c0 = (t % tc) * kTile;
    const index_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
    for (index_t c = c0; c < c1; ++c)
      for (index_t r = r0; r < r1; ++r) {
        if constexpr (kAccumulate)
          y[c * rows + r] += x[r * cols + c];
        else
          y[c * rows + r] = x[r * cols + c];
      }
  });
}

}  // namespace

template <class T>
void copy_2d(T* dst, index_t dst_stride, const T* src, index_t src_stride, index_t rows,
             index_t cols, Stream) {
  if (cols <= 0) return;
  const auto bytes = static_cast<std::size_t>(cols) * sizeof(T);
  parallel_for(rows, rows * cols,
               [&](index_t r) { std::memcpy(dst + r * dst_stride, src + r * src_stride, bytes); });
}

template <class T>
void accumulate_2d(T* dst, index_t dst_stride, const T* src, index_t src_stride, index_t rows,
                   index_t cols, Stream) {
  parallel_for(rows, rows * cols, [&](index_t r) {
    T* d = dst + r * dst_stride;
    const T* s = src + r * src_stride;
    for (index_t c = 0; c < cols; ++c) d[c] += s[c];
  });
}

template <class T>
void transpose_forward(T* y, const T* x, index_t rows, index_t cols, Stream) {
  transpose_tiles<false>(y, x, rows, cols);
}

template <class T>
void transpose_backward(T* dx, const T* dy, index_t rows, index_t cols, Stream) {
  // dy is [cols, rows]: dx[r, c] += dy[c, r] is the transpose of dy accumulated into dx.
  transpose_tiles<true>(dx, dy, cols, rows);
}

template <class T>
void tile_backward(T* dx, bool add, const T* dy, index_t repeats, index_t m, Stream) {
  // Each block of columns is summed over all repeats in order: a fixed association, and the
  // blocks are disjoint, so they can run in parallel.
  const index_t blocks = (m + kColBlock - 1) / kColBlock;
  parallel_for(blocks, blocks > 1 ? repeats * m : 0, [&](index_t b) {
    const index_t c0 = b * kColBlock, w = std::min(kColBlock, m - c0);
    double acc[kColBlock] = {};
    for (index_t k = 0; k < repeats; ++k) {
      const T* s = dy + k * m + c0;
      for (index_t c = 0; c < w; ++c) acc[c] += static_cast<double>(s[c]);
    }
    for (index_t c = 0; c < w; ++c) put(dx[c0 + c], static_cast<T>(acc[c]), add);
  });
}

#define LATENT_INSTANTIATE(T)                                                               \
  template void copy_2d<T>(T*, index_t, const T*, index_t, index_t, index_t, Stream);       \
  template void accumulate_2d<T>(T*, index_t, const T*, index_t, index_t, index_t, Stream); \
  template void transpose_forward<T>(T*, const T*, index_t, index_t, Stream);               \
  template void transpose_backward<T>(T*, const T*, index_t, index_t, Stream);              \
  template void tile_backward<T>(T*, bool, const T*, index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
