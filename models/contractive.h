// The contractive autoencoder (Rifai et al., 2011): reconstruction plus lambda times the squared
// Frobenius norm of the encoder's Jacobian, ||df/dx||_F^2, averaged over the batch.
//
//   latent::models::ContractiveAE cae({.input = 784, .latent = 64, .lambda = 0.1});
//
// The penalty is exact for any encoder depth. A one-layer encoder f = act(x W^T + b) uses the
// closed form sum_j act'(pre_j)^2 ||W_j||^2 (contractive_penalty, one fused kernel); a deeper one
// propagates the Jacobian chain D_L W_L ... D_1 W_1 for the whole batch (jacobian_penalty). The
// code activation is the encoder's last activation (sigmoid by default, as in the paper).
#pragma once

#include <vector>

#include "models/autoencoder.h"

namespace latent::models {

struct ContractiveAEConfig {
  std::int64_t input = 784;  // D
  std::int64_t latent = 32;  // Z; at most D unless undercomplete is false
  // One dense layer by default (the classic CAE); any hidden widths give a deep encoder.
  MLPSpec encoder = {.hidden = {}, .activation = Act::sigmoid};
  MLPSpec decoder;
  Act code_activation = Act::sigmoid;
  std::optional<float> code_activation_alpha;
  LikelihoodConfig likelihood = {.kind = Likelihood::bernoulli};
  double lambda = 0.1;  // the penalty's weight, >= 0
  std::uint64_t seed = 0;
  bool undercomplete = true;
};

struct ContractiveAEOutput {
  Tensor code;                  // [N, Z]
  Tensor params;                // [N, D*m], the decoder's likelihood parameters
  std::vector<Tensor> preacts;  // every encoder layer's pre-activation x W^T + b, in layer order
};

// Loss terms: "recon" and "contractive" = lambda * mean_n ||df/dx (x_n)||_F^2; total = their sum.
class ContractiveAE : public DeterministicAutoencoder {
 public:
  // Throws latent::Error("[ContractiveAE] ...") for the AE's config errors and lambda < 0.
  explicit ContractiveAE(const ContractiveAEConfig& config, Device device = Device::cpu());

  // x [N, D] -> {code, params, preacts}.
  ContractiveAEOutput forward(const Tensor& x);
  Loss loss(const ContractiveAEOutput& out, const Tensor& x) const;
  Loss compute_loss(const Tensor& x) override { return loss(forward(x), x); }

  // ||df/dx||_F^2 of the encoder at the inputs forward() saw, unweighted, reduced over samples
  // as `reduction` says (none -> [N]). Differentiable w.r.t. the encoder's parameters.
  Tensor jacobian_norm(const ContractiveAEOutput& out,
                       Reduction reduction = Reduction::batch_mean) const;
  // Whether the penalty uses the one-layer closed form.
  bool closed_form() const { return encoder().num_layers() == 1; }

  const ContractiveAEConfig& config() const { return config_; }

 private:
  ContractiveAEConfig config_;
};

}  // namespace latent::models
