// The sparse autoencoder: reconstruction plus a sparsity penalty on the code h [N, Z].
//
//   Sparsity::l1  "l1"          = weight * mean_n sum_j |h_nj|                (any code)
//   Sparsity::kl  "kl_sparsity" = beta * sum_j KL(rho || rho_hat_j), rho_hat_j = mean_n h_nj,
//                                 on a sigmoid code (Ng's sparse autoencoder)
//
//   latent::models::SparseAE sae({.input = 784, .latent = 256, .penalty = Sparsity::kl,
//                                 .rho = 0.05, .beta = 3.0});
//
// The code activation, when left unset, is sigmoid for the KL penalty (it needs activations in
// (0, 1)) and relu for L1 (a non-negative code that L1 drives to exact zeros). Sparse codes are
// often wider than the input, so undercomplete is off by default.
#pragma once

#include "models/autoencoder.h"

namespace latent::models {

enum class Sparsity { l1, kl };

struct SparseAEConfig {
  std::int64_t input = 784;  // D
  std::int64_t latent = 64;  // Z (may exceed D: undercomplete is false by default)
  MLPSpec encoder;
  MLPSpec decoder;
  std::optional<Act> code_activation;  // unset: sigmoid for kl, relu for l1
  std::optional<float> code_activation_alpha;
  LikelihoodConfig likelihood = {.kind = Likelihood::bernoulli};
  Sparsity penalty = Sparsity::l1;
  double weight = 1e-3;  // l1: the penalty's weight, >= 0
  double rho = 0.05;     // kl: the target mean activation, in (0, 1)
  double beta = 1.0;     // kl: the penalty's weight, >= 0
  std::uint64_t seed = 0;
  bool undercomplete = false;
};

// Loss terms: "recon" and the weighted penalty ("l1" or "kl_sparsity"); total = their sum.
class SparseAE : public DeterministicAutoencoder {
 public:
  // Throws latent::Error("[SparseAE] ...") for the AE's config errors and for weight < 0,
  // beta < 0, rho outside (0, 1), and a code activation other than sigmoid with the KL penalty.
  explicit SparseAE(const SparseAEConfig& config, Device device = Device::cpu());

  AEOutput forward(const Tensor& x);
  Loss loss(const AEOutput& out, const Tensor& x) const;
  Loss compute_loss(const Tensor& x) override { return loss(forward(x), x); }

  // The unweighted penalty of a code [N, Z]: mean_n sum_j |h_nj| or sum_j KL(rho || rho_hat_j).
  Tensor penalty(const Tensor& code) const;

  const SparseAEConfig& config() const { return config_; }
  // The KL penalty compares the whole batch's mean activation with rho: across processes the
  // shares' means are reduced (dist::whole_batch_mean).
  std::string unshared_loss() const override { return ""; }

 private:
  SparseAEConfig config_;
};

}  // namespace latent::models
