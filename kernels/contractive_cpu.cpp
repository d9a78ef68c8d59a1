#include <algorithm>
#include <vector>

#include "kernels/contractive.h"
#include "kernels/cpu_parallel.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {

// c_j = ||w_j||^2 in double, once per call: the penalty and its gradient use it N times each.
template <class T>
std::vector<double> row_norms(const T* w, index_t h, index_t d) {
  std::vector<double> c(static_cast<std::size_t>(h));
  parallel_for(h, h * d, [&](index_t j) {
    const T* wj = w + j * d;
    double s = 0.0;
    for (index_t k = 0; k < d; ++k) s += static_cast<double>(wj[k]) * static_cast<double>(wj[k]);
    c[static_cast<std::size_t>(j)] = s;
  });
  return c;
}

}  // namespace

template <class T>
void contractive_forward(T* out, const T* pre, const T* w, Act act, T alpha, T scale,
                         bool per_sample, index_t n, index_t h, index_t d, double*, Stream) {
  const std::vector<double> c = row_norms(w, h, d);
  std::vector<double> row_sum(static_cast<std::size_t>(n));
  parallel_for(n, n * h, [&](index_t i) {
    const T* p = pre + i * h;
    double s = 0.0;
    for (index_t j = 0; j < h; ++j) {
      const double a = static_cast<double>(math::act_grad(act, alpha, p[j]));
      s += a * a * c[static_cast<std::size_t>(j)];
    }
    row_sum[static_cast<std::size_t>(i)] = s;
  });
  if (per_sample) {
    for (index_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(static_cast<double>(scale) * row_sum[static_cast<std::size_t>(i)]);
    return;
  }
  double total = 0.0;
  for (double s : row_sum) total += s;
  out[0] = static_cast<T>(static_cast<double>(scale) * total);
}

template <class T>
void contractive_backward(T* dpre, bool add_pre, T* dw, bool add_w, const T* dout, index_t stride_n,
                          T scale, const T* pre, const T* w, Act act, T alpha, index_t n, index_t h,
                          index_t d, double*, Stream) {
  const std::vector<double> c = row_norms(w, h, d);
  // weighted[n, j] = g_n a'(pre[n, j])^2: the row-wise pass computes it with dpre (one
  // evaluation of a' per element), the column sums for dw then read it contiguously per row.
  std::vector<double> weighted(dw ? static_cast<std::size_t>(n * h) : 0);
  parallel_for(n, n * h, [&](index_t i) {
    const double g = static_cast<double>(scale) * static_cast<double>(dout[i * stride_n]);
    const T* p = pre + i * h;
    for (index_t j = 0; j < h; ++j) {
      const double a = static_cast<double>(math::act_grad(act, alpha, p[j]));
      if (dpre) {
        const double a2 = static_cast<double>(math::act_grad2(act, alpha, p[j]));
        put(dpre[i * h + j], static_cast<T>(2.0 * g * a * a2 * c[static_cast<std::size_t>(j)]),
            add_pre);
      }
      if (dw) weighted[static_cast<std::size_t>(i * h + j)] = g * a * a;
    }
  });
  if (!dw) return;
  // One thread per row of w, summing over samples in order: independent of the thread count.
  parallel_for(h, h * (n + d), [&](index_t j) {
    double coef = 0.0;
    for (index_t i = 0; i < n; ++i) coef += weighted[static_cast<std::size_t>(i * h + j)];
    const T* wj = w + j * d;
    T* dwj = dw + j * d;
    const T two_coef = static_cast<T>(2.0 * coef);
    for (index_t k = 0; k < d; ++k) put(dwj[k], two_coef * wj[k], add_w);
  });
}

template <class T>
void jacobian_seed_forward(T* out, const T* d, const T* w, index_t n, index_t z, index_t h,
                           Stream) {
  parallel_for(n * z, n * z * h, [&](index_t row) {
    const T s = d[row];
    const T* wz = w + (row % z) * h;
    T* o = out + row * h;
    for (index_t k = 0; k < h; ++k) o[k] = s * wz[k];
  });
}

template <class T>
void jacobian_seed_backward(T* dd, bool add_d, T* dw, bool add_w, const T* dout, const T* d,
                            const T* w, index_t n, index_t z, index_t h, double*, Stream) {
  if (dd) {
    parallel_for(n * z, n * z * h, [&](index_t row) {
      const T* g = dout + row * h;
      const T* wz = w + (row % z) * h;
      double s = 0.0;
      for (index_t k = 0; k < h; ++k) s += static_cast<double>(g[k]) * static_cast<double>(wz[k]);
      put(dd[row], static_cast<T>(s), add_d);
    });
  }
  if (dw) {
    // One thread per latent row z of w, summing its N contributions in order.
    struct Scratch {
      std::vector<double> acc;
    };
    parallel_for_with(
        z, n * z * h, [&] { return Scratch{std::vector<double>(static_cast<std::size_t>(h))}; },
        [&](Scratch& scratch, index_t q) {
          auto& acc = scratch.acc;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (index_t i = 0; i < n; ++i) {
            const double s = static_cast<double>(d[i * z + q]);
            const T* g = dout + (i * z + q) * h;
            for (index_t k = 0; k < h; ++k)
              acc[static_cast<std::size_t>(k)] += s * static_cast<double>(g[k]);
          }
          T* dwq = dw + q * h;
          for (index_t k = 0; k < h; ++k)
            put(dwq[k], static_cast<T>(acc[static_cast<std::size_t>(k)]), add_w);
        });
  }
}

template <class T>
void scale_rows_forward(T* out, const T* m, const T* d, index_t n, index_t g, index_t h, Stream) {
  parallel_for(n * g, n * g * h, [&](index_t row) {
    const T* dn = d + (row / g) * h;
    const T* mr = m + row * h;
    T* o = out + row * h;
    for (index_t k = 0; k < h; ++k) o[k] = mr[k] * dn[k];
  });
}

template <class T>
void scale_rows_backward(T* dm, bool add_m, T* dd, bool add_d, const T* dout, const T* m,
                         const T* d, index_t n, index_t g, index_t h, Stream) {
  // One thread per sample n owns its G rows and its row of dd.
  struct Scratch {
    std::vector<double> acc;
  };
  parallel_for_with(
      n, n * g * h,
      [&] { return Scratch{std::vector<double>(dd ? static_cast<std::size_t>(h) : 0)}; },
      [&](Scratch& scratch, index_t i) {
        auto& acc = scratch.acc;
        const T* dn = d + i * h;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (index_t q = 0; q < g; ++q) {
          const index_t row = i * g + q;
          const T* gr = dout + row * h;
          if (dm) {
            T* dmr = dm + row * h;
            for (index_t k = 0; k < h; ++k) put(dmr[k], gr[k] * dn[k], add_m);
          }
          if (dd) {
            const T* mr = m + row * h;
            for (index_t k = 0; k < h; ++k)
              acc[static_cast<std::size_t>(k)] +=
                  static_cast<double>(gr[k]) * static_cast<double>(mr[k]);
          }
        }
        if (dd) {
          T* ddn = dd + i * h;
          for (index_t k = 0; k < h; ++k)
            put(ddn[k], static_cast<T>(acc[static_cast<std::size_t>(k)]), add_d);
        }
      });
}

#define LATENT_INSTANTIATE(T)                                                                     \
  template void contractive_forward<T>(T*, const T*, const T*, Act, T, T, bool, index_t, index_t, \
                                       index_t, double*, Stream);                                 \
  template void contractive_backward<T>(T*, bool, T*, bool, const T*, index_t, T, const T*,       \
                                        const T*, Act, T, index_t, index_t, index_t, double*,     \
                                        Stream);                                                  \
  template void jacobian_seed_forward<T>(T*, const T*, const T*, index_t, index_t, index_t,       \
                                         Stream);                                                 \
  template void jacobian_seed_backward<T>(T*, bool, T*, bool, const T*, const T*, const T*,       \
                                          index_t, index_t, index_t, double*, Stream);            \
  template void scale_rows_forward<T>(T*, const T*, const T*, index_t, index_t, index_t, Stream); \
  template void scale_rows_backward<T>(T*, bool, T*, bool, const T*, const T*, const T*, index_t, \
                                       index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
