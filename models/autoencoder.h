// Deterministic autoencoders: the plain (undercomplete) AE, and the base its regularized
// relatives (DenoisingAE, SparseAE, ContractiveAE) share.
//
//   latent::models::AE ae({.input = 784, .latent = 32,
//                          .encoder = {.hidden = {256}}, .decoder = {.hidden = {256}},
//                          .likelihood = {.kind = latent::models::Likelihood::bernoulli}});
//   auto out = ae.forward(x);          // out.code [N, 32], out.params [N, 784] (logits)
//   auto loss = ae.loss(out, x);       // total = "recon": the NLL in nats per example
//
// The encoder is an nn::MLP input -> hidden... -> latent whose last activation is the code
// activation; the decoder an nn::MLP latent -> hidden... -> input * m with no output activation,
// giving the likelihood's parameters (m columns per input dimension, models/likelihood.h).
// They are registered as submodules "encoder" and "decoder" and initialized from the model's
// generator (seeded by the config), so two models built with one seed start identical.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "models/model.h"

namespace latent::models {

// The parts every deterministic autoencoder's config has (each model's own config maps onto it).
struct DeterministicParts {
  std::int64_t input = 784;
  std::int64_t latent = 32;
  MLPSpec encoder;
  MLPSpec decoder;
  Act code_activation = Act::identity;
  std::optional<float> code_activation_alpha;
  LikelihoodConfig likelihood;
  std::uint64_t seed = 0;
  bool undercomplete = true;
};

// What forward() returns for AE and SparseAE.
struct AEOutput {
  Tensor code;    // [N, Z], after the code activation
  Tensor params;  // [N, D*m], the decoder's likelihood parameters (logits, means, ...)
};

// The shared body: builds and validates the encoder and decoder, encodes, decodes and computes
// the reconstruction term. Not used directly: see AE and the models built on it.
class DeterministicAutoencoder : public Autoencoder {
 public:
  std::string name() const override { return name_; }
  std::int64_t input_dim() const override { return parts_.input; }
  std::int64_t latent_dim() const override { return parts_.latent; }
  const LikelihoodConfig& likelihood() const override { return parts_.likelihood; }

  // Its training step reads nothing from the host (the denoising AE's corruption is drawn at
  // offsets in memory).
  bool replayable_step() const override { return true; }
  // The reconstruction and every penalty but the KL sparsity one are means over rows.
  std::string unshared_loss() const override { return ""; }

  // x [N, D] -> code [N, Z]. Throws latent::Error (naming the model) for another input width.
  Tensor encode(const Tensor& x) override;
  // z [N, Z] -> likelihood parameters [N, D*m]. Throws for another code width.
  Tensor decode_params(const Tensor& z) override;

  nn::MLP& encoder() { return *encoder_; }
  nn::MLP& decoder() { return *decoder_; }
  const nn::MLP& encoder() const { return *encoder_; }
  const nn::MLP& decoder() const { return *decoder_; }
  const DeterministicParts& parts() const { return parts_; }

  // True when every activation (hidden layers of both networks and the code) is the identity:
  // encoder and decoder are then affine maps, and with a Gaussian likelihood the optimum spans
  // the same subspace as PCA's top `latent` components.
  bool is_linear() const;

  // The reconstruction term: the likelihood's NLL of x under params, averaged over the batch
  // (nats per example). params [N, D*m], x [N, D].
  Tensor reconstruction_loss(const Tensor& params, const Tensor& x) const;

 protected:
  // Validates parts (throwing latent::Error "[<name>] <field> ...": non-positive sizes, a hidden
  // width <= 0, latent > input when undercomplete, an invalid likelihood) and builds the networks
  // on `device`.
  DeterministicAutoencoder(std::string name, DeterministicParts parts, Device device);

  // Throws latent::Error("[<name>] ...") unless cond holds: the models' config checks.
  template <class... Args>
  void require(bool cond, const Args&... args) const {
    check(cond, name_, args...);
  }

 private:
  std::string name_;
  DeterministicParts parts_;
  std::shared_ptr<nn::MLP> encoder_;
  std::shared_ptr<nn::MLP> decoder_;
};

// ---- AE ----------------------------------------------------------------------------------------

struct AEConfig {
  std::int64_t input = 784;  // D
  std::int64_t latent = 32;  // Z; at most D unless undercomplete is false
  MLPSpec encoder;           // hidden widths / activation of the encoder (D -> ... -> Z)
  MLPSpec decoder;           // and of the decoder (Z -> ... -> D*m)
  Act code_activation = Act::identity;
  std::optional<float> code_activation_alpha;
  LikelihoodConfig likelihood = {.kind = Likelihood::bernoulli};
  std::uint64_t seed = 0;
  bool undercomplete = true;  // refuse latent > input

  // The linear autoencoder: no hidden layers, identity activations, a Gaussian likelihood with
  // fixed sigma. Trained to convergence it reaches PCA's reconstruction error.
  static AEConfig linear(std::int64_t input, std::int64_t latent, double sigma = 1.0,
                         std::uint64_t seed = 0);
};

// The plain autoencoder: loss = "recon" only.
class AE : public DeterministicAutoencoder {
 public:
  // Throws latent::Error("[AE] ...") naming the field: a non-positive input, latent or hidden
  // width, latent > input while undercomplete, an invalid likelihood (sigma <= 0, levels < 2).
  explicit AE(const AEConfig& config, Device device = Device::cpu());

  // x [N, D] -> {code, params}.
  AEOutput forward(const Tensor& x);
  // {total = recon, terms: "recon"}; x is the batch forward() saw.
  Loss loss(const AEOutput& out, const Tensor& x) const;
  Loss compute_loss(const Tensor& x) override { return loss(forward(x), x); }

  const AEConfig& config() const { return config_; }

 private:
  AEConfig config_;
};

}  // namespace latent::models
