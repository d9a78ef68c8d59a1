#include "models/contractive.h"

#include <cmath>

namespace latent::models {
namespace {

constexpr const char* kName = "ContractiveAE";

DeterministicParts parts_of(const ContractiveAEConfig& c) {
  check(std::isfinite(c.lambda) && c.lambda >= 0.0, kName,
        "lambda (weight of the contractive penalty) must be finite and >= 0, got ", c.lambda);
  return {.input = c.input,
          .latent = c.latent,
          .encoder = c.encoder,
          .decoder = c.decoder,
          .code_activation = c.code_activation,
          .code_activation_alpha = c.code_activation_alpha,
          .likelihood = c.likelihood,
          .seed = c.seed,
          .undercomplete = c.undercomplete};
}

}  // namespace

ContractiveAE::ContractiveAE(const ContractiveAEConfig& config, Device device)
    : DeterministicAutoencoder(kName, parts_of(config), device), config_(config) {}

ContractiveAEOutput ContractiveAE::forward(const Tensor& x) {
  check_input(x, "forward");
  ContractiveAEOutput out;
  out.code = encoder().forward_with_preacts(x, &out.preacts);
  out.params = decode_params(out.code);
  return out;
}

Tensor ContractiveAE::jacobian_norm(const ContractiveAEOutput& out, Reduction reduction) const {
  const nn::MLP& enc = encoder();
  check(out.preacts.size() == enc.num_layers(), kName, "jacobian_norm: expected ", enc.num_layers(),
        " pre-activations (one per encoder layer, from forward()), got ", out.preacts.size());
  if (closed_form())
    return contractive_penalty(out.preacts[0], enc.layer(0).weight(), enc.activation_of(0),
                               reduction);
  std::vector<Tensor> weights;
  std::vector<ActParams> acts;
  for (std::size_t l = 0; l < enc.num_layers(); ++l) {
    weights.push_back(enc.layer(l).weight());
    acts.push_back(enc.activation_of(l));
  }
  return jacobian_penalty(weights, out.preacts, acts, reduction);
}

Loss ContractiveAE::loss(const ContractiveAEOutput& out, const Tensor& x) const {
  const Tensor recon = reconstruction_loss(out.params, x);
  const Tensor pen = mul(jacobian_norm(out), config_.lambda);
  return {add(recon, pen), {{"recon", recon}, {"contractive", pen}}};
}

}  // namespace latent::models
