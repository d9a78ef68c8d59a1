#include "models/iwae.h"

namespace latent::models {

VAEConfig vae_config(const IWAEConfig& c) {
  check(c.k >= 1, "iwae", "k must be at least 1, got ", c.k);
  return VAEConfig{.input = c.input,
                   .hidden = c.hidden,
                   .latent = c.latent,
                   .activation = c.activation,
                   .activation_alpha = c.activation_alpha,
                   .likelihood = c.likelihood,
                   .samples = c.k,
                   .seed = c.seed};
}

IWAE::IWAE(const IWAEConfig& config, Device device) : VAE(vae_config(config), device, "iwae") {}

Tensor IWAE::bound(const VAEOutput& out, const Tensor& x) {
  Tensor lw = log_weights(out, x);  // [R*N], row r*N + n
  const std::int64_t n = x.dim(0);
  // [R, N]: column n holds the R weights of input n.
  return logmeanexp(lw.reshape({lw.dim(0) / n, n}), 0);
}

Loss IWAE::loss(const VAEOutput& out, const Tensor& x) {
  Tensor neg_bound = neg(mean(bound(out, x)));
  Loss result;
  result.total = neg_bound;
  result.terms = {{"neg_bound", neg_bound}};
  return result;
}

}  // namespace latent::models
