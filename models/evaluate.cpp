#include "models/evaluate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/data/dataset.h"

namespace latent::models {
namespace {

constexpr const char* kWho = "evaluate";

// Evaluation mode for the lifetime of the guard; the previous mode comes back even on a throw.
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

void check_data(const Autoencoder& model, const Tensor& x, std::int64_t batch, const char* fn) {
  check(x.defined(), kWho, fn, ": undefined data");
  check(x.ndim() == 2 && x.dim(1) == model.input_dim(), kWho, fn, ": ", model.name(),
        " expects data [N, ", model.input_dim(), "], got ", x.shape().str());
  check(x.dim(0) >= 1, kWho, fn, ": the data set is empty ", x.shape().str());
  check(batch >= 1, kWho, fn, ": batch must be at least 1, got ", batch);
}

// Calls fn(start, rows) for consecutive batches of x, each moved to the model's device.
template <class Fn>
void for_batches(Autoencoder& model, const Tensor& x, std::int64_t batch, Fn&& fn) {
  const Device device = model.device();
  for (std::int64_t start = 0; start < x.dim(0); start += batch) {
    const std::int64_t count = std::min(batch, x.dim(0) - start);
    fn(start, x.rows(start, count).to(device));
  }
}

Tensor tiled(const Tensor& t, std::int64_t repeats) {
  return repeats == 1 ? t : tile_rows(t, repeats);
}

// The VAE's output for posterior parameters h and noise eps, without running the encoder again.
VAEOutput output_for(VAE& vae, const Tensor& h, const Tensor& eps) {
  const std::int64_t z = vae.latent_dim();
  VAEOutput out;
  out.h = h;
  out.mu = narrow_cols(h, 0, z);
  out.logvar = narrow_cols(h, z, z);
  out.z = reparametrize(h, eps);
  out.params = vae.decode_params(out.z);
  return out;
}

}  // namespace

ReconstructionError reconstruction_error(Autoencoder& model, const Tensor& x,
                                         const EvalOptions& options) {
  check_data(model, x, options.batch, "reconstruction_error");
  NoGradGuard no_grad;
  EvalModeGuard mode(model);
  double squared = 0, nll_sum = 0;
  for_batches(model, x, options.batch, [&](std::int64_t, const Tensor& xb) {
    const Tensor params = model.decode_params(model.encode(xb));
    squared += sum(square(sub(mean(model.likelihood(), params), xb))).item();
    nll_sum += sum(nll(model.likelihood(), params, xb)).item();
  });
  const double n = static_cast<double>(x.dim(0));
  return {.squared_error = squared / n,
          .mse = squared / (n * static_cast<double>(x.dim(1))),
          .nll = nll_sum / n};
}

ElboResult elbo(VAE& vae, const Tensor& x, std::int64_t samples, const EvalOptions& options) {
  check_data(vae, x, options.batch, "elbo");
  check(samples >= 1, kWho, "elbo: samples must be at least 1, got ", samples);
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  Generator gen(options.seed);
  double recon = 0, kl = 0;
  for_batches(vae, x, options.batch, [&](std::int64_t, const Tensor& xb) {
    const Tensor h = vae.posterior(xb);
    const Tensor eps = Tensor::randn({samples * xb.dim(0), vae.latent_dim()}, gen, h.options());
    const VAEOutput out = output_for(vae, h, eps);
    recon += sum(nll(vae.likelihood(), out.params, tiled(xb, samples))).item() /
             static_cast<double>(samples);
    kl += kl_normal(h, Reduction::sum).item();
  });
  const double n = static_cast<double>(x.dim(0));
  return {.elbo = -(recon + kl) / n, .recon = recon / n, .kl = kl / n};
}

Tensor log_likelihood_per_example(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options) {
  check_data(vae, x, options.batch, "log_likelihood");
  check(options.k >= 1, kWho, "log_likelihood: k must be at least 1, got ", options.k);
  check(options.chunk >= 1, kWho, "log_likelihood: chunk must be at least 1, got ", options.chunk);
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  Generator gen(options.seed);
  const std::int64_t zdim = vae.latent_dim();
  std::vector<double> result(static_cast<std::size_t>(x.dim(0)));
  for_batches(vae, x, options.batch, [&](std::int64_t start, const Tensor& xb) {
    const std::int64_t n = xb.dim(0);
    const Tensor h = vae.posterior(xb);
    // Running log-sum-exp per example in double: max seen so far and the sum of exp(lw - max).
    std::vector<double> run_max(static_cast<std::size_t>(n),
                                -std::numeric_limits<double>::infinity());
    std::vector<double> run_sum(static_cast<std::size_t>(n), 0.0);
    for (std::int64_t s0 = 0; s0 < options.k; s0 += options.chunk) {
      const std::int64_t c = std::min(options.chunk, options.k - s0);
      // One draw of [n, Z] per sample index, in sample order, all of a chunk in one launch: the
      // noise of sample i does not depend on how the samples are grouped into chunks.
      const Tensor eps = Tensor::randn_draws(c, {n, zdim}, gen, h.options());
      const VAEOutput out = output_for(vae, h, eps);
      const std::vector<double> lw = vae.log_weights(out, xb).to_vector<double>();  // [c*n]
      for (std::int64_t r = 0; r < c; ++r) {
        for (std::int64_t i = 0; i < n; ++i) {
          const double v = lw[static_cast<std::size_t>(r * n + i)];
          double& m = run_max[static_cast<std::size_t>(i)];
          double& s = run_sum[static_cast<std::size_t>(i)];
          if (v == -std::numeric_limits<double>::infinity()) continue;
          if (v > m) {
            s = s * std::exp(m - v) + 1.0;
            m = v;
          } else {
            s += std::exp(v - m);
          }
        }
      }
    }
    const double log_k = std::log(static_cast<double>(options.k));
    for (std::int64_t i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      result[static_cast<std::size_t>(start + i)] =
          run_sum[u] > 0 ? run_max[u] + std::log(run_sum[u]) - log_k : run_max[u];
    }
  });
  return Tensor::from_data(std::span<const double>(result), {x.dim(0)}, {.dtype = DType::f64});
}

double log_likelihood(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options) {
  const std::vector<double> per = log_likelihood_per_example(vae, x, options).to_vector<double>();
  double total = 0;
  for (double v : per) total += v;
  return total / static_cast<double>(per.size());
}

Tensor kl_per_dim(VAE& vae, const Tensor& x, const EvalOptions& options) {
  check_data(vae, x, options.batch, "kl_per_dim");
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  std::vector<double> acc(static_cast<std::size_t>(vae.latent_dim()), 0.0);
  for_batches(vae, x, options.batch, [&](std::int64_t, const Tensor& xb) {
    const std::vector<double> part = sum(kl_normal_terms(vae.posterior(xb)), 0).to_vector<double>();
    for (std::size_t j = 0; j < acc.size(); ++j) acc[j] += part[j];
  });
  std::vector<float> out(acc.size());
  for (std::size_t j = 0; j < acc.size(); ++j)
    out[j] = static_cast<float>(acc[j] / static_cast<double>(x.dim(0)));
  return Tensor::from_data(std::span<const float>(out), {vae.latent_dim()});
}

ActiveUnits active_units(Autoencoder& model, const Tensor& x, double threshold,
                         const EvalOptions& options) {
  check_data(model, x, options.batch, "active_units");
  check(threshold >= 0, kWho, "active_units: threshold must be >= 0, got ", threshold);
  const Tensor codes = export_mu(model, x, options);
  const std::vector<float> mu = codes.to_vector<float>();
  const std::int64_t n = codes.dim(0), zdim = codes.dim(1);
  // Two passes in double: the mean first, then squared deviations (no cancellation).
  std::vector<double> mean_j(static_cast<std::size_t>(zdim), 0.0), var(mean_j);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < zdim; ++j)
      mean_j[static_cast<std::size_t>(j)] += mu[static_cast<std::size_t>(i * zdim + j)];
  for (double& m : mean_j) m /= static_cast<double>(n);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < zdim; ++j) {
      const double d =
          mu[static_cast<std::size_t>(i * zdim + j)] - mean_j[static_cast<std::size_t>(j)];
      var[static_cast<std::size_t>(j)] += d * d;
    }
  ActiveUnits result;
  std::vector<float> v(var.size());
  for (std::size_t j = 0; j < var.size(); ++j) {
    v[j] = static_cast<float>(var[j] / static_cast<double>(n));
    if (var[j] / static_cast<double>(n) > threshold) ++result.count;
  }
  result.variance = Tensor::from_data(std::span<const float>(v), {zdim});
  return result;
}

Tensor export_mu(Autoencoder& model, const Tensor& x, const EvalOptions& options) {
  check_data(model, x, options.batch, "export_mu");
  NoGradGuard no_grad;
  EvalModeGuard mode(model);
  const std::int64_t zdim = model.latent_dim();
  std::vector<float> all;
  all.reserve(static_cast<std::size_t>(x.dim(0) * zdim));
  for_batches(model, x, options.batch, [&](std::int64_t, const Tensor& xb) {
    const std::vector<float> part = model.encode(xb).to_vector<float>();
    all.insert(all.end(), part.begin(), part.end());
  });
  return Tensor::from_data(std::span<const float>(all), {x.dim(0), zdim});
}

Tensor export_mu(Autoencoder& model, const Tensor& x, const std::string& npy_path,
                 const EvalOptions& options) {
  Tensor mu = export_mu(model, x, options);
  data::write_npy(npy_path, mu);
  return mu;
}

}  // namespace latent::models
