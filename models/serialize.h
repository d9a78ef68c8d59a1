// A VAE's configuration as checkpoint metadata, so that a tool can rebuild the model from a
// checkpoint file alone:
//
//   latent::save(vae, "vae.safetensors", latent::models::to_metadata(vae.config()));
//   ...
//   std::unique_ptr<latent::models::VAE> again = latent::models::load_vae("vae.safetensors");
//
// Keys (values are decimal text; doubles with 17 significant digits, so they read back exactly):
//   latent.model                 "vae"
//   latent.vae.input             D
//   latent.vae.hidden            encoder widths, comma-separated ("512,256"; "" for none)
//   latent.vae.latent            Z
//   latent.vae.activation        "relu", "tanh", ... (ops::act_name)
//   latent.vae.activation_alpha  only when the config sets activation_alpha
//   latent.vae.likelihood        "bernoulli", "gaussian", "gaussian_learned", "categorical"
//   latent.vae.sigma             the Gaussian's fixed sigma
//   latent.vae.levels            the categorical's K
//   latent.vae.samples           R
//   latent.vae.beta, latent.vae.free_bits, latent.vae.seed
//   latent.vae.warmup            "constant", "linear" or "cyclical"
//   latent.vae.warmup_steps, latent.vae.warmup_ratio
#pragma once

#include <memory>
#include <string>

#include "core/latent.h"
#include "models/vae.h"

namespace latent::models {

Metadata to_metadata(const VAEConfig& config);

// The config written by to_metadata() (other keys are ignored). Throws latent::Error
// "[vae] checkpoint metadata ..." for a latent.model other than "vae", a missing key, or a value
// that does not parse (naming the key and the value); the values themselves are checked when the
// VAE is built.
VAEConfig vae_config_from_metadata(const Metadata& metadata);

// Builds a VAE on `device` from a checkpoint's metadata and loads its parameters (latent::load).
// Throws what read_metadata(), vae_config_from_metadata(), the VAE constructor and load() throw.
std::unique_ptr<VAE> load_vae(const std::string& path, Device device = Device::cpu());

}  // namespace latent::models
