// The Trainer: one training loop for every model of the family.
//
//   models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32});
//   optim::Adam opt(vae.parameters(), {.lr = 1e-3});
//   models::Trainer trainer(vae, opt, {.epochs = 20, .batch = 128, .metrics_csv = "vae.csv"},
//                           optim::LrSchedule::cosine(1e-3, 20 * 469));
//   models::History h = trainer.fit(train.images, test.images);
//   std::printf("test loss %.2f\n", h.last().test_value("total"));
//
// An epoch walks the training rows in mini-batches (data::batches: shuffled with a permutation that
// depends only on (seed, epoch)). Each step, with the global step s (0-based, counted across
// epochs and across fit() calls):
//   model.on_train_step(s); the optimizer takes lr = schedule.lr_at(s) itself (the schedule is
//   attached to it when fit() starts);
//   loss = model.compute_loss(x) in training mode; backward; clip the gradient norm (grad_clip);
//   opt.step().
// After each epoch the model is evaluated on the held-out rows in evaluation mode without a graph
// (NoGradGuard), in batches of eval_batch rows: the mean of every loss term over the test set
// (batch means weighted by batch size), and the reconstruction MSE ("recon_mse": mean over every
// element of (reconstruct(x) - x)^2, the likelihood's mean through the deterministic code).
// The training set is copied to the model's device once per fit() (data_on_device, the default):
// the epoch's permutation goes there once per epoch and each step gathers its rows itself
// (data::BatchSource), so a replayed step needs nothing from the host. With data_on_device off,
// the batches are gathered on the host and move to the model's device one at a time (for a data
// set larger than the device's memory). The device copy, and the recorded step drawing from it,
// are kept for the next fit() on the same tensor (not written since); a fit() on other data
// replaces them.
//
// Dynamic binarization (binarize = true): every training batch is replaced by a fresh draw
// bernoulli(x) (grey levels read as probabilities, which must lie in [0, 1]), the usual protocol
// for Bernoulli likelihoods on MNIST-like data, drawn inside the step with data_on_device. The
// test set is binarized once per fit() with a fixed draw, so the per-epoch test numbers
// compare.
//
// Determinism: on the CPU a fixed seed (the config's and the model's) gives identical training:
// the permutations, the binarization draws (a generator seeded from config.seed) and the model's
// noise all come from Philox streams, and CPU reductions do not depend on the number of threads.
//
// Host synchronization: training losses are accumulated on the model's device; the host reads them
// once per epoch. A progress line (log_every) is printed once its loss has come back, read without
// waiting for the step (backend::ReadBack); so is a replayed step's gradient norm, checked a few
// steps later at most and at the end of every epoch. A step callback gets the loss tensors and
// decides itself whether to read them; its grad_norm is read for it (that waits for the step).
//
// Across processes (a group of more than one rank, e.g. under mpirun): every rank calls fit() with
// the same configuration, model, optimizer and data, checked when fit() starts (a difference
// throws on every rank, naming the field); rank 0's parameters and optimizer state are broadcast
// to the others; each step every rank takes its share of the batch (CompiledStep), so the ranks
// train as one process with the whole batch would, and hold the same parameters. The train means
// of a row are reduced over the ranks, and so is the evaluation, each rank evaluating its share
// of every evaluation batch (drawing as the whole batch would): every rank reports the numbers one
// process would. Only rank 0 prints and writes metrics_csv. A last batch of an epoch with fewer
// rows than ranks is left out on every rank; a batch or a training set with fewer rows than ranks
// throws.
//
// Errors (latent::Error "[trainer] ...): epochs < 1, batch < 1, eval_batch < 1, log_every < 0,
// grad_clip negative or not finite; an undefined or empty training set, a set that is not 2-D or
// whose width is not the model's input width (the test set too, when given); a metrics_csv whose
// folder cannot be written (checked before training starts); a non-finite gradient norm when
// grad_clip is on (the loss diverged); a non-finite loss: training stops at the step where it
// appears (on the CPU at once; on a GPU when the step's running sums have come back, read without
// waiting and at most four steps later), naming the global step, the epoch, the batch and the
// non-finite terms; that epoch's row is not recorded (nor written to metrics_csv). An exception
// from the model or a callback propagates; the model's training/evaluation mode is restored in
// every case.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/latent.h"
#include "models/compiled_step.h"
#include "models/model.h"

namespace latent::models {

struct TrainerConfig {
  int epochs = 10;                 // epochs per fit() call (>= 1)
  std::int64_t batch = 128;        // training batch (the last one of an epoch may be smaller)
  bool shuffle = true;             // a new permutation every epoch
  std::uint64_t seed = 0;          // permutations and binarization draws
  bool binarize = false;           // dynamic binarization of the inputs (see above)
  bool data_on_device = true;      // the training set on the model's device (see above)
  std::int64_t eval_batch = 1000;  // rows per evaluation step (memory, not results)
  std::string metrics_csv;         // "": none; else rewritten atomically after every epoch
  std::int64_t log_every = 0;      // progress line to stderr every n steps (0: silent)
  double grad_clip = 0.0;          // max global gradient norm (0: off)
  // Record one full-size training step and replay it for the others (dispatch::Plan: the same
  // kernel calls on the same memory, without rebuilding the graph), bit for bit what eager steps
  // compute. It applies on the CPU to models whose step is replayable
  // (Autoencoder::replayable_step: every model of the family); every other step runs eagerly, as
  // does the last, smaller batch of an epoch.
  bool replay = true;
  // The processes that train together (data parallelism; null: dist::world(), this process alone
  // unless a launcher started several). See "Across processes" above.
  dist::Group* group = nullptr;
};

using Metrics = std::vector<std::pair<std::string, double>>;

// One row per epoch. `train`: "total" and every loss term, means over the epoch's training
// samples (as the model computed them during the epoch, so with its training noise). `test`:
// the same over the test set in evaluation mode, then "recon_mse"; empty without a test set.
struct EpochRow {
  int epoch = 0;          // 1-based, counted across fit() calls
  std::int64_t step = 0;  // global steps done at the end of the epoch
  double lr = 0.0;        // the learning rate of the epoch's last step
  Metrics train;
  Metrics test;
  double seconds = 0.0;  // wall time of the epoch, evaluation included

  // The named value; throws latent::Error listing the names when absent.
  double train_value(const std::string& name) const;
  double test_value(const std::string& name) const;
};

struct History {
  std::vector<EpochRow> epochs;
  bool stopped_early = false;  // a callback asked to stop

  bool empty() const { return epochs.empty(); }
  // The last row; throws latent::Error when there is none.
  const EpochRow& last() const;
};

// What a step callback sees, after the optimizer step.
struct StepInfo {
  int epoch = 0;                // 1-based
  std::int64_t step = 0;        // global step just taken (0-based)
  std::int64_t epoch_step = 0;  // index of the batch within the epoch (0-based)
  std::int64_t steps_per_epoch = 0;
  std::int64_t batch_size = 0;  // rows of this batch
  double lr = 0.0;              // the learning rate used for this step
  double grad_norm = 0.0;       // norm before clipping; NaN when grad_clip is off or not asked for
  Loss loss;                    // the step's loss (detached scalars; item() reads them); empty when
                                // not asked for

  // Ends training after this step: the unfinished epoch is evaluated and recorded as a row (its
  // train means cover the steps taken), the epoch callback runs, and no further epoch starts.
  void request_stop() const { *stop_ = true; }

  bool* stop_ = nullptr;  // the Trainer's stop flag
};

// What a step callback reads of StepInfo beyond the counts: the gradient norm waits for the step
// to finish (on a GPU the host then waits at every step), and the loss of a replayed step is
// copied for the callback. A callback that needs neither (a progress line) lets steps run ahead.
struct StepNeeds {
  bool grad_norm = true;
  bool loss = true;
};

// What an epoch callback sees, after the epoch's evaluation and CSV write.
struct EpochInfo {
  const EpochRow& row;
  int epochs = 0;  // epochs of this fit() call

  // Ends training after this epoch.
  void request_stop() const { *stop_ = true; }

  bool* stop_ = nullptr;  // the Trainer's stop flag
};

class Trainer {
 public:
  // Keeps references to the model and the optimizer (which must outlive the Trainer); the
  // optimizer should hold the model's parameters. Throws for an invalid config (see above).
  Trainer(Autoencoder& model, optim::Optimizer& opt, TrainerConfig config = {},
          std::optional<optim::LrSchedule> schedule = std::nullopt);

  // Trains config.epochs more epochs on train [N, D], evaluating on test [M, D] after each one (an
  // undefined test tensor skips the evaluation). Returns the history of every epoch trained by this
  // Trainer so far (the CSV holds the same rows).
  History fit(const Tensor& train, const Tensor& test = Tensor());

  // Mean of every loss term and the reconstruction MSE over x, in evaluation mode without a graph
  // (what fit() computes after each epoch; x is used as given, not binarized).
  Metrics evaluate(const Tensor& x);

  // Called after every optimizer step / every epoch. Replaces the previous callback.
  void on_step(std::function<void(const StepInfo&)> callback, StepNeeds needs = {}) {
    on_step_ = std::move(callback);
    step_needs_ = needs;
  }
  void on_epoch(std::function<void(const EpochInfo&)> callback) { on_epoch_ = std::move(callback); }

  // The training state, for resuming: the model's parameters and every generator it draws from,
  // the optimizer's state, this trainer's step and epoch counts, its binarization generator and
  // its history, written atomically to `path` (safetensors, core/checkpoint.h's training state)
  // with `extra` metadata. load_state() restores all of it into this trainer, its model and its
  // optimizer (built as the saved ones were) and returns the file's metadata; a fit() after it
  // continues where the saved run stood, so saved between epochs and resumed, a run ends with the
  // same bits as one that never stopped (on the CPU). Throws latent::Error naming the file for
  // what load_training_state() refuses and for trainer metadata that is missing or malformed.
  // Across processes (a group of more than one rank): save_state writes on rank 0 only (the
  // others return at once); load_state is a collective that reads the file on rank 0 only and sends
  // the others what it holds, so every rank continues from it (a failure to read is thrown on every
  // rank, with rank 0's message).
  void save_state(const std::string& path, const Metadata& extra = {});
  Metadata load_state(const std::string& path);

  const TrainerConfig& config() const { return config_; }
  const History& history() const { return history_; }
  std::int64_t global_step() const { return step_; }
  int epochs_done() const { return epoch_; }
  // Training steps taken by replaying a recorded step (see TrainerConfig::replay).
  std::int64_t replayed_steps() const { return step_fn_.replayed_steps(); }

 private:
  void check_data(const Tensor& x, const char* what) const;
  // Across processes: the ranks agree on what they train, and start from rank 0's state.
  void join_ranks(const Tensor& train, const Tensor& test);
  void write_csv() const;
  // load_state of this process alone; the trainer's metadata keys checked, and applied unless
  // check_only.
  Metadata load_state_here(const std::string& path);
  void apply_trainer_metadata(const Metadata& m, const std::string& path, bool check_only = false);
  // One pass over train; fills row.train and row.lr; sets stop when a step callback asked.
  void train_epoch(const Tensor& train, int last_epoch, EpochRow& row, bool& stop);

  Autoencoder& model_;
  optim::Optimizer& opt_;
  TrainerConfig config_;
  dist::Group& group_;
  std::optional<optim::LrSchedule> schedule_;
  std::function<void(const StepInfo&)> on_step_;
  StepNeeds step_needs_;
  std::function<void(const EpochInfo&)> on_epoch_;
  Generator binarize_gen_;
  std::optional<data::BatchSource> source_;  // the training set on the device (data_on_device)
  Tensor last_train_;  // the last fit's training set and its storage version (checked, copied)
  std::uint64_t last_train_version_ = 0;
  History history_;
  std::int64_t step_ = 0;
  int epoch_ = 0;
  // The step: recorded once and replayed for the full-size batches (models/compiled_step.h).
  CompiledStep step_fn_;
};

}  // namespace latent::models
