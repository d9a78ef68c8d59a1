#include <algorithm>
#include <type_traits>

#include "kernels/cpu_parallel.h"
#include "kernels/dense.h"
#include "kernels/gemm.h"

namespace latent::kernels::cpu {
namespace {

// Columns per backward work unit: each thread owns whole columns of db.
constexpr index_t kColBlock = 32;

// act' at element i: from pre when given, else from the output y; neither is read for identity.
template <Act A, class T>
T act_grad_at(T alpha, const T* y, const T* pre, index_t i) {
  if constexpr (A == Act::identity) {
    return T(1);
  } else {
    return pre ? math::act_grad(A, alpha, pre[i]) : math::act_grad_from_output(A, alpha, y[i]);
  }
}

}  // namespace

template <class T>
void dense_forward(T* y, T* pre, const T* x, const T* w, const T* b, ActParams act, index_t n,
                   index_t d, index_t h, Stream) {
  if (n <= 0 || h <= 0) return;
  gemm<T>(false, true, n, h, d, T(1), x, d, w, d, T(0), y, h);
  if (b || act.act != Act::identity || pre) dense_bias_act_forward<T>(y, pre, b, act, n, h);
}

template <class T>
void dense_bias_act_forward(T* y, T* pre, const T* b, ActParams act, index_t n, index_t h, Stream) {
  const T alpha = static_cast<T>(act.alpha);
  with_act(act.act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    parallel_for(n, n * h, [&](index_t r) {
      T* yr = y + r * h;
      if (b)
        for (index_t c = 0; c < h; ++c) yr[c] += b[c];
      if (pre) std::copy(yr, yr + h, pre + r * h);
      if constexpr (A != Act::identity)
        for (index_t c = 0; c < h; ++c) yr[c] = math::act_forward(A, alpha, yr[c]);
    });
  });
}

template <class T>
void dense_backward_act_bias(T* dpre, T* db, bool add_db, double*, const T* dy, const T* y,
                             const T* pre, ActParams act, index_t n, index_t h, Stream) {
  if (!dpre && !db) return;
  const T alpha = static_cast<T>(act.alpha);
  const index_t blocks = (h + kColBlock - 1) / kColBlock;
  with_act(act.act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    parallel_for(blocks, n * h, [&](index_t blk) {
      const index_t c0 = blk * kColBlock;
      const index_t c1 = std::min(h, c0 + kColBlock);
      double sum[kColBlock] = {};
      for (index_t r = 0; r < n; ++r) {
        const index_t o = r * h;
        for (index_t c = c0; c < c1; ++c) {
          const T g = dy[o + c] * act_grad_at<A>(alpha, y, pre, o + c);
          if (dpre) dpre[o + c] = g;
          sum[c - c0] += static_cast<double>(g);
        }
      }
      if (db)
        for (index_t c = c0; c < c1; ++c)
          db[c] = add_db ? db[c] + static_cast<T>(sum[c - c0]) : static_cast<T>(sum[c - c0]);
    });
  });
}

template <class T>
void dense_backward_weight(T* dw, bool add_w, T* db, bool add_db, double*, const T* dz, const T* x,
                           index_t n, index_t d, index_t h, Stream) {
  if (h <= 0) return;
  if (dw && d > 0) gemm<T>(true, false, h, d, n, T(1), dz, h, x, d, add_w ? T(1) : T(0), dw, d);
  if (db)
    dense_backward_act_bias<T>(nullptr, db, add_db, nullptr, dz, nullptr, nullptr,
                               {Act::identity, 0.0f}, n, h);
}

template <class T>
void dense_backward_input(T* dx, bool add_x, T* db_in, bool add_db, double*, const T* dz,
                          const T* w, const T* y_in, const T* pre_in, ActParams act_in, index_t n,
                          index_t d, index_t h, Stream) {
  if (d <= 0) return;
  if (n <= 0) {  // no rows: the bias gradient of nothing is 0
    if (db_in && !add_db) std::fill(db_in, db_in + d, T(0));
    return;
  }
  gemm<T>(false, false, n, d, h, T(1), dz, h, w, d, add_x ? T(1) : T(0), dx, d);
  const bool act = act_in.act != Act::identity;
  if (act || db_in)
    dense_backward_act_bias<T>(act ? dx : nullptr, db_in, add_db, nullptr, dx, y_in, pre_in, act_in,
                               n, d);
}

#define LATENT_INSTANTIATE(T)                                                                      \
  template void dense_forward<T>(T*, T*, const T*, const T*, const T*, ActParams, index_t,         \
                                 index_t, index_t, Stream);                                        \
  template void dense_bias_act_forward<T>(T*, T*, const T*, ActParams, index_t, index_t, Stream);  \
  template void dense_backward_act_bias<T>(T*, T*, bool, double*, const T*, const T*, const T*,    \
                                           ActParams, index_t, index_t, Stream);                   \
  template void dense_backward_weight<T>(T*, bool, T*, bool, double*, const T*, const T*, index_t, \
                                         index_t, index_t, Stream);                                \
  template void dense_backward_input<T>(T*, bool, T*, bool, double*, const T*, const T*, const T*, \
                                        const T*, ActParams, index_t, index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
