// The importance-weighted autoencoder (Burda et al. 2016): the VAE's architecture trained on the
// k-sample importance-weighted bound instead of the ELBO.
//
//   log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),   z_1..z_k ~ q(z|x) (reparametrized)
//   L_k(x)  = log (1/k) sum_i w_i                         (log-mean-exp, stable)
//   loss    = -1/N sum_n L_k(x_n)                         term "neg_bound"
//
// L_1 is the ELBO (with the KL estimated by sampling), L_k <= L_{k+1} <= log p(x) in expectation,
// and L_k -> log p(x) as k grows. Every density carries its normalizing constant, so the bound is
// a log-likelihood in nats. An IWAE is a VAE (same encoder, decoder, forward with k samples,
// encode/decode, evaluation and generation functions); only loss() differs.
//
// Errors: those of VAE ("[iwae] ..."), and k < 1.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "models/vae.h"

namespace latent::models {

struct IWAEConfig {
  std::int64_t input = 784;
  std::vector<std::int64_t> hidden = {512, 256};
  std::int64_t latent = 32;
  Act activation = Act::relu;
  std::optional<float> activation_alpha;
  LikelihoodArg likelihood;
  std::int64_t k = 5;  // importance samples per input (>= 1)
  std::uint64_t seed = 0;
};

// The VAE an IWAE is: its architecture, likelihood and seed, with k samples per input. Throws
// latent::Error for k < 1.
VAEConfig vae_config(const IWAEConfig& config);

class IWAE : public VAE {
 public:
  explicit IWAE(const IWAEConfig& config, Device device = Device::cpu());

  std::int64_t k() const { return config().samples; }

  // The per-input bound L_R(x_n) [N] for an output with R samples per input (forward() draws k).
  Tensor bound(const VAEOutput& out, const Tensor& x);
  // -mean(bound); the single term "neg_bound".
  Loss loss(const VAEOutput& out, const Tensor& x) override;
  // The per-sample bound reads a categorical likelihood's levels on the host (nll() checks the
  // data): those steps run eagerly; every other likelihood's replay.
  bool replayable_step() const override {
    return config().likelihood.kind != Likelihood::categorical;
  }
  // The bound has no KL weight: the IWAE keeps no step count.
  void on_step_event(StepEvent /*event*/) override {}
};

}  // namespace latent::models
