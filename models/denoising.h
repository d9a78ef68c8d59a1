// The denoising autoencoder (Vincent et al., 2008): the encoder sees a corrupted input x~, the
// loss asks the decoder for the CLEAN x.
//
//   latent::models::DenoisingAE dae({.input = 784, .latent = 64,
//                                    .corruption = {.kind = Corruption::masking, .p = 0.3}});
//   Loss l = dae.compute_loss(x);   // training mode: x~ = masking_noise(x, 0.3), -log p(x | x~)
//   dae.eval();                     // evaluation: no noise, forward(x) encodes x itself
//
// Corruption happens only in training mode (is_training()), drawing from the model's generator,
// so seeded runs repeat exactly; forward(x, corrupted) injects a corrupted input instead.
#pragma once

#include "models/autoencoder.h"

namespace latent::models {

enum class Corruption { gaussian, masking, salt_and_pepper };

const char* corruption_name(Corruption kind);

struct CorruptionConfig {
  Corruption kind = Corruption::masking;
  double p = 0.25;     // masking / salt_and_pepper: probability of corrupting an entry, in [0, 1]
  double sigma = 0.1;  // gaussian: the noise's standard deviation, >= 0
};

struct DenoisingAEConfig {
  std::int64_t input = 784;  // D
  std::int64_t latent = 32;  // Z; at most D unless undercomplete is false
  MLPSpec encoder;
  MLPSpec decoder;
  Act code_activation = Act::identity;
  std::optional<float> code_activation_alpha;
  LikelihoodConfig likelihood = {.kind = Likelihood::bernoulli};
  CorruptionConfig corruption;
  std::uint64_t seed = 0;
  bool undercomplete = true;
};

struct DenoisingAEOutput {
  Tensor input;   // [N, D], what the encoder saw: the corrupted input (x itself in eval mode)
  Tensor code;    // [N, Z]
  Tensor params;  // [N, D*m], the decoder's likelihood parameters
};

// Loss terms: "recon" = -log p(x | decoder(encoder(x~))) per example, x the clean input.
class DenoisingAE : public DeterministicAutoencoder {
 public:
  // Throws latent::Error("[DenoisingAE] ...") for the AE's config errors and for p outside
  // [0, 1] or sigma < 0 (naming corruption.p / corruption.sigma).
  explicit DenoisingAE(const DenoisingAEConfig& config, Device device = Device::cpu());

  // The configured corruption of x [N, D], drawn from the model's generator whatever the mode.
  Tensor corrupt(const Tensor& x);

  // Training mode: corrupts x, then encodes and decodes; eval mode: encodes x as it is.
  DenoisingAEOutput forward(const Tensor& x);
  // Encodes and decodes a given corrupted input [N, D] (any mode, no noise drawn).
  DenoisingAEOutput forward(const Tensor& x, const Tensor& corrupted);
  // {total = recon, terms: "recon"}; x is the clean batch.
  Loss loss(const DenoisingAEOutput& out, const Tensor& x) const;
  Loss compute_loss(const Tensor& x) override { return loss(forward(x), x); }

  const DenoisingAEConfig& config() const { return config_; }

 private:
  DenoisingAEConfig config_;
};

}  // namespace latent::models
