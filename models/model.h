// What every autoencoder of latent shares: the encoder/decoder MLP configuration, the loss with
// its named terms, and the Autoencoder interface the Trainer and the evaluation code work with.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/latent.h"
#include "models/likelihood.h"

namespace latent::models {

// An MLP between the input and the code: hidden widths and activations. The outer widths come
// from the model (input, latent), so a config is reusable across models.
struct MLPSpec {
  std::vector<std::int64_t> hidden = {512, 256};
  Act activation = Act::relu;
  std::optional<float> activation_alpha;  // leaky_relu slope / elu alpha (see nn::MLPConfig)
};

// A loss: `total` (what backward() starts from) and its named terms as they enter the total
// (already weighted), so that the terms add up to total. Scalars, batch means, in nats where a
// term is a log-likelihood.
struct Loss {
  Tensor total;
  std::vector<std::pair<std::string, Tensor>> terms;

  // The term called `name`; throws latent::Error listing the names when absent.
  Tensor term(const std::string& name) const;
  // {name, value} of total ("total") and every term, read back to the host (synchronizes).
  std::vector<std::pair<std::string, double>> values() const;
};

// Every model of the family. Modules whose training forward differs from evaluation (noise,
// sampling) read is_training(). Each model owns a Generator (seeded from its config) for the
// noise it draws, so seeded runs repeat exactly.
class Autoencoder : public nn::Module {
 public:
  virtual std::string name() const = 0;
  virtual std::int64_t input_dim() const = 0;
  virtual std::int64_t latent_dim() const = 0;
  virtual const LikelihoodConfig& likelihood() const = 0;

  // The deterministic code of x [N, D] -> [N, Z] (the posterior mean for a VAE).
  virtual Tensor encode(const Tensor& x) = 0;
  // The decoder's distribution parameters for a code z [N, Z] (layout: models/likelihood.h).
  virtual Tensor decode_params(const Tensor& z) = 0;
  // The decoder's mean for z: probabilities, means or expected levels [N, D].
  Tensor decode(const Tensor& z) { return mean(likelihood(), decode_params(z)); }
  // decode(encode(x)).
  Tensor reconstruct(const Tensor& x) { return decode(encode(x)); }

  // The training objective on a batch x [N, D] (forward and loss in one call), as the Trainer
  // uses it. In training mode it draws its noise from the model's generator.
  virtual Loss compute_loss(const Tensor& x) = 0;
  // Called by the Trainer before each optimizer step with the global step number (0-based), for
  // schedules inside the objective (KL warm-up). Does nothing by default.
  virtual void on_train_step(std::int64_t /*step*/) {}

  // Whether a training step reads nothing from the host that changes from step to step (noise is
  // drawn at generator offsets in memory, schedules inside the objective are read from memory),
  // so that the Trainer may record it once and replay it (dispatch::Plan). True for every model
  // of the family; false by default for models written elsewhere.
  virtual bool replayable_step() const { return false; }
  // Why a batch of this model cannot be shared by several processes ("" when it can): its loss
  // must be a mean over the rows of per-row terms (plus terms every share computes alike), so that
  // the shares' gradients, averaged, are the batch's. Models written elsewhere say nothing, so
  // they are refused.
  virtual std::string unshared_loss() const {
    return name() + " does not say that its loss is a mean over rows (Autoencoder::unshared_loss)";
  }
  // What a recorded step baked in that the model itself can change (its generator's seed and
  // offset memory, memory its objective keeps): a recorded step is recorded again when this
  // changes.
  virtual std::uint64_t step_revision() const { return gen_.revision(); }
  // What CompiledStep does with a step whose host code and kernels part ways, for host copies of
  // what the step counts in memory (the VAE's step):
  //   recording  a step is about to be recorded (on a GPU captured: its kernels run later)
  //   replayed   the recorded step ran again, without its host code
  //   discarded  the step being recorded could not be captured: its kernels never run
  enum class StepEvent { recording, replayed, discarded };
  virtual void on_step_event(StepEvent /*event*/) {}

  Generator& generator() { return gen_; }
  // Every generator the model draws from, generator() first (a resumed run restores them all).
  virtual std::vector<Generator*> generators() { return {&gen_}; }

 protected:
  explicit Autoencoder(std::uint64_t seed) : gen_(seed) {}
  // Throws latent::Error unless x is [N, input_dim()] (naming the model and both widths).
  void check_input(const Tensor& x, const char* what) const;

  Generator gen_;
};

}  // namespace latent::models
