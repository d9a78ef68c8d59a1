#include "models/generate.h"

namespace latent::models {
namespace {

constexpr const char* kWho = "generate";

class EvalModeGuard {
 public:
  explicit EvalModeGuard(nn::Module& m) : m_(m), was_training_(m.is_training()) { m_.eval(); }
  ~EvalModeGuard() { m_.train(was_training_); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  nn::Module& m_;
  bool was_training_;
};

// One example as [1, D] on the model's device.
Tensor one_example(const Autoencoder& model, const Tensor& x, const char* fn, const char* what) {
  check(x.defined(), kWho, fn, ": ", what, " is undefined");
  const std::int64_t d = model.input_dim();
  const bool ok =
      (x.ndim() == 1 && x.dim(0) == d) || (x.ndim() == 2 && x.dim(0) == 1 && x.dim(1) == d);
  check(ok, kWho, fn, ": ", what, " must be one input of ", model.name(), ", [", d, "] or [1, ", d,
        "], got ", x.shape().str());
  return x.reshape({1, d}).to(model.device());
}

}  // namespace

Tensor sample(VAE& vae, std::int64_t n, const SampleOptions& options) {
  check(n >= 1, kWho, "sample: n must be at least 1, got ", n);
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  Generator& gen = options.generator ? *options.generator : vae.noise_generator();
  const Tensor z =
      Tensor::randn({n, vae.latent_dim()}, gen, {.dtype = vae.dtype(), .device = vae.device()});
  const Tensor params = vae.decode_params(z);
  return options.draw ? sample(vae.likelihood(), params, gen) : mean(vae.likelihood(), params);
}

Tensor interpolate(Autoencoder& model, const Tensor& a, const Tensor& b, std::int64_t steps) {
  check(steps >= 2, kWho, "interpolate: steps must be at least 2 (both end points), got ", steps);
  const Tensor xa = one_example(model, a, "interpolate", "a");
  const Tensor xb = one_example(model, b, "interpolate", "b");
  NoGradGuard no_grad;
  EvalModeGuard mode(model);
  const std::vector<double> za = model.encode(xa).to_vector<double>();
  const std::vector<double> zb = model.encode(xb).to_vector<double>();
  const std::int64_t zdim = static_cast<std::int64_t>(za.size());
  std::vector<double> z(static_cast<std::size_t>(steps * zdim));
  for (std::int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
    // (1 - t) a + t b rather than a + t (b - a): the end points are exactly the two codes.
    for (std::int64_t j = 0; j < zdim; ++j)
      z[static_cast<std::size_t>(s * zdim + j)] =
          (1 - t) * za[static_cast<std::size_t>(j)] + t * zb[static_cast<std::size_t>(j)];
  }
  const Tensor codes = Tensor::from_data(std::span<const double>(z), {steps, zdim},
                                         {.dtype = model.dtype(), .device = model.device()});
  return model.decode(codes);
}

Tensor traverse(Autoencoder& model, const Tensor& x, std::int64_t dim,
                const std::vector<double>& values) {
  const std::int64_t zdim = model.latent_dim();
  check(dim >= 0 && dim < zdim, kWho, "traverse: dim must be in [0, ", zdim, ") for ", model.name(),
        ", got ", dim);
  check(!values.empty(), kWho, "traverse: no values to sweep dimension ", dim, " over");
  const Tensor x1 = one_example(model, x, "traverse", "x");
  NoGradGuard no_grad;
  EvalModeGuard mode(model);
  const std::vector<double> code = model.encode(x1).to_vector<double>();
  const auto count = static_cast<std::int64_t>(values.size());
  std::vector<double> z(static_cast<std::size_t>(count * zdim));
  for (std::int64_t s = 0; s < count; ++s) {
    for (std::int64_t j = 0; j < zdim; ++j)
      z[static_cast<std::size_t>(s * zdim + j)] = code[static_cast<std::size_t>(j)];
    z[static_cast<std::size_t>(s * zdim + dim)] = values[static_cast<std::size_t>(s)];
  }
  const Tensor codes = Tensor::from_data(std::span<const double>(z), {count, zdim},
                                         {.dtype = model.dtype(), .device = model.device()});
  return model.decode(codes);
}

std::vector<double> linspace(double lo, double hi, std::int64_t count) {
  check(count >= 2, kWho, "linspace: count must be at least 2, got ", count);
  std::vector<double> v(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const double t = static_cast<double>(i) / static_cast<double>(count - 1);
    v[static_cast<std::size_t>(i)] = (1 - t) * lo + t * hi;
  }
  return v;
}

}  // namespace latent::models
