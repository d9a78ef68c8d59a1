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

// Calls fn(rows, share, xs) for consecutive batches of `rows` rows of x, where xs is this rank's
// share of the batch (rows [share.first, share.first + share.count) of it; all of it without a
// group) on the model's device.
// A rank whose share is empty (a batch with fewer rows than ranks) is called with an undefined xs,
// so that it still draws the batch's noise like the others.
template <class Fn>
void for_shared_batches(Autoencoder& model, const Tensor& x, std::int64_t batch, dist::Group* g,
                        Fn&& fn) {
  const Device device = model.device();
  for (std::int64_t start = 0; start < x.dim(0); start += batch) {
    const std::int64_t rows = std::min(batch, x.dim(0) - start);
    const dist::Share s = g ? dist::share(rows, g->rank(), g->size()) : dist::Share{0, rows};
    fn(rows, s, s.count > 0 ? x.rows(start + s.first, s.count).to(device) : Tensor());
  }
}

// Sums over the ranks (every rank gets them); nothing to do alone.
std::vector<double> reduced(dist::Group* g, std::vector<double> sums) {
  return g && g->size() > 1 ? g->all_reduce(std::move(sums), dist::ReduceOp::sum) : sums;
}

// The rows [first, first + count) of each of the `draws` blocks of `rows` rows of eps: the noise a
// share of a batch gets from the whole batch's draw.
Tensor share_of_draws(const Tensor& eps, std::int64_t draws, std::int64_t rows,
                      const dist::Share& s) {
  if (s.first == 0 && s.count == rows) return eps;
  std::vector<Tensor> parts;
  parts.reserve(static_cast<std::size_t>(draws));
  for (std::int64_t d = 0; d < draws; ++d) parts.push_back(eps.rows(d * rows + s.first, s.count));
  return draws == 1 ? parts.front() : concat_rows(parts);
}

// The codes encode(x) of this rank's share of every batch (of every row without a group), row
// after row, without a graph and in evaluation mode.
std::vector<float> codes_of_share(Autoencoder& model, const Tensor& x, std::int64_t batch,
                                  dist::Group* g) {
  NoGradGuard no_grad;
  EvalModeGuard mode(model);
  std::vector<float> codes;
  if (!g) codes.reserve(static_cast<std::size_t>(x.dim(0) * model.latent_dim()));
  for_shared_batches(model, x, batch, g, [&](std::int64_t, const dist::Share&, const Tensor& xb) {
    if (!xb.defined()) return;
    const std::vector<float> part = model.encode(xb).to_vector<float>();
    codes.insert(codes.end(), part.begin(), part.end());
  });
  return codes;
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
  for_shared_batches(model, x, options.batch, options.group,
                     [&](std::int64_t, const dist::Share&, const Tensor& xb) {
                       if (!xb.defined()) return;
                       const Tensor params = model.decode_params(model.encode(xb));
                       squared += sum(square(sub(mean(model.likelihood(), params), xb))).item();
                       nll_sum += sum(nll(model.likelihood(), params, xb)).item();
                     });
  const std::vector<double> sums = reduced(options.group, {squared, nll_sum});
  squared = sums[0];
  nll_sum = sums[1];
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
  const TensorOptions noise_options{.dtype = vae.dtype(), .device = vae.device()};
  for_shared_batches(vae, x, options.batch, options.group,
                     [&](std::int64_t rows, const dist::Share& s, const Tensor& xb) {
                       // The whole batch's noise (sample-major), of which this share takes its
                       // rows.
                       const Tensor eps_all =
                           Tensor::randn({samples * rows, vae.latent_dim()}, gen, noise_options);
                       if (!xb.defined()) return;
                       const Tensor h = vae.posterior(xb);
                       const VAEOutput out =
                           output_for(vae, h, share_of_draws(eps_all, samples, rows, s));
                       recon += sum(nll(vae.likelihood(), out.params, tiled(xb, samples))).item() /
                                static_cast<double>(samples);
                       kl += kl_normal(h, Reduction::sum).item();
                     });
  const std::vector<double> sums = reduced(options.group, {recon, kl});
  recon = sums[0];
  kl = sums[1];
  const double n = static_cast<double>(x.dim(0));
  return {.elbo = -(recon + kl) / n, .recon = recon / n, .kl = kl / n};
}

namespace {

// log p(x) of this rank's share of every batch of x (every row alone): emit(row, value) for each
// row of the share, row counted in x.
template <class Emit>
void log_likelihood_rows(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options,
                         dist::Group* g, Emit&& emit) {
  check_data(vae, x, options.batch, "log_likelihood");
  check(options.k >= 1, kWho, "log_likelihood: k must be at least 1, got ", options.k);
  check(options.chunk >= 1, kWho, "log_likelihood: chunk must be at least 1, got ", options.chunk);
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  Generator gen(options.seed);
  const std::int64_t zdim = vae.latent_dim();
  const TensorOptions noise_options{.dtype = vae.dtype(), .device = vae.device()};
  std::int64_t start = 0;
  for_shared_batches(
      vae, x, options.batch, g, [&](std::int64_t rows, const dist::Share& s, const Tensor& xb) {
        const std::int64_t n = s.count;
        const Tensor h = xb.defined() ? vae.posterior(xb) : Tensor();
        // Running log-sum-exp per example in double: max seen so far and the sum of exp(lw - max).
        std::vector<double> run_max(static_cast<std::size_t>(n),
                                    -std::numeric_limits<double>::infinity());
        std::vector<double> run_sum(static_cast<std::size_t>(n), 0.0);
        for (std::int64_t s0 = 0; s0 < options.k; s0 += options.chunk) {
          const std::int64_t c = std::min(options.chunk, options.k - s0);
          // One draw of [rows, Z] per sample index, in sample order, all of a chunk in one launch:
          // the noise of sample i does not depend on how the samples are grouped into chunks (nor
          // on the share of the batch this rank takes).
          const Tensor eps_all = Tensor::randn_draws(c, {rows, zdim}, gen, noise_options);
          if (n == 0) continue;
          const VAEOutput out = output_for(vae, h, share_of_draws(eps_all, c, rows, s));
          const std::vector<double> lw = vae.log_weights(out, xb).to_vector<double>();  // [c*n]
          for (std::int64_t r = 0; r < c; ++r) {
            for (std::int64_t i = 0; i < n; ++i) {
              const double v = lw[static_cast<std::size_t>(r * n + i)];
              double& m = run_max[static_cast<std::size_t>(i)];
              double& sum_exp = run_sum[static_cast<std::size_t>(i)];
              if (v == -std::numeric_limits<double>::infinity()) continue;
              if (v > m) {
                sum_exp = sum_exp * std::exp(m - v) + 1.0;
                m = v;
              } else {
                sum_exp += std::exp(v - m);
              }
            }
          }
        }
        const double log_k = std::log(static_cast<double>(options.k));
        for (std::int64_t i = 0; i < n; ++i) {
          const auto u = static_cast<std::size_t>(i);
          emit(start + s.first + i,
               run_sum[u] > 0 ? run_max[u] + std::log(run_sum[u]) - log_k : run_max[u]);
        }
        start += rows;
      });
}

}  // namespace

Tensor log_likelihood_per_example(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options) {
  std::vector<double> result(x.defined() && x.ndim() == 2 ? static_cast<std::size_t>(x.dim(0)) : 0);
  log_likelihood_rows(vae, x, options, nullptr, [&](std::int64_t row, double v) {
    result[static_cast<std::size_t>(row)] = v;
  });
  return Tensor::from_data(std::span<const double>(result), {x.dim(0)}, {.dtype = DType::f64});
}

double log_likelihood(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options) {
  // In row order, as the per-example values would be summed.
  double total = 0;
  log_likelihood_rows(vae, x, options, options.group, [&](std::int64_t, double v) { total += v; });
  total = reduced(options.group, {total})[0];
  return total / static_cast<double>(x.dim(0));
}

Tensor kl_per_dim(VAE& vae, const Tensor& x, const EvalOptions& options) {
  check_data(vae, x, options.batch, "kl_per_dim");
  NoGradGuard no_grad;
  EvalModeGuard mode(vae);
  std::vector<double> acc(static_cast<std::size_t>(vae.latent_dim()), 0.0);
  for_shared_batches(vae, x, options.batch, options.group,
                     [&](std::int64_t, const dist::Share&, const Tensor& xb) {
                       if (!xb.defined()) return;
                       const std::vector<double> part =
                           sum(kl_normal_terms(vae.posterior(xb)), 0).to_vector<double>();
                       for (std::size_t j = 0; j < acc.size(); ++j) acc[j] += part[j];
                     });
  acc = reduced(options.group, std::move(acc));
  std::vector<float> out(acc.size());
  for (std::size_t j = 0; j < acc.size(); ++j)
    out[j] = static_cast<float>(acc[j] / static_cast<double>(x.dim(0)));
  return Tensor::from_data(std::span<const float>(out), {vae.latent_dim()});
}

ActiveUnits active_units(Autoencoder& model, const Tensor& x, double threshold,
                         const EvalOptions& options) {
  check_data(model, x, options.batch, "active_units");
  check(threshold >= 0, kWho, "active_units: threshold must be >= 0, got ", threshold);
  const std::vector<float> mu = codes_of_share(model, x, options.batch, options.group);
  const std::int64_t zdim = model.latent_dim();
  const auto n_here = static_cast<std::int64_t>(mu.size()) / zdim;
  const auto n = static_cast<double>(x.dim(0));
  // Two passes in double: the mean first, then squared deviations (no cancellation).
  std::vector<double> mean_j(static_cast<std::size_t>(zdim), 0.0), var(mean_j);
  for (std::int64_t i = 0; i < n_here; ++i)
    for (std::int64_t j = 0; j < zdim; ++j)
      mean_j[static_cast<std::size_t>(j)] += mu[static_cast<std::size_t>(i * zdim + j)];
  mean_j = reduced(options.group, std::move(mean_j));
  for (double& m : mean_j) m /= n;
  for (std::int64_t i = 0; i < n_here; ++i)
    for (std::int64_t j = 0; j < zdim; ++j) {
      const double d =
          mu[static_cast<std::size_t>(i * zdim + j)] - mean_j[static_cast<std::size_t>(j)];
      var[static_cast<std::size_t>(j)] += d * d;
    }
  var = reduced(options.group, std::move(var));
  ActiveUnits result;
  std::vector<float> v(var.size());
  for (std::size_t j = 0; j < var.size(); ++j) {
    v[j] = static_cast<float>(var[j] / n);
    if (var[j] / n > threshold) ++result.count;
  }
  result.variance = Tensor::from_data(std::span<const float>(v), {zdim});
  return result;
}

Tensor export_mu(Autoencoder& model, const Tensor& x, const EvalOptions& options) {
  check_data(model, x, options.batch, "export_mu");
  const std::vector<float> all = codes_of_share(model, x, options.batch, nullptr);
  return Tensor::from_data(std::span<const float>(all), {x.dim(0), model.latent_dim()});
}

Tensor export_mu(Autoencoder& model, const Tensor& x, const std::string& npy_path,
                 const EvalOptions& options) {
  Tensor mu = export_mu(model, x, options);
  data::write_npy(npy_path, mu);
  return mu;
}

}  // namespace latent::models
