#include "models/denoising.h"

#include <cmath>

namespace latent::models {
namespace {

constexpr const char* kName = "DenoisingAE";

DeterministicParts parts_of(const DenoisingAEConfig& c) {
  const CorruptionConfig& k = c.corruption;
  switch (k.kind) {
    case Corruption::gaussian:
      check(std::isfinite(k.sigma) && k.sigma >= 0.0, kName,
            "corruption.sigma must be finite and >= 0, got ", k.sigma);
      break;
    case Corruption::masking:
    case Corruption::salt_and_pepper:
      check(k.p >= 0.0 && k.p <= 1.0, kName, "corruption.p must lie in [0, 1], got ", k.p, " (",
            corruption_name(k.kind), ")");
      break;
    default:
      throw Error(kName, detail::cat("unknown corruption kind ", static_cast<int>(k.kind)));
  }
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

const char* corruption_name(Corruption kind) {
  switch (kind) {
    case Corruption::gaussian:
      return "gaussian";
    case Corruption::masking:
      return "masking";
    case Corruption::salt_and_pepper:
      return "salt_and_pepper";
  }
  return "?";
}

DenoisingAE::DenoisingAE(const DenoisingAEConfig& config, Device device)
    : DeterministicAutoencoder(kName, parts_of(config), device), config_(config) {}

Tensor DenoisingAE::corrupt(const Tensor& x) {
  check_input(x, "corrupt");
  const CorruptionConfig& k = config_.corruption;
  switch (k.kind) {
    case Corruption::gaussian:
      return gaussian_noise(x, k.sigma, gen_);
    case Corruption::masking:
      return masking_noise(x, k.p, gen_);
    case Corruption::salt_and_pepper:
      return salt_and_pepper(x, k.p, gen_);
  }
  throw Error(kName, "unknown corruption kind");
}

DenoisingAEOutput DenoisingAE::forward(const Tensor& x) {
  check_input(x, "forward");
  return forward(x, is_training() ? corrupt(x) : x);
}

DenoisingAEOutput DenoisingAE::forward(const Tensor& x, const Tensor& corrupted) {
  check_input(x, "forward");
  check(corrupted.defined() && corrupted.shape() == x.shape(), kName,
        "forward: the corrupted input must have x's shape ", x.shape().str(), ", got ",
        corrupted.defined() ? corrupted.shape().str() : std::string("an undefined tensor"));
  const Tensor code = encode(corrupted);
  return {corrupted, code, decode_params(code)};
}

Loss DenoisingAE::loss(const DenoisingAEOutput& out, const Tensor& x) const {
  const Tensor recon = reconstruction_loss(out.params, x);
  return {recon, {{"recon", recon}}};
}

}  // namespace latent::models
