#include "kernels/activation.h"
#include "kernels/cpu_parallel.h"

#include <type_traits>

#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {

template <class F>
void for_each_index(index_t n, F f) {
  parallel_for(n, n, [&](index_t i) { f(i); });
}

}  // namespace

template <class T>
void activation_forward(T* y, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  with_act(p.act, [&](auto a) {
    for_each_index(n, [&](index_t i) { y[i] = math::act_forward(a.value, alpha, x[i]); });
  });
}

template <class T>
void activation_backward(T* dx, bool add, const T* dy, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  with_act(p.act, [&](auto a) {
    for_each_index(
        n, [&](index_t i) { put(dx[i], dy[i] * math::act_grad(a.value, alpha, x[i]), add); });
  });
}

template <class T>
void activation_grad_forward(T* g, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  with_act(p.act, [&](auto a) {
    for_each_index(n, [&](index_t i) { g[i] = math::act_grad(a.value, alpha, x[i]); });
  });
}

template <class T>
void activation_grad_backward(T* dx, bool add, const T* dy, const T* x, ActParams p, index_t n,
                              Stream) {
  const T alpha = static_cast<T>(p.alpha);
  with_act(p.act, [&](auto a) {
    for_each_index(
        n, [&](index_t i) { put(dx[i], dy[i] * math::act_grad2(a.value, alpha, x[i]), add); });
  });
}

#define LATENT_INSTANTIATE(T)                                                                     \
  template void activation_forward<T>(T*, const T*, ActParams, index_t, Stream);                  \
  template void activation_backward<T>(T*, bool, const T*, const T*, ActParams, index_t, Stream); \
  template void activation_grad_forward<T>(T*, const T*, ActParams, index_t, Stream);             \
  template void activation_grad_backward<T>(T*, bool, const T*, const T*, ActParams, index_t,     \
                                            Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
