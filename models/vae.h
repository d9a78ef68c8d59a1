// The variational autoencoder (Kingma & Welling) and its beta-VAE variants.
//
//   latent::models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32,
//                            .likelihood = latent::models::Likelihood::bernoulli, .beta = 1.0},
//                            dev);
//   auto loss = vae.loss(vae.forward(x), x);          // total = recon + kl
//
// Architecture: an encoder MLP input -> hidden... -> 2Z producing h = (mu | logvar) for the
// diagonal Gaussian posterior q(z|x), and a decoder MLP Z -> reversed hidden... -> the likelihood's
// parameters (D * params_per_dim columns, layouts in models/likelihood.h). Log-variances are
// clamped to [kLogvarMin, kLogvarMax] wherever they are used (core/ops/vae.h).
//
// Objective (a batch x [N, D], R = `samples` Monte Carlo draws z_r ~ q(z|x) per example):
//   recon = 1/(R N) sum_{r,n} -log p(x_n | z_{r,n})                   (nats)
//   kl    = w * sum_j max(free_bits, 1/N sum_n KL_{n,j})               (KL to N(0, I), closed form)
//   total = recon + kl
// with w = beta * schedule(step). With beta = 1, no warm-up and no free bits, total is the negative
// ELBO (the usual VAE). beta-VAE (Higgins et al.) is the same model with beta != 1, optionally with
// a KL warm-up or cyclical annealing schedule and free bits (Kingma et al. 2016): `BetaVAE` is an
// alias of VAE, not a separate class.
//
// Noise: in training mode the draws come from the model's generator() (seeded by config.seed), so
// seeded runs repeat exactly. In evaluation mode forward() still samples (the ELBO needs z), from a
// second stream of the same seed, so evaluating between training steps does not shift the training
// noise. forward(x, eps) takes the noise explicitly.
//
// Errors (latent::Error "[vae] ..." naming the field or the shapes): input, latent or a hidden
// width < 1, samples < 1, beta < 0, free_bits < 0, a warm-up schedule with steps < 1 or ratio
// outside (0, 1], an invalid likelihood (sigma <= 0, levels < 2), and an input that is not [N,
// input].
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"

namespace latent::models {

// A likelihood as a VAE config field: accepts the enum alone (`.likelihood = Likelihood::gaussian`)
// or a full LikelihoodConfig (`.likelihood = LikelihoodConfig{.kind = ..., .sigma = 0.1}`).
// (Not an aggregate, so the type must be named for the designated form: a bare
// `{.kind = ..., .sigma = ...}` does not compile here.)
struct LikelihoodArg : LikelihoodConfig {
  LikelihoodArg() = default;
  LikelihoodArg(Likelihood k) : LikelihoodConfig{.kind = k} {}                 // NOLINT
  LikelihoodArg(const LikelihoodConfig& config) : LikelihoodConfig(config) {}  // NOLINT
};

// How the KL weight moves from 0 to beta over training, with the model's training step:
//   constant   weight beta at every step
//   linear     warm-up: beta * min(1, step / steps), 0 at step 0, beta from `steps` on
//   cyclical   annealing (Fu et al. 2019): cycles of `steps` steps; within each, the weight rises
//              linearly from 0 to beta over the first `ratio` of the cycle, then stays at beta
// The model counts its training steps itself: it starts at 0 and every loss computed in training
// mode (a step) counts one, so a loop of its own needs no call for the schedule to move;
// on_train_step(step) sets the count (the Trainer calls it before each step with its global
// step, which after the first call is where the count already stands).
enum class KlAnneal { constant, linear, cyclical };

struct KlSchedule {
  KlAnneal kind = KlAnneal::constant;
  std::int64_t steps = 1000;  // linear: warm-up length; cyclical: cycle length (>= 1)
  double ratio = 0.5;         // cyclical: rising fraction of each cycle, in (0, 1]

  // The factor in [0, 1] multiplying beta at a (0-based) training step.
  double factor(std::int64_t step) const;
  // The schedule as the loss's kernel evaluates it, times beta.
  kernels::Ramp ramp(double beta) const;
};

struct VAEConfig {
  std::int64_t input = 784;
  std::vector<std::int64_t> hidden = {512, 256};  // encoder widths; the decoder mirrors them
  std::int64_t latent = 32;                       // Z
  Act activation = Act::relu;
  std::optional<float> activation_alpha;  // leaky_relu slope / elu alpha (see nn::MLPConfig)
  LikelihoodArg likelihood;               // p(x|z); Bernoulli on logits by default
  std::int64_t samples = 1;               // R Monte Carlo samples of z per input in the ELBO
  double beta = 1.0;                      // weight of the KL term (>= 0)
  KlSchedule warmup;                      // how the KL weight reaches beta
  double free_bits = 0.0;                 // nats per latent dimension (>= 0)
  std::uint64_t seed = 0;                 // initial weights and noise
};

// Named outputs of forward(). R = z.dim(0) / N samples.
struct VAEOutput {
  Tensor h;       // [N, 2Z] encoder output (mu | logvar)
  Tensor mu;      // [N, Z]
  Tensor logvar;  // [N, Z] as the encoder produced it (unclamped)
  Tensor z;       // [R*N, Z], row r*N + n is sample r of input n
  Tensor params;  // [R*N, P] the decoder's likelihood parameters for each z
  // The batch-mean KL of q(z|x) to the prior, when drawn together with z (reparametrize_kl, as
  // compute_loss does); undefined otherwise.
  Tensor kl;
};

class VAE : public Autoencoder {
 public:
  // Parameters "encoder.layers.*", "decoder.layers.*" on `device`, drawn from the seed.
  explicit VAE(const VAEConfig& config, Device device = Device::cpu());

  std::string name() const override { return name_; }
  std::int64_t input_dim() const override { return config_.input; }
  std::int64_t latent_dim() const override { return config_.latent; }
  const LikelihoodConfig& likelihood() const override { return config_.likelihood; }
  const VAEConfig& config() const { return config_; }

  // h = (mu | logvar) [N, 2Z] for x [N, D].
  Tensor posterior(const Tensor& x);
  // The posterior mean mu [N, Z].
  Tensor encode(const Tensor& x) override;
  Tensor decode_params(const Tensor& z) override;

  // config.samples draws per input from noise_generator().
  VAEOutput forward(const Tensor& x);
  // Explicit noise eps [R*N, Z] (any R >= 1): z = mu + exp(logvar / 2) * eps.
  VAEOutput forward(const Tensor& x, const Tensor& eps);

  // The objective above; terms "recon" and "kl". out must come from forward() on this x.
  virtual Loss loss(const VAEOutput& out, const Tensor& x);
  // loss(forward(x), x), without splitting mu and logvar out of h (the losses read h).
  Loss compute_loss(const Tensor& x) override;

  // Importance log-weights log p(x|z) + log p(z) - log q(z|x) of every sample [R*N] (same row
  // order as out.z), each Gaussian with its normalizing constant: the terms of the IWAE bound and
  // of importance-sampled log p(x). Differentiable.
  Tensor log_weights(const VAEOutput& out, const Tensor& x);

  // Sets the training step the next training loss uses (the KL schedule's). The count lives in
  // memory beside the KL weight and the loss's kernel counts each step there, so this writes to
  // it only when `step` is not where the count already stands.
  void on_train_step(std::int64_t step) override;
  // Noise is drawn at offsets in memory and the KL weight is computed in memory: replayable.
  bool replayable_step() const override { return true; }
  // Free bits floor each dimension's whole-batch mean KL: across processes the shares' means are
  // reduced (dist::whole_batch_mean).
  std::string unshared_loss() const override { return ""; }
  std::uint64_t step_revision() const override { return gen_.revision() + memory_revision_; }
  void on_step_event(StepEvent event) override;
  // The training step the next training loss uses.
  std::int64_t step() const { return step_; }
  // The KL weight loss() uses now: beta * warmup.factor(step()) in training mode, beta in
  // evaluation mode (so held-out losses compare across epochs).
  double kl_weight() const;

  // The generator forward() draws from: generator() in training mode, the evaluation stream
  // otherwise.
  Generator& noise_generator() { return is_training() ? gen_ : eval_gen_; }
  std::vector<Generator*> generators() override { return {&gen_, &eval_gen_}; }

  // n decoded draws from the prior z ~ N(0, I) [n, D]: the decoder's mean, or (draw = true) one
  // sample x ~ p(x|z), drawn from the evaluation stream. models::sample (models/generate.h)
  // takes a generator of your choice.
  Tensor sample(std::int64_t n, bool draw = false);

 protected:
  VAE(const VAEConfig& config, Device device, const char* name);

 private:
  VAEOutput complete(Tensor h, Tensor z);
  void check_output(const VAEOutput& out, const Tensor& x, const char* what) const;

  std::string name_;
  VAEConfig config_;
  bool annealed() const;
  // The training loss's KL weight beta (a scalar of the data's dtype) or, with a warm-up, the step
  // count the loss's kernel computes it from (an int64 in float32 storage), on the data's device:
  // created by the first training loss there.
  void ensure_kl_memory(const Tensor& like);
  void write_kl_step();

  Generator eval_gen_;
  std::int64_t step_ = 0;            // the host's copy of the count in memory
  std::int64_t captured_steps_ = 0;  // losses of the capture being recorded
  Tensor kl_weight_;
  Tensor kl_step_;
  std::uint64_t memory_revision_ = 0;
  std::shared_ptr<nn::MLP> encoder_;
  std::shared_ptr<nn::MLP> decoder_;
};

// beta-VAE: a VAE with beta != 1 (and optionally `warmup` and `free_bits`).
using BetaVAE = VAE;

}  // namespace latent::models
