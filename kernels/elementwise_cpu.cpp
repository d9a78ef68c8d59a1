#include "kernels/elementwise.h"
#include "kernels/error.h"

namespace latent::kernels {

void check_full_gradients(const void* da, Bcast ba, const void* db, Bcast bb) {
  check((da == nullptr || ba == Bcast::full) && (db == nullptr || bb == Bcast::full),
        "binary_backward",
        "the gradient of a broadcast operand is a sum: make it with the reduction kernels");
}

}  // namespace latent::kernels

namespace latent::kernels::cpu {
namespace {

inline index_t at(Bcast m, index_t r, index_t c, index_t cols) {
  switch (m) {
    case Bcast::full:
      return r * cols + c;
    case Bcast::row:
      return c;
    case Bcast::col:
      return r;
    case Bcast::scalar:
      return 0;
  }
  return 0;
}

// The gradient of a full operand: d[r, c] (+)= grad(r, c).
template <class T, class Grad>
void full_grad(T* d, bool add, index_t rows, index_t cols, Grad grad) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      T& o = d[r * cols + c];
      o = add ? o + grad(r, c) : grad(r, c);
    }
}

}  // namespace

template <class T>
void unary_forward(T* y, const T* x, math::Unary op, T p0, T p1, index_t n, Stream) {
  for (index_t i = 0; i < n; ++i) y[i] = math::unary_forward(op, x[i], p0, p1);
}

template <class T>
void unary_backward(T* dx, bool add, const T* dy, const T* x, const T* y, math::Unary op, T p0,
                    T p1, index_t n, Stream) {
  if (add)
    for (index_t i = 0; i < n; ++i) dx[i] += dy[i] * math::unary_grad(op, x[i], y[i], p0, p1);
  else
    for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * math::unary_grad(op, x[i], y[i], p0, p1);
}

template <class T>
void binary_forward(T* y, const T* a, Bcast ba, const T* b, Bcast bb, math::Binary op, index_t rows,
                    index_t cols, Stream) {
  if (ba == Bcast::full && bb == Bcast::full) {  // the common case, vectorizable
    for (index_t i = 0; i < rows * cols; ++i) y[i] = math::binary_forward(op, a[i], b[i]);
    return;
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c)
      y[r * cols + c] = math::binary_forward(op, a[at(ba, r, c, cols)], b[at(bb, r, c, cols)]);
}

template <class T>
void binary_backward(T* da, bool add_a, T* db, bool add_b, const T* dy, const T* a, Bcast ba,
                     const T* b, Bcast bb, math::Binary op, index_t rows, index_t cols, Stream) {
  check_full_gradients(da, ba, db, bb);
  if (da)
    full_grad(da, add_a, rows, cols, [&](index_t r, index_t c) {
      return dy[r * cols + c] *
             math::binary_grad_a(op, a[at(ba, r, c, cols)], b[at(bb, r, c, cols)]);
    });
  if (db)
    full_grad(db, add_b, rows, cols, [&](index_t r, index_t c) {
      return dy[r * cols + c] *
             math::binary_grad_b(op, a[at(ba, r, c, cols)], b[at(bb, r, c, cols)]);
    });
}

#define LATENT_INSTANTIATE(T)                                                                      \
  template void unary_forward<T>(T*, const T*, math::Unary, T, T, index_t, Stream);                \
  template void unary_backward<T>(T*, bool, const T*, const T*, const T*, math::Unary, T, T,       \
                                  index_t, Stream);                                                \
  template void binary_forward<T>(T*, const T*, Bcast, const T*, Bcast, math::Binary, index_t,     \
                                  index_t, Stream);                                                \
  template void binary_backward<T>(T*, bool, T*, bool, const T*, const T*, Bcast, const T*, Bcast, \
                                   math::Binary, index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
