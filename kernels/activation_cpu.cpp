#include "kernels/activation.h"
#include "kernels/cpu_parallel.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu_vmath.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cpu {
namespace {

template <class F>
void for_each_index(index_t n, F f) {
  parallel_for(n, n, [&](index_t i) { f(i); });
}

bool transcendental(Act a) {
  return a == Act::sigmoid || a == Act::tanh || a == Act::softplus || a == Act::elu ||
         a == Act::gelu;
}

// The float forms of the transcendental activations, in chunks: the transcendental part through
// the vector functions (cpu_vmath.h), the rest in loops the compiler vectorizes. The formulas are
// those of scalar_math.h (the same branches, written as selects).
//   value: act(x); grad: act'(x). Both from a chunk x[0, n) into out[0, n).
void act_chunk(Act a, float alpha, const float* x, float* out, index_t n, bool grad) {
  alignas(64) float t[vmath::kChunk];
  alignas(64) float u[vmath::kChunk];
  switch (a) {
    case Act::sigmoid:
    case Act::softplus: {
      // e = exp(-|x|); sigmoid = 1 / (1 + e) for x >= 0, e / (1 + e) below; softplus = max(x, 0)
      // + log1p(e), and its derivative is the sigmoid.
      for (index_t i = 0; i < n; ++i) t[i] = -std::fabs(x[i]);
      vmath::exp(t, n);
      if (a == Act::softplus && !grad) {
        vmath::log1p(u, t, n);
        for (index_t i = 0; i < n; ++i) out[i] = (x[i] > 0.0f ? x[i] : 0.0f) + u[i];
        return;
      }
      for (index_t i = 0; i < n; ++i) {
        const float s = x[i] >= 0.0f ? 1.0f / (1.0f + t[i]) : t[i] / (1.0f + t[i]);
        out[i] = a == Act::sigmoid && grad ? s * (1.0f - s) : s;
      }
      return;
    }
    case Act::tanh:
      vmath::tanh(t, x, n);
      for (index_t i = 0; i < n; ++i) out[i] = grad ? 1.0f - t[i] * t[i] : t[i];
      return;
    case Act::elu:
      // alpha expm1(x) below 0 (alpha exp(x) for the derivative); x itself above.
      for (index_t i = 0; i < n; ++i) t[i] = x[i] > 0.0f ? 0.0f : x[i];
      if (grad) {
        vmath::exp(t, n);
        for (index_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? 1.0f : alpha * t[i];
      } else {
        vmath::expm1(t, n);
        for (index_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : alpha * t[i];
      }
      return;
    case Act::gelu:
      // Phi(x) = erfc(-x / sqrt 2) / 2; the derivative adds x phi(x), phi(x) = exp(-x^2/2) /
      // sqrt(2 pi).
      for (index_t i = 0; i < n; ++i) t[i] = -x[i] * 0.70710678118654752440f;
      vmath::erfc(t, n);
      if (!grad) {
        for (index_t i = 0; i < n; ++i) out[i] = x[i] * (0.5f * t[i]);
        return;
      }
      for (index_t i = 0; i < n; ++i) u[i] = -0.5f * x[i] * x[i];
      vmath::exp(u, n);
      for (index_t i = 0; i < n; ++i)
        out[i] = 0.5f * t[i] + x[i] * (0.39894228040143267794f * u[i]);
      return;
    default:
      for (index_t i = 0; i < n; ++i)
        out[i] = grad ? math::act_grad(a, alpha, x[i]) : math::act_forward(a, alpha, x[i]);
  }
}

// out[i] = act(x[i]) (or act'(x[i])) for i < n, chunk by chunk over the threads.
void act_chunks(Act a, float alpha, const float* x, float* out, index_t n, bool grad,
                const float* dy = nullptr, bool add = false) {
  const index_t chunks = (n + vmath::kChunk - 1) / vmath::kChunk;
  parallel_for(chunks, n, [&](index_t c) {
    const index_t i0 = c * vmath::kChunk;
    const index_t len = std::min(vmath::kChunk, n - i0);
    if (dy == nullptr) {
      act_chunk(a, alpha, x + i0, out + i0, len, grad);
      return;
    }
    alignas(64) float g[vmath::kChunk];
    act_chunk(a, alpha, x + i0, g, len, true);
    for (index_t i = 0; i < len; ++i) put(out[i0 + i], dy[i0 + i] * g[i], add);
  });
}

}  // namespace

template <class T>
void activation_forward(T* y, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  if constexpr (std::is_same_v<T, float>) {
    if (transcendental(p.act)) return act_chunks(p.act, alpha, x, y, n, false);
  }
  with_act(p.act, [&](auto a) {
    for_each_index(n, [&](index_t i) { y[i] = math::act_forward(a.value, alpha, x[i]); });
  });
}

template <class T>
void activation_backward(T* dx, bool add, const T* dy, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  if constexpr (std::is_same_v<T, float>) {
    if (transcendental(p.act)) return act_chunks(p.act, alpha, x, dx, n, true, dy, add);
  }
  with_act(p.act, [&](auto a) {
    for_each_index(
        n, [&](index_t i) { put(dx[i], dy[i] * math::act_grad(a.value, alpha, x[i]), add); });
  });
}

template <class T>
void activation_grad_forward(T* g, const T* x, ActParams p, index_t n, Stream) {
  const T alpha = static_cast<T>(p.alpha);
  if constexpr (std::is_same_v<T, float>) {
    if (transcendental(p.act)) return act_chunks(p.act, alpha, x, g, n, true);
  }
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
