#include "kernels/cpu_vmath.h"

#include <cmath>
#include <cstring>

#if LATENT_WITH_SLEEF
#include <immintrin.h>
#include <sleef.h>
#endif

namespace latent::kernels::cpu::vmath {
namespace {

#if LATENT_WITH_SLEEF
// One vector of floats of the widest width the build targets, and SLEEF's functions on it (the
// dispatching entry points: each picks the best variant of that width for the running CPU).
#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kWidth = 16;
inline Vec load(const float* p) {
  return _mm512_loadu_ps(p);
}
inline void store(float* p, Vec v) {
  _mm512_storeu_ps(p, v);
}
#define LATENT_SLEEF_FN(name, ulp) Sleef_##name##f16_##ulp
#elif defined(__AVX2__)
using Vec = __m256;
constexpr int kWidth = 8;
inline Vec load(const float* p) {
  return _mm256_loadu_ps(p);
}
inline void store(float* p, Vec v) {
  _mm256_storeu_ps(p, v);
}
#define LATENT_SLEEF_FN(name, ulp) Sleef_##name##f8_##ulp
#else
using Vec = __m128;
constexpr int kWidth = 4;
inline Vec load(const float* p) {
  return _mm_loadu_ps(p);
}
inline void store(float* p, Vec v) {
  _mm_storeu_ps(p, v);
}
#define LATENT_SLEEF_FN(name, ulp) Sleef_##name##f4_##ulp
#endif

// Whole vectors in place, then the tail through a padded copy (the padding's results are
// dropped), so every element goes through the same vector function.
template <class F>
void apply(float* y, const float* x, index_t n, F f) {
  index_t i = 0;
  for (; i + kWidth <= n; i += kWidth) store(y + i, f(load(x + i)));
  if (i < n) {
    alignas(64) float tail[kWidth] = {};
    std::memcpy(tail, x + i, static_cast<std::size_t>(n - i) * sizeof(float));
    store(tail, f(load(tail)));
    std::memcpy(y + i, tail, static_cast<std::size_t>(n - i) * sizeof(float));
  }
}
#define LATENT_VMATH(name, ulp, libm)                                    \
  void name(float* y, const float* x, index_t n) {                       \
    apply(y, x, n, [](Vec v) { return LATENT_SLEEF_FN(name, ulp)(v); }); \
  }
#else
#define LATENT_VMATH(name, ulp, libm)                       \
  void name(float* y, const float* x, index_t n) {          \
    for (index_t i = 0; i < n; ++i) y[i] = std::libm(x[i]); \
  }
#endif

}  // namespace

LATENT_VMATH(exp, u10, exp)
LATENT_VMATH(expm1, u10, expm1)
LATENT_VMATH(log1p, u10, log1p)
LATENT_VMATH(tanh, u10, tanh)
LATENT_VMATH(erfc, u15, erfc)

void exp(float* x, index_t n) {
  exp(x, x, n);
}
void expm1(float* x, index_t n) {
  expm1(x, x, n);
}
void log1p(float* x, index_t n) {
  log1p(x, x, n);
}
void erfc(float* x, index_t n) {
  erfc(x, x, n);
}

bool has_sleef() {
  return LATENT_WITH_SLEEF;
}

int width() {
#if LATENT_WITH_SLEEF
  return kWidth;
#else
  return 1;
#endif
}

}  // namespace latent::kernels::cpu::vmath
