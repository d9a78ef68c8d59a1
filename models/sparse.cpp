#include "models/sparse.h"

#include <cmath>

namespace latent::models {
namespace {

constexpr const char* kName = "SparseAE";

DeterministicParts parts_of(const SparseAEConfig& c) {
  Act code = Act::relu;
  switch (c.penalty) {
    case Sparsity::l1:
      check(std::isfinite(c.weight) && c.weight >= 0.0, kName,
            "weight (of the L1 penalty) must be finite and >= 0, got ", c.weight);
      code = c.code_activation.value_or(Act::relu);
      break;
    case Sparsity::kl:
      check(std::isfinite(c.beta) && c.beta >= 0.0, kName,
            "beta (weight of the KL sparsity penalty) must be finite and >= 0, got ", c.beta);
      check(c.rho > 0.0 && c.rho < 1.0, kName, "rho must lie in (0, 1), got ", c.rho);
      // rho_hat is a mean activation compared with a probability: only a sigmoid code is in (0, 1).
      check(!c.code_activation || *c.code_activation == Act::sigmoid, kName,
            "the KL sparsity penalty needs a sigmoid code, got code_activation = ",
            act_name(c.code_activation.value_or(Act::sigmoid)), " (leave it unset or use sigmoid)");
      code = Act::sigmoid;
      break;
    default:
      throw Error(kName, detail::cat("unknown sparsity penalty ", static_cast<int>(c.penalty)));
  }
  return {.input = c.input,
          .latent = c.latent,
          .encoder = c.encoder,
          .decoder = c.decoder,
          .code_activation = code,
          .code_activation_alpha = c.code_activation_alpha,
          .likelihood = c.likelihood,
          .seed = c.seed,
          .undercomplete = c.undercomplete};
}

}  // namespace

SparseAE::SparseAE(const SparseAEConfig& config, Device device)
    : DeterministicAutoencoder(kName, parts_of(config), device), config_(config) {}

AEOutput SparseAE::forward(const Tensor& x) {
  const Tensor code = encode(x);
  return {code, decode_params(code)};
}

Tensor SparseAE::penalty(const Tensor& code) const {
  check(code.defined() && code.ndim() == 2 && code.dim(1) == latent_dim(), kName,
        "penalty: expected a code [N, ", latent_dim(), "], got ",
        code.defined() ? code.shape().str() : std::string("an undefined tensor"));
  if (config_.penalty == Sparsity::l1) return l1_penalty(code, Reduction::batch_mean);
  if (dist::shared_batch() == nullptr) return kl_sparsity(code, config_.rho);
  // A share of a batch: kl_sparsity's formula on the whole batch's mean activation
  // (dist::whole_batch_mean), clamped alike.
  const double rho = config_.rho;
  const Tensor rho_hat = clamp(dist::whole_batch_mean(mean(code, 0)), 1e-6, 1.0 - 1e-6);
  // Per unit: rho log rho + (1 - rho) log(1 - rho) - rho log rho_hat - (1 - rho) log(1 - rho_hat).
  const double entropy_part = rho * std::log(rho) + (1.0 - rho) * std::log(1.0 - rho);
  const Tensor terms = add(mul(log(rho_hat), -rho), mul(log(rsub(1.0, rho_hat)), -(1.0 - rho)));
  return sum(add(terms, entropy_part));
}

Loss SparseAE::loss(const AEOutput& out, const Tensor& x) const {
  const Tensor recon = reconstruction_loss(out.params, x);
  const bool l1 = config_.penalty == Sparsity::l1;
  const Tensor pen = mul(penalty(out.code), l1 ? config_.weight : config_.beta);
  return {add(recon, pen), {{"recon", recon}, {l1 ? "l1" : "kl_sparsity", pen}}};
}

}  // namespace latent::models
