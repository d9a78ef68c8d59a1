#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_parallel.h"
#include "kernels/philox.h"
#include "kernels/scalar_math.h"
#include "kernels/vae.h"

namespace latent::kernels::cpu {
namespace {

// e[j] = philox::normal_at(key, start + j) for j < count, drawing each Philox block once
// instead of once per element (normal_at alone would compute every block four times). A row of
// z is contiguous in a shard's whole draw too: its start is mapped (key.shard.at) by the caller.
void normals(float* e, philox::Key key, std::uint64_t start, index_t count) {
  const std::uint64_t seed = key.seed, offset = key.start();
  const std::uint64_t end = start + static_cast<std::uint64_t>(count);
  std::uint64_t i = start;
  while (i < end) {
    float q[4];
    philox::to_normal4(philox::block(seed, offset + i / 4), q);
    for (std::uint64_t k = i % 4; k < 4 && i < end; ++k, ++i) *e++ = q[k];
  }
}

}  // namespace

template <class T>
void reparametrize_forward(T* z, const T* h, const T* eps, philox::Key key, T lv_min, T lv_max,
                           index_t r, index_t n, index_t zdim, Stream) {
  const index_t rows = r * n;
  // The noise of one output row, regenerated per row so the work splits freely over threads.
  struct Scratch {
    std::vector<T> noise;
    std::vector<float> raw;
  };
  parallel_for_with(
      rows, rows * zdim,
      [&] {
        return Scratch{std::vector<T>(static_cast<std::size_t>(eps ? 0 : zdim)),
                       std::vector<float>(static_cast<std::size_t>(eps ? 0 : zdim))};
      },
      [&](Scratch& scratch, index_t row) {
        auto& noise = scratch.noise;
        auto& raw = scratch.raw;
        const T* mu = h + (row % n) * 2 * zdim;
        const T* lv = mu + zdim;
        const T* e = eps ? eps + row * zdim : noise.data();
        if (!eps) {
          normals(raw.data(), key, key.shard.at(static_cast<std::uint64_t>(row * zdim)), zdim);
          for (index_t k = 0; k < zdim; ++k)
            noise[static_cast<std::size_t>(k)] = static_cast<T>(raw[k]);
        }
        T* zr = z + row * zdim;
        for (index_t k = 0; k < zdim; ++k)
          zr[k] = math::reparam_sample(mu[k], math::clamp(lv[k], lv_min, lv_max), e[k]);
      });
  if (key.take.counter) philox::complete_take(key.take);  // a take_inside draw
}

namespace {

// dh (+)= the reparametrization gradient of dz, plus the KL terms with g = scale * dkl[0] when dkl
// is non-null.
template <class T>
void reparam_grad(T* dh, bool add, const T* dz, const T* dkl, T scale, const T* h, const T* eps,
                  philox::Key key, T lv_min, T lv_max, index_t r, index_t n, index_t zdim) {
  const T gkl = dkl ? scale * dkl[0] : T(0);
  // One thread owns each input row and sums its R samples in order: the result does not depend
  // on the thread count.
  struct Scratch {
    std::vector<double> acc_mu;
    std::vector<double> acc_lv;
    std::vector<float> raw;
  };
  parallel_for_with(
      n, r * n * zdim,
      [&] {
        return Scratch{std::vector<double>(static_cast<std::size_t>(zdim)),
                       std::vector<double>(static_cast<std::size_t>(zdim)),
                       std::vector<float>(static_cast<std::size_t>(eps ? 0 : zdim))};
      },
      [&](Scratch& scratch, index_t i) {
        auto& acc_mu = scratch.acc_mu;
        auto& acc_lv = scratch.acc_lv;
        auto& raw = scratch.raw;
        std::fill(acc_mu.begin(), acc_mu.end(), 0.0);
        std::fill(acc_lv.begin(), acc_lv.end(), 0.0);
        for (index_t s = 0; s < r; ++s) {
          const index_t row = s * n + i;
          const T* g = dz + row * zdim;
          if (eps) {
            const T* e = eps + row * zdim;
            for (index_t k = 0; k < zdim; ++k) {
              acc_mu[static_cast<std::size_t>(k)] += static_cast<double>(g[k]);
              acc_lv[static_cast<std::size_t>(k)] += static_cast<double>(g[k] * e[k]);
            }
          } else {
            normals(raw.data(), key, key.shard.at(static_cast<std::uint64_t>(row * zdim)), zdim);
            for (index_t k = 0; k < zdim; ++k) {
              acc_mu[static_cast<std::size_t>(k)] += static_cast<double>(g[k]);
              // The same product as with explicit noise (T times T), so both paths agree exactly.
              acc_lv[static_cast<std::size_t>(k)] +=
                  static_cast<double>(g[k] * static_cast<T>(raw[k]));
            }
          }
        }
        const T* mu = h + i * 2 * zdim;
        const T* lv = mu + zdim;
        T* dmu = dh + i * 2 * zdim;
        T* dlv = dmu + zdim;
        for (index_t k = 0; k < zdim; ++k) {
          T gm = static_cast<T>(acc_mu[static_cast<std::size_t>(k)]);
          T gl = T(0);
          const bool active = math::logvar_active(lv[k], lv_min, lv_max);
          if (active)
            gl = static_cast<T>(acc_lv[static_cast<std::size_t>(k)] * 0.5 *
                                std::exp(0.5 * static_cast<double>(lv[k])));
          if (dkl) {
            gm += gkl * mu[k];
            if (active) gl += gkl * math::kl_normal_term_dlogvar(lv[k]);
          }
          dmu[k] = add ? dmu[k] + gm : gm;
          dlv[k] = add ? dlv[k] + gl : gl;
        }
      });
}

}  // namespace

template <class T>
void reparametrize_backward(T* dh, const T* dz, const T* h, const T* eps, philox::Key key, T lv_min,
                            T lv_max, index_t r, index_t n, index_t zdim, Stream) {
  reparam_grad<T>(dh, true, dz, nullptr, T(0), h, eps, key, lv_min, lv_max, r, n, zdim);
}

template <class T>
void reparametrize_kl_forward(T* z, T* kl, const T* h, philox::Key key, T scale, T lv_min, T lv_max,
                              index_t r, index_t n, index_t zdim, double* scratch, Stream) {
  reparametrize_forward<T>(z, h, nullptr, key, lv_min, lv_max, r, n, zdim);
  kl_normal_forward<T>(kl, h, scale, false, lv_min, lv_max, n, zdim, scratch);
}

template <class T>
void reparametrize_kl_backward(T* dh, bool add, const T* dz, const T* dkl, T scale, const T* h,
                               philox::Key key, T lv_min, T lv_max, index_t r, index_t n,
                               index_t zdim, Stream) {
  reparam_grad<T>(dh, add, dz, dkl, scale, h, nullptr, key, lv_min, lv_max, r, n, zdim);
}

template <class T>
void kl_normal_terms_forward(T* t, const T* h, T lv_min, T lv_max, index_t n, index_t zdim,
                             Stream) {
  parallel_for(n, n * zdim, [&](index_t i) {
    const T* mu = h + i * 2 * zdim;
    const T* lv = mu + zdim;
    T* ti = t + i * zdim;
    for (index_t k = 0; k < zdim; ++k)
      ti[k] = math::kl_normal_term(mu[k], math::clamp(lv[k], lv_min, lv_max));
  });
}

template <class T>
void kl_normal_forward(T* out, const T* h, T scale, bool per_sample, T lv_min, T lv_max, index_t n,
                       index_t zdim, double*, Stream) {
  // Per-sample sums first (one thread per row), then the batch sum in row order: deterministic.
  std::vector<double> row_sum(static_cast<std::size_t>(n));
  parallel_for(n, n * zdim, [&](index_t i) {
    const T* mu = h + i * 2 * zdim;
    const T* lv = mu + zdim;
    double s = 0.0;
    for (index_t k = 0; k < zdim; ++k)
      s += static_cast<double>(math::kl_normal_term(mu[k], math::clamp(lv[k], lv_min, lv_max)));
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
void kl_normal_backward(T* dh, const T* dout, index_t stride_n, index_t stride_z, T scale,
                        const T* h, T lv_min, T lv_max, index_t n, index_t zdim, Stream) {
  parallel_for(n, n * zdim, [&](index_t i) {
    const T* mu = h + i * 2 * zdim;
    const T* lv = mu + zdim;
    T* dmu = dh + i * 2 * zdim;
    T* dlv = dmu + zdim;
    const T* g = dout + i * stride_n;
    for (index_t k = 0; k < zdim; ++k) {
      const T gk = scale * g[k * stride_z];
      dmu[k] += gk * mu[k];
      if (math::logvar_active(lv[k], lv_min, lv_max))
        dlv[k] += gk * math::kl_normal_term_dlogvar(lv[k]);
    }
  });
}

#define LATENT_INSTANTIATE(T)                                                                     \
  template void reparametrize_forward<T>(T*, const T*, const T*, philox::Key, T, T, index_t,      \
                                         index_t, index_t, Stream);                               \
  template void reparametrize_backward<T>(T*, const T*, const T*, const T*, philox::Key, T, T,    \
                                          index_t, index_t, index_t, Stream);                     \
  template void reparametrize_kl_forward<T>(T*, T*, const T*, philox::Key, T, T, T, index_t,      \
                                            index_t, index_t, double*, Stream);                   \
  template void reparametrize_kl_backward<T>(T*, bool, const T*, const T*, T, const T*,           \
                                             philox::Key, T, T, index_t, index_t, index_t,        \
                                             Stream);                                             \
  template void kl_normal_terms_forward<T>(T*, const T*, T, T, index_t, index_t, Stream);         \
  template void kl_normal_forward<T>(T*, const T*, T, bool, T, T, index_t, index_t, double*,      \
                                     Stream);                                                     \
  template void kl_normal_backward<T>(T*, const T*, index_t, index_t, T, const T*, T, T, index_t, \
                                      index_t, Stream);
LATENT_INSTANTIATE(float)
LATENT_INSTANTIATE(double)
#undef LATENT_INSTANTIATE

}  // namespace latent::kernels::cpu
