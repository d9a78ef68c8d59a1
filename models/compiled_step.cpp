#include "models/compiled_step.h"

#include <cmath>
#include <iostream>
#include <limits>

namespace latent::models {

namespace {
constexpr const char* kWhere = "step";
}

CompiledStep::CompiledStep(Autoencoder& model, optim::Optimizer& opt, StepOptions options)
    : model_(model), opt_(opt), options_(options) {
  check(std::isfinite(options_.grad_clip) && options_.grad_clip >= 0, kWhere,
        "grad_clip must be finite and >= 0 (0: off), got ", options_.grad_clip);
  if (options_.grad_clip > 0) clipper_.emplace(options_.grad_clip);
}

void CompiledStep::check_norm() const {
  check(std::isfinite(norm_), kWhere, "the gradient norm is ", norm_, " at step ", steps_,
        ": the loss diverged; lower the learning rate");
}

Loss CompiledStep::eager(const Tensor& x) {
  const Loss loss = model_.compute_loss(x);
  opt_.zero_grad();
  loss.total.backward();
  if (clipper_) {
    clipper_->clip(opt_.parameters());
    // Eagerly, a diverged step stops before the update; a recorded one is checked after it (its
    // non-finite gradients were set to 0 by the clip).
    if (!dispatch::recording()) {
      norm_ = clipper_->last_norm();
      check_norm();
    }
  }
  opt_.step();
  return loss;
}

Loss CompiledStep::operator()(const Tensor& x) {
  check(x.defined() && x.ndim() == 2, kWhere, "expected a batch [N, D], got ",
        x.defined() ? x.shape().str() : std::string("an undefined tensor"));
  model_.train();
  norm_ = std::numeric_limits<double>::quiet_NaN();
  replayed_last_ = false;
  if (rows_ == 0) rows_ = x.dim(0);
  const bool replayable =
      options_.replay && replay_error_.empty() && model_.replayable_step() && x.dim(0) == rows_ &&
      (!input_.defined() || (x.shape() == input_.shape() && x.device() == input_.device() &&
                             x.dtype() == input_.dtype()));
  Loss loss;
  bool from_plan = true;  // recorded or replayed: the norm is read once the step has run
  if (!replayable) {
    from_plan = false;
    loss = eager(x);
  } else if (ready_ && revision_ == opt_.revision()) {
    input_.copy_(x);
    plan_.replay();
    ++replayed_;
    replayed_last_ = true;
    loss = loss_;
  } else if (!warmed_ || revision_ != opt_.revision()) {
    // The first step creates the gradients and the optimizer's state; a recorded step must not
    // (its replays would create them anew), so it is taken eagerly first.
    ready_ = false;
    warmed_ = true;
    revision_ = opt_.revision();
    from_plan = false;
    loss = eager(x);
  } else {
    input_ = Tensor::empty(x.shape(), x.options());
    input_.copy_(x);
    try {
      dispatch::Recorder recorder(plan_, x.device());
      loss_ = eager(input_);
      recorder.finish();
    } catch (const Error& e) {
      if (!x.device().is_cuda()) throw;
      // A capture that fails ran nothing (the kernels of a capture do not run): the step is
      // taken eagerly, and so are the next ones, said once.
      replay_error_ = e.what();
      std::cerr << "latent: the training step could not be captured as a CUDA graph ("
                << replay_error_ << "); steps run eagerly\n";
      plan_ = dispatch::Plan();
      input_ = Tensor();
      loss_ = Loss();
      from_plan = false;
      loss = eager(x);
      ++steps_;
      return loss;
    }
    // A GPU recording is a capture: nothing ran yet, the graph's first launch is this step.
    if (plan_.is_graph()) plan_.replay();
    ready_ = true;
    loss = loss_;
  }
  if (from_plan && clipper_) {
    norm_ = clipper_->last_norm();
    check_norm();
  }
  ++steps_;
  return loss;
}

}  // namespace latent::models
