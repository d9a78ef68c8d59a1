#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/reduce.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {

// sum_all splits its input into chunks of this fixed size, whatever the thread count, and adds
// the chunks' sums in order: the result is the same on 1 or 64 threads.
constexpr index_t kChunk = index_t{1} << 14;
// Column reductions give each thread a block of columns and walk all rows in order: contiguous
// inner loops, and every column is summed in the same order as in a serial loop.
constexpr index_t kColBlock = 256;

// Sum in double with four interleaved partial sums (a fixed association that still lets the
// additions pipeline and vectorize).
template <class T>
double sum_span(const T* x, index_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  index_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += static_cast<double>(x[i]);
    a1 += static_cast<double>(x[i + 1]);
    a2 += static_cast<double>(x[i + 2]);
    a3 += static_cast<double>(x[i + 3]);
  }
  for (; i < n; ++i) a0 += static_cast<double>(x[i]);
  return (a0 + a1) + (a2 + a3);
}

// Runs body(c0, width) for each block of columns [c0, c0 + width).
template <class Body>
void for_each_col_block(index_t rows, index_t cols, Body body) {
  const index_t blocks = (cols + kColBlock - 1) / kColBlock;
  parallel_for(blocks, blocks > 1 ? rows * cols : 0, [&](index_t b) {
    const index_t c0 = b * kColBlock;
    body(c0, std::min(kColBlock, cols - c0));
  });
}

template <class Body>
void for_each_row(index_t rows, index_t cols, Body body) {
  parallel_for(rows, rows * cols, [&](index_t r) { body(r); });
}

}  // namespace

template <class T>
void sum_all_forward(T* y, const T* x, double scale, index_t n, double*, Stream) {
  const index_t chunks = (n + kChunk - 1) / kChunk;
  double total = 0;
  if (chunks <= 1) {
    total = sum_span(x, n);
  } else {
    std::vector<double> part(static_cast<std::size_t>(chunks));
    parallel_for(chunks, kParallelWork, [&](index_t c) {
      part[static_cast<std::size_t>(c)] =
          sum_span(x + c * kChunk, std::min(kChunk, n - c * kChunk));
    });
    for (double p : part) total += p;
  }
  y[0] = static_cast<T>(scale * total);
}

template <class T>
void sum_all_backward(T* dx, bool add, const T* dy, double scale, index_t n, Stream) {
  const T g = static_cast<T>(scale * static_cast<double>(dy[0]));
  parallel_for(n, n, [&](index_t i) { put(dx[i], g, add); });
}

template <class T>
void sum_dim_forward(T* y, const T* x, double scale, int dim, index_t rows, index_t cols, double*,
                     Stream) {
  if (dim == 1) {
    for_each_row(rows, cols,
                 [&](index_t r) { y[r] = static_cast<T>(scale * sum_span(x + r * cols, cols)); });
    return;
  }
  for_each_col_block(rows, cols, [&](index_t c0, index_t w) {
    double acc[kColBlock] = {};
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols + c0;
      for (index_t c = 0; c < w; ++c) acc[c] += static_cast<double>(xr[c]);
    }
    for (index_t c = 0; c < w; ++c) y[c0 + c] = static_cast<T>(scale * acc[c]);
  });
}

template <class T>
void sum_dim_backward(T* dx, bool add, const T* dy, double scale, int dim, index_t rows,
                      index_t cols, Stream) {
  if (dim == 1) {
    for_each_row(rows, cols, [&](index_t r) {
      const T g = static_cast<T>(scale * static_cast<double>(dy[r]));
      T* dxr = dx + r * cols;
      for (index_t c = 0; c < cols; ++c) put(dxr[c], g, add);
    });
    return;
  }
  std::vector<T> g(static_cast<std::size_t>(cols));
  for (index_t c = 0; c < cols; ++c)
    g[static_cast<std::size_t>(c)] = static_cast<T>(scale * static_cast<double>(dy[c]));
  const T* gp = g.data();
  for_each_row(rows, cols, [&](index_t r) {
    T* dxr = dx + r * cols;
    for (index_t c = 0; c < cols; ++c) put(dxr[c], gp[c], add);
  });
}

template <class T>
void logsumexp_dim_forward(T* y, const T* x, double shift, int dim, index_t rows, index_t cols,
                           double*, Stream) {
  // A non-finite max makes the sum meaningless (inf - inf); logsumexp_finish then ignores it.
  if (dim == 1) {
    for_each_row(rows, cols, [&](index_t r) {
      const T* xr = x + r * cols;
      T m = -INFINITY;
      for (index_t c = 0; c < cols; ++c) m = math::max_propagate_nan(m, xr[c]);
      double s = 0;
      for (index_t c = 0; c < cols; ++c) s += static_cast<double>(std::exp(xr[c] - m));
      y[r] = static_cast<T>(math::logsumexp_finish(static_cast<double>(m), s) + shift);
    });
    return;
  }
  for_each_col_block(rows, cols, [&](index_t c0, index_t w) {
    T m[kColBlock];
    double s[kColBlock] = {};
    std::fill(m, m + w, T(-INFINITY));
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols + c0;
      for (index_t c = 0; c < w; ++c) m[c] = math::max_propagate_nan(m[c], xr[c]);
    }
    for (index_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols + c0;
      for (index_t c = 0; c < w; ++c) s[c] += static_cast<double>(std::exp(xr[c] - m[c]));
    }
    for (index_t c = 0; c < w; ++c)
      y[c0 + c] = static_cast<T>(math::logsumexp_finish(static_cast<double>(m[c]), s[c]) + shift);
  });
}

template <class T>
void logsumexp_dim_backward(T* dx, bool add, const T* dy, const T* x, const T* y, double shift,
                            int dim, index_t rows, index_t cols, Stream) {
  // The softmax weights come from the saved output: lse = y - shift.
  auto lse_of = [&](index_t k) { return static_cast<T>(static_cast<double>(y[k]) - shift); };
  if (dim == 1) {
    for_each_row(rows, cols, [&](index_t r) {
      const T lse = lse_of(r);
      const T g = dy[r];
      const T* xr = x + r * cols;
      T* dxr = dx + r * cols;
      for (index_t c = 0; c < cols; ++c) put(dxr[c], g * math::logsumexp_weight(xr[c], lse), add);
    });
    return;
  }
  std::vector<T> lse(static_cast<std::size_t>(cols));
  for (index_t c = 0; c < cols; ++c) lse[static_cast<std::size_t>(c)] = lse_of(c);
  const T* lp = lse.data();
  for_each_row(rows, cols, [&](index_t r) {
    const T* xr = x + r * cols;
    T* dxr = dx + r * cols;
    for (index_t c = 0; c < cols; ++c)
      put(dxr[c], dy[c] * math::logsumexp_weight(xr[c], lp[c]), add);
  });
}

#define LATENT_INSTANTIATE(T)                                                                     \
  template void sum_all_forward<T>(T*, const T*, double, index_t, double*, Stream);               \
  template void sum_all_backward<T>(T*, bool, const T*, double, index_t, Stream);                 \
  template void sum_dim_forward<T>(T*, const T*, double, int, index_t, index_t, double*, Stream); \
  template void sum_dim_backward<T>(T*, bool, const T*, double, int, index_t, index_t, Stream);   \
  template void logsumexp_dim_forward<T>(T*, const T*, double, int, index_t, index_t, double*,    \
                                         Stream);                                                 \
  template void logsumexp_dim_backward<T>(T*, bool, const T*, const T*, const T*, double, int,    \
                                          index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
