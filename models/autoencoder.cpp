#include "models/autoencoder.h"

#include <utility>
#include <vector>

namespace latent::models {
namespace {

std::vector<std::int64_t> sizes_of(std::int64_t in, const std::vector<std::int64_t>& hidden,
                                   std::int64_t out) {
  std::vector<std::int64_t> sizes{in};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(out);
  return sizes;
}

}  // namespace

DeterministicAutoencoder::DeterministicAutoencoder(std::string name, DeterministicParts parts,
                                                   Device device)
    : Autoencoder(parts.seed), name_(std::move(name)), parts_(std::move(parts)) {
  const DeterministicParts& p = parts_;
  require(p.input > 0, "input must be positive, got ", p.input);
  require(p.latent > 0, "latent must be positive, got ", p.latent);
  require(!p.undercomplete || p.latent <= p.input, "latent (", p.latent, ") exceeds input (",
          p.input,
          ") in an undercomplete autoencoder; set .undercomplete = false for an overcomplete code");
  for (const auto* spec : {&p.encoder, &p.decoder})
    for (std::int64_t h : spec->hidden)
      require(h > 0, spec == &p.encoder ? "encoder" : "decoder",
              ".hidden: every width must be positive, got ", h);
  try {
    validate(p.likelihood);
  } catch (const Error& e) {
    throw Error(name_, std::string("likelihood: ") + e.what());
  }

  encoder_ = register_module(
      "encoder", std::make_shared<nn::MLP>(
                     nn::MLPConfig{.sizes = sizes_of(p.input, p.encoder.hidden, p.latent),
                                   .activation = p.encoder.activation,
                                   .activation_alpha = p.encoder.activation_alpha,
                                   .output_activation = p.code_activation,
                                   .output_activation_alpha = p.code_activation_alpha,
                                   .device = device},
                     gen_));
  decoder_ = register_module(
      "decoder", std::make_shared<nn::MLP>(
                     nn::MLPConfig{.sizes = sizes_of(p.latent, p.decoder.hidden,
                                                     p.input * params_per_dim(p.likelihood)),
                                   .activation = p.decoder.activation,
                                   .activation_alpha = p.decoder.activation_alpha,
                                   .output_activation = Act::identity,
                                   .device = device},
                     gen_));
}

Tensor DeterministicAutoencoder::encode(const Tensor& x) {
  check_input(x, "encode");
  return encoder_->forward(x);
}

Tensor DeterministicAutoencoder::decode_params(const Tensor& z) {
  check(z.defined() && z.ndim() == 2 && z.dim(1) == parts_.latent, name_,
        "decode: expected a code [N, ", parts_.latent, "], got ",
        z.defined() ? z.shape().str() : std::string("an undefined tensor"));
  return decoder_->forward(z);
}

bool DeterministicAutoencoder::is_linear() const {
  const auto affine = [](const MLPSpec& s) {
    return s.hidden.empty() || s.activation == Act::identity;
  };
  return affine(parts_.encoder) && affine(parts_.decoder) &&
         parts_.code_activation == Act::identity;
}

Tensor DeterministicAutoencoder::reconstruction_loss(const Tensor& params, const Tensor& x) const {
  check_input(x, "loss");
  return nll_mean(parts_.likelihood, params, x);
}

// ---- AE ----------------------------------------------------------------------------------------

AEConfig AEConfig::linear(std::int64_t input, std::int64_t latent, double sigma,
                          std::uint64_t seed) {
  return AEConfig{.input = input,
                  .latent = latent,
                  .encoder = {.hidden = {}, .activation = Act::identity},
                  .decoder = {.hidden = {}, .activation = Act::identity},
                  .code_activation = Act::identity,
                  .likelihood = {.kind = Likelihood::gaussian, .sigma = sigma},
                  .seed = seed};
}

AE::AE(const AEConfig& config, Device device)
    : DeterministicAutoencoder(
          "AE",
          DeterministicParts{.input = config.input,
                             .latent = config.latent,
                             .encoder = config.encoder,
                             .decoder = config.decoder,
                             .code_activation = config.code_activation,
                             .code_activation_alpha = config.code_activation_alpha,
                             .likelihood = config.likelihood,
                             .seed = config.seed,
                             .undercomplete = config.undercomplete},
          device),
      config_(config) {}

AEOutput AE::forward(const Tensor& x) {
  const Tensor code = encode(x);
  return {code, decode_params(code)};
}

Loss AE::loss(const AEOutput& out, const Tensor& x) const {
  const Tensor recon = reconstruction_loss(out.params, x);
  return {recon, {{"recon", recon}}};
}

}  // namespace latent::models
