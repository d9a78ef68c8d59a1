// A training step recorded once and replayed (DESIGN.md section 5): forward, loss, backward,
// gradient clipping and the optimizer step, as the Trainer runs them, for a loop of one's own.
//
//   models::CompiledStep step(vae, opt, {.grad_clip = 1.0});
//   for (std::int64_t s = 0; ...; ++s) {
//     vae.on_train_step(s);              // schedules inside the objective (KL warm-up)
//     models::Loss loss = step(x);       // x [N, D] on the model's device
//   }
//
// The first step of the full batch size is eager (it creates the gradients and the optimizer's
// state), the second is recorded (dispatch::Plan) and every later one of that size replays the
// recorded kernel calls on the same memory: the batch is copied into the recorded input, nothing
// else runs on the host. On a GPU the recorded step is a CUDA graph (stream capture) and a
// replay is one graph launch, with no host synchronization. The result is bit for bit what eager
// steps give, for every model whose step is replayable (Autoencoder::replayable_step: noise drawn
// at generator offsets in memory, schedules read from memory). The full batch size is the largest
// seen so far: smaller steps (an epoch's last batch) run eagerly, a larger one is recorded anew;
// every step runs eagerly when `replay` is off. A change the recorded step cannot see
// (Optimizer::revision(): set_lr, a new schedule, load_state) makes the next step eager and the one
// after it recorded again; a change of what the model's step baked in (step_revision(): its
// generator reseeded or assigned) makes the next full-size step eager and the one after it
// recorded again.
//
// Gradient clipping (grad_clip > 0) keeps the norm and the scale factor in memory
// (optim::GradClipper). A non-finite gradient norm throws latent::Error naming the step: eagerly
// before the update; for a replayed step (whose gradients the clip set to 0) when its norm has
// come back to the host, read without waiting: at most four steps later, and at the latest by
// last_grad_norm() or the next step that does not replay.
//
// The batch may also be drawn inside the step (operator()(source, rows), data::BatchSource): a
// replay then gathers the next rows of the epoch itself, and nothing is copied from the host.
//
// Across processes (a group of more than one rank): every rank passes the same batch (or the same
// source, at the same position) and takes its share of the rows (dist::share: contiguous, in rank
// order); its random draws are those the whole batch would give its rows (RowShardScope), and
// after the backward pass the gradients are averaged over the ranks, weighted by their shares,
// with one all-reduce of the optimizer's gradient arena, inside the recorded step. So every rank
// takes the step one process would take on the whole batch (up to float rounding) and holds the
// same parameters, provided they started with the same ones. The returned loss is the rank's
// share's. Statistics of the whole batch a loss needs (the sparse AE's mean activation, free bits'
// mean KL per dimension) are reduced over the ranks inside the step (dist::whole_batch_mean). The
// ranks record alike: on GPUs, a rank whose capture fails makes every rank run eagerly (NCCL needs
// a collective captured on every rank or on none), agreed over the host right after the capture. A
// batch with fewer rows than ranks, and a model that does not say its loss can be shared
// (Autoencoder::unshared_loss), throw latent::Error.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "core/backend.h"
#include "core/dispatch.h"
#include "core/latent.h"
#include "models/model.h"

namespace latent::models {

struct StepOptions {
  double grad_clip = 0.0;  // max global gradient norm (0: off)
  bool replay = true;      // record and replay full-size steps (see above)
  // The processes that share each batch (data parallelism); null: dist::world(), which is this
  // process alone unless a launcher started several (see "Across processes" above).
  dist::Group* group = nullptr;
};

class CompiledStep {
 public:
  // Keeps references to the model and the optimizer, which must outlive the step. Throws
  // latent::Error for a negative or non-finite grad_clip.
  CompiledStep(Autoencoder& model, optim::Optimizer& opt, StepOptions options = {});

  // One training step on x [N, D] in training mode. The returned loss's tensors belong to the
  // recorded step when it replayed (the next replay overwrites them): clone() what must be kept.
  Loss operator()(const Tensor& x);
  // The same, the batch being the next `rows` rows of `source`, drawn inside the step: a replay
  // gathers (and binarizes) the next rows itself, with no copy from the host. The caller starts
  // the source's epochs (BatchSource::start_epoch) and keeps the source alive while it is used; a
  // step given another source (or a batch) records again.
  Loss operator()(data::BatchSource& source, std::int64_t rows);

  // The gradient norm before clipping of the last step (NaN without clipping). After a replayed
  // step this waits for it to finish; the step itself does not: its norm is read without waiting
  // and checked a few steps later at most (a non-finite norm then throws, naming its step).
  double last_grad_norm();
  // Whether the last step replayed the recorded one; how many did.
  bool replayed_last() const { return replayed_last_; }
  // Whether the last step's loss tensors belong to the recorded step (it was recorded or
  // replayed): the next replay overwrites them.
  bool from_plan_last() const { return from_plan_last_; }
  std::int64_t replayed_steps() const { return replayed_; }
  // Why a GPU step could not be captured ("" when it could, or was never tried); every step then
  // runs eagerly.
  const std::string& replay_error() const { return replay_error_; }

 private:
  Loss eager(const Tensor& x);
  // The gradients averaged over the group (weighted by the shares); nothing in a group of one.
  void average_gradients();
  // This rank's rows of a batch of `total`.
  dist::Share share_of(std::int64_t total) const;
  void check_norm() const;
  // Drops the recorded step: the next full-size step records again.
  void forget();
  Loss run(std::int64_t total, Device device, bool same_input,
           const std::function<Loss()>& eager_step, const std::function<void()>& before_recording,
           const std::function<Loss()>& recorded_step, const std::function<void()>& before_replay,
           const std::function<void()>& capture_failed);

  Autoencoder& model_;
  optim::Optimizer& opt_;
  StepOptions options_;
  dist::Group& group_;
  double weight_ = 1.0;  // this rank's share times the ranks over the batch (1 for equal shares)
  std::uint64_t group_revision_ = 0;  // the group's revision of the recorded step
  std::optional<optim::GradClipper> clipper_;
  std::int64_t steps_ = 0;  // steps taken, for messages
  double norm_ = 0.0;
  // The recorded step and what it was recorded for.
  dispatch::Plan plan_;
  Tensor input_;                 // the recorded batch (operator()(x))
  std::uint64_t source_id_ = 0;  // the recorded source (operator()(source, rows))
  Loss loss_;
  std::int64_t rows_ = 0;  // the full batch size (all ranks together): the largest step's
  bool ready_ = false;
  bool warmed_ = false;
  std::uint64_t revision_ = 0;        // the optimizer's, when recorded
  std::uint64_t model_revision_ = 0;  // the model's step_revision() after the last warm-up/record
  Device device_;                     // the device of the last step
  bool replayed_last_ = false;
  bool from_plan_last_ = false;
  std::int64_t replayed_ = 0;
  std::string replay_error_;
  // Norms of replayed steps on their way to the host: (step, read).
  std::deque<std::pair<std::int64_t, backend::ReadBack>> pending_norms_;
  void poll_norms(bool wait);
};

}  // namespace latent::models
