#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/scalar_math.h"
#include "kernels/sparsity.h"

namespace latent::kernels::cpu {
namespace {}  // namespace

template <class T>
void l1_penalty_forward(T* out, const T* h, T scale, bool per_sample, index_t n, index_t hdim,
                        double*, Stream) {
  // One thread per row, then the rows in order: independent of the thread count.
  std::vector<double> s(static_cast<std::size_t>(n));
  parallel_for(n, n * hdim, [&](index_t i) {
    double acc = 0;
    for (index_t j = i * hdim; j < (i + 1) * hdim; ++j) acc += std::fabs(h[j]);
    s[static_cast<std::size_t>(i)] = acc;
  });
  if (per_sample) {
    for (index_t i = 0; i < n; ++i)
      out[i] = static_cast<T>(static_cast<double>(scale) * s[static_cast<std::size_t>(i)]);
    return;
  }
  double total = 0;
  for (double v : s) total += v;
  out[0] = static_cast<T>(static_cast<double>(scale) * total);
}

template <class T>
void l1_penalty_backward(T* dh, const T* dout, index_t stride, T scale, const T* h, index_t n,
                         index_t hdim, Stream) {
  parallel_for(n, n * hdim, [&](index_t i) {
    const T g = scale * dout[i * stride];
    for (index_t j = i * hdim; j < (i + 1) * hdim; ++j) dh[j] += g * math::l1_grad(h[j]);
  });
}

template <class T>
void kl_sparsity_forward(T* out, T* rho_hat, const T* h, T rho, index_t n, index_t hdim, double*,
                         Stream) {
  // Column sums: each thread owns a block of columns and walks the rows in order, with a
  // contiguous inner loop.
  constexpr index_t kBlock = 64;
  const index_t blocks = (hdim + kBlock - 1) / kBlock;
  parallel_for(blocks, n * hdim, [&](index_t b) {
    const index_t c0 = b * kBlock, c1 = std::min(hdim, c0 + kBlock);
    double acc[kBlock] = {};
    for (index_t i = 0; i < n; ++i)
      for (index_t j = c0; j < c1; ++j) acc[j - c0] += h[i * hdim + j];
    for (index_t j = c0; j < c1; ++j) rho_hat[j] = static_cast<T>(acc[j - c0] / double(n));
  });
  double total = 0;
  for (index_t j = 0; j < hdim; ++j)
    total += math::kl_bernoulli(rho, math::clamp(rho_hat[j], T(kRhoHatMin), T(kRhoHatMax)));
  out[0] = static_cast<T>(total);
}

template <class T>
void kl_sparsity_backward(T* dh, const T* dout, const T* rho_hat, T rho, index_t n, index_t hdim,
                          Stream) {
  // The per-unit factor once, then a streaming pass over h's rows.
  const T g = dout[0] / static_cast<T>(n);
  std::vector<T> c(static_cast<std::size_t>(hdim));
  for (index_t j = 0; j < hdim; ++j) {
    const T q = rho_hat[j];
    const bool inside = q >= T(kRhoHatMin) && q <= T(kRhoHatMax);
    c[static_cast<std::size_t>(j)] = inside ? g * math::kl_bernoulli_dq(rho, q) : T(0);
  }
  const T* cp = c.data();
  parallel_for(n, n * hdim, [&](index_t i) {
    for (index_t j = 0; j < hdim; ++j) dh[i * hdim + j] += cp[j];
  });
}

#define LATENT_INSTANTIATE(T)                                                                    \
  template void l1_penalty_forward<T>(T*, const T*, T, bool, index_t, index_t, double*, Stream); \
  template void l1_penalty_backward<T>(T*, const T*, index_t, T, const T*, index_t, index_t,     \
                                       Stream);                                                  \
  template void kl_sparsity_forward<T>(T*, T*, const T*, T, index_t, index_t, double*, Stream);  \
  template void kl_sparsity_backward<T>(T*, const T*, const T*, T, index_t, index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
