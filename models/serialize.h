// A model's configuration as checkpoint metadata, so that a tool can rebuild any model of the
// family from a checkpoint file alone:
//
//   latent::save(model, "model.safetensors", latent::models::to_metadata(model));
//   ...
//   std::unique_ptr<latent::models::Autoencoder> again = latent::models::load("model.safetensors");
//
// "latent.model" names the kind, and the configuration follows under "latent.<kind>." (values are
// decimal text; doubles with 17 significant digits, so they read back exactly):
//   kind  model                     configuration
//   ae    AE (and the linear AE)    AEConfig
//   dae   DenoisingAE               DenoisingAEConfig
//   sae   SparseAE                  SparseAEConfig
//   cae   ContractiveAE             ContractiveAEConfig
//   vae   VAE (and beta-VAE)        VAEConfig
//   iwae  IWAE                      IWAEConfig
// The VAE's keys:
//   latent.vae.input             D
//   latent.vae.hidden            encoder widths, comma-separated ("512,256"; "" for none)
//   latent.vae.latent            Z
//   latent.vae.activation        "relu", "tanh", ... (ops::act_name)
//   latent.vae.activation_alpha  only when the config sets activation_alpha
//   latent.vae.likelihood        "bernoulli", "continuous_bernoulli", "gaussian",
//                                "gaussian_learned", "categorical"
//   latent.vae.sigma             the Gaussian's fixed sigma
//   latent.vae.levels            the categorical's K
//   latent.vae.samples           R
//   latent.vae.beta, latent.vae.free_bits, latent.vae.seed
//   latent.vae.warmup            "constant", "linear" or "cyclical"
//   latent.vae.warmup_steps, latent.vae.warmup_ratio
// The IWAE's: input, hidden, latent, activation, activation_alpha, likelihood, sigma, levels, k,
// seed. The deterministic autoencoders': input, latent, encoder.hidden, encoder.activation,
// encoder.activation_alpha, decoder.* likewise, code_activation, code_activation_alpha,
// likelihood, sigma, levels, seed, undercomplete ("true"/"false"); the alphas only when set. And
// of their own: dae corruption ("gaussian", "masking", "salt_and_pepper"), corruption_p,
// corruption_sigma; sae penalty ("l1", "kl"), weight, rho, beta, and code_activation may be
// absent (the penalty's default); cae lambda.
#pragma once

#include <memory>
#include <string>

#include "core/latent.h"
#include "models/contractive.h"
#include "models/denoising.h"
#include "models/iwae.h"
#include "models/sparse.h"
#include "models/vae.h"

namespace latent::models {

Metadata to_metadata(const VAEConfig& config);
Metadata to_metadata(const IWAEConfig& config);
Metadata to_metadata(const AEConfig& config);
Metadata to_metadata(const DenoisingAEConfig& config);
Metadata to_metadata(const SparseAEConfig& config);
Metadata to_metadata(const ContractiveAEConfig& config);
// The metadata of whichever model `model` is (one of the kinds above); throws latent::Error for an
// autoencoder of another kind (one defined outside the library).
Metadata to_metadata(const Autoencoder& model);

// The kind a checkpoint's metadata names ("ae", ..., "iwae"). Throws latent::Error "[load] ..."
// when "latent.model" is missing or names no kind of the table above.
std::string model_kind(const Metadata& metadata);

// The config written by to_metadata() (other keys are ignored). Each throws latent::Error
// "[<kind>] checkpoint metadata ..." for a latent.model of another kind, a missing key, or a
// value that does not parse (naming the key and the value); the values themselves are checked
// when the model is built.
VAEConfig vae_config_from_metadata(const Metadata& metadata);
IWAEConfig iwae_config_from_metadata(const Metadata& metadata);
AEConfig ae_config_from_metadata(const Metadata& metadata);
DenoisingAEConfig dae_config_from_metadata(const Metadata& metadata);
SparseAEConfig sae_config_from_metadata(const Metadata& metadata);
ContractiveAEConfig cae_config_from_metadata(const Metadata& metadata);

// Builds whichever model a checkpoint's metadata describes on `device` and loads its parameters
// (latent::load). The layers the configuration implies are checked against the file's tensors
// before the model is built, so a damaged or hostile file costs no memory for what its metadata
// merely claims. Throws what read_metadata(), the *_from_metadata functions, the model's
// constructor and load() throw, and "[load] <path>: its metadata describes a model with <tensor>
// <shape>, but the file holds ...".
std::unique_ptr<Autoencoder> load(const std::string& path, Device device = Device::cpu());

// The same for a file that must hold a VAE (or an IWAE, which is one); any other kind throws.
std::unique_ptr<VAE> load_vae(const std::string& path, Device device = Device::cpu());

}  // namespace latent::models
