// Transcendental functions over float arrays on the CPU, vectorized: y[i] = f(x[i]) for i < n
// (y may be x). In a build with SLEEF (LATENT_SLEEF; Debian's libsleef-dev) they run SLEEF's
// vector functions at the widest vector width the build targets (16 floats with AVX-512, 8 with
// AVX2, 4 with SSE2), with SLEEF's stated error bounds: 1.0 ULP for exp, expm1, log1p and tanh, 1.5
// ULP for erfc; without SLEEF, the C library's function element by element (under 1 ULP in
// glibc). Either way the result of an element depends on that element alone, never on n, the
// position or the thread count. The callers are the CPU kernels of the activations and the
// losses, which run these on chunks of their rows (vmath::kChunk elements at a time).
#pragma once

#include "kernels/common.h"

namespace latent::kernels::cpu::vmath {

inline constexpr index_t kChunk = 1024;  // elements a kernel processes per call (stack buffers)

void exp(float* y, const float* x, index_t n);
void expm1(float* y, const float* x, index_t n);
void log1p(float* y, const float* x, index_t n);
void tanh(float* y, const float* x, index_t n);
void erfc(float* y, const float* x, index_t n);
// In place: x[i] = f(x[i]).
void exp(float* x, index_t n);
void expm1(float* x, index_t n);
void log1p(float* x, index_t n);
void erfc(float* x, index_t n);

// Whether this build has SLEEF, and the vector width it uses (1 without).
bool has_sleef();
int width();

}  // namespace latent::kernels::cpu::vmath
