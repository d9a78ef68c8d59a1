#include "core/ops/noise.h"

#include <cmath>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/noise.h"

namespace latent {
namespace {

// A draw of one number per element of x, whose rows (first dimension) are a batch's
// (Generator::take_rows: a share of a batch draws as the whole batch would).
Generator::Draw draw_per_element(Generator& gen, const Tensor& x) {
  const std::int64_t rows = x.ndim() == 0 ? 1 : x.dim(0);
  return gen.take_rows(1, rows, rows == 0 ? 0 : x.numel() / rows, x.device());
}

void check_probability(const char* op, double p) {
  check(p >= 0.0 && p <= 1.0, op, "p must lie in [0, 1], got ", p);
}

// Masking and salt-and-pepper keep an entry exactly when its uniform is >= p: the backward
// regenerates those uniforms from the counters instead of storing a mask.
Tensor keep_or_replace(const char* op, const Tensor& x, double p, Generator& gen, bool salt) {
  dispatch::check_defined(op, {&x});
  check_probability(op, p);
  const std::int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape(), x.options());
  // The forward kernel moves the generator's offset itself (take_inside); the backward
  // regenerates the uniforms from the draw's start (`used`, kept alive by its closure).
  const Generator::Draw draw = draw_per_element(gen, x);
  const kernels::philox::Key key = draw.key;
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    if (salt)
      dispatch::call(be, LATENT_KERNEL(salt_and_pepper_forward), y.data<T>(), x.data<T>(), p, key,
                     n);
    else
      dispatch::call(be, LATENT_KERNEL(masking_noise_forward), y.data<T>(), x.data<T>(), p, key, n);
  });
  const kernels::philox::Key again = draw.again();
  autograd::record(op, y, {&x}, [=, start = draw.used](const Tensor& dy, autograd::GradSink& g) {
    (void)start;  // holds the draw's start, which `again` points to
    Tensor& dx = g.grad(0);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(masking_noise_backward), dx.data<T>(), dy.data<T>(), p,
                     again, n);
    });
  });
  return y;
}

}  // namespace

Tensor gaussian_noise(const Tensor& x, double sigma, Generator& gen) {
  const char* op = "gaussian_noise";
  dispatch::check_defined(op, {&x});
  check(std::isfinite(sigma) && sigma >= 0.0, op, "sigma must be finite and >= 0, got ", sigma);
  const std::int64_t n = x.numel();
  Tensor y = Tensor::empty(x.shape(), x.options());
  // The kernel moves the generator's offset itself (take_inside).
  const Generator::Draw draw = draw_per_element(gen, x);
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(gaussian_noise_forward), y.data<T>(), x.data<T>(), T(sigma),
                   draw.key, n);
  });
  autograd::record(op, y, {&x}, [](const Tensor& dy, autograd::GradSink& g) { g.adopt(0, dy); });
  return y;
}

Tensor masking_noise(const Tensor& x, double p, Generator& gen) {
  return keep_or_replace("masking_noise", x, p, gen, false);
}

Tensor salt_and_pepper(const Tensor& x, double p, Generator& gen) {
  return keep_or_replace("salt_and_pepper", x, p, gen, true);
}

Tensor bernoulli(const Tensor& probs, Generator& gen) {
  const char* op = "bernoulli";
  dispatch::check_defined(op, {&probs});
  const std::int64_t n = probs.numel();
  Tensor y = Tensor::empty(probs.shape(), probs.options());
  dispatch::run(op, probs, [&](auto z, auto be) {
    using T = decltype(z);
    const T* p = probs.data<T>();
    // Checked on the CPU only: on the GPU it would wait for the device; the kernel writes NaN for
    // a probability outside [0, 1] instead.
    if constexpr (!decltype(be)::is_cuda) {
      for (std::int64_t i = 0; i < n; ++i)
        check(p[i] >= T(0) && p[i] <= T(1), op, "probabilities must lie in [0, 1], element ", i,
              " of ", probs.shape().str(), " is ", p[i]);
    }
    // The kernel moves the generator's offset itself (take_inside).
    const Generator::Draw draw = draw_per_element(gen, probs);
    dispatch::call(be, LATENT_KERNEL(bernoulli_forward), y.data<T>(), p, draw.key, n);
  });
  return y;
}

Tensor categorical(const Tensor& probs, Generator& gen) {
  const char* op = "categorical";
  dispatch::check_defined(op, {&probs});
  dispatch::check_ndim(op, "probs", probs, 2);
  const std::int64_t m = probs.dim(0), k = probs.dim(1);
  check(k >= 1 || m == 0, op, "needs at least one class per row, got ", probs.shape().str());
  Tensor y = Tensor::empty({m}, probs.options());
  dispatch::run(op, probs, [&](auto z, auto be) {
    using T = decltype(z);
    const T* p = probs.data<T>();
    // Checked on the CPU only: on the GPU it would wait for the device; the kernel writes NaN for
    // a row with a negative or non-finite weight or without mass instead.
    if constexpr (!decltype(be)::is_cuda) {
      for (std::int64_t r = 0; r < m; ++r) {
        double total = 0;
        for (std::int64_t j = 0; j < k; ++j) {
          const T v = p[r * k + j];
          check(v >= T(0) && std::isfinite(static_cast<double>(v)), op,
                "probabilities must be finite and >= 0, row ", r, " column ", j, " of ",
                probs.shape().str(), " is ", v);
          total += static_cast<double>(v);
        }
        check(total > 0.0, op, "row ", r, " of ", probs.shape().str(), " has no probability mass");
      }
    }
    const Generator::Draw draw = gen.take_rows(1, m, 1, probs.device());  // one per row
    dispatch::call(be, LATENT_KERNEL(categorical_forward), y.data<T>(), p, draw.key, m, k);
  });
  return y;
}

}  // namespace latent
