#include "models/compiled_step.h"

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>

namespace latent::models {

namespace {
constexpr const char* kWhere = "step";
}

CompiledStep::CompiledStep(Autoencoder& model, optim::Optimizer& opt, StepOptions options)
    : model_(model),
      opt_(opt),
      options_(options),
      group_(options.group ? *options.group : dist::world()),
      group_revision_(group_.revision()) {
  check(std::isfinite(options_.grad_clip) && options_.grad_clip >= 0, kWhere,
        "grad_clip must be finite and >= 0 (0: off), got ", options_.grad_clip);
  if (options_.grad_clip > 0) clipper_.emplace(options_.grad_clip);
}

void CompiledStep::check_norm() const {
  check(std::isfinite(norm_), kWhere, "the gradient norm is ", norm_, " at step ", steps_,
        ": the loss diverged; lower the learning rate");
}

void CompiledStep::poll_norms(bool wait) {
  // At most a few steps in flight: older reads are waited for.
  constexpr std::size_t kInFlight = 4;
  while (!pending_norms_.empty() &&
         (wait || pending_norms_.size() > kInFlight || pending_norms_.front().second.ready())) {
    auto [step, read] = std::move(pending_norms_.front());
    pending_norms_.pop_front();
    double v = 0.0;
    std::memcpy(&v, read.value(), sizeof v);
    norm_ = v;
    check(std::isfinite(v), kWhere, "the gradient norm is ", v, " at step ", step,
          ": the loss diverged; lower the learning rate");
  }
}

double CompiledStep::last_grad_norm() {
  poll_norms(true);
  return norm_;
}

dist::Share CompiledStep::share_of(std::int64_t total) const {
  const dist::Share s = dist::share(total, group_.rank(), group_.size());
  check(s.count >= 1, kWhere, "a batch of ", total, " rows cannot be shared by ", group_.size(),
        " ranks");
  return s;
}

void CompiledStep::average_gradients() {
  if (!group_.exchanges()) return;
  std::vector<Tensor> grads;
  if (Tensor arena = opt_.grad_arena(); arena.defined()) {
    grads.push_back(arena);  // one collective for every gradient
  } else {                   // the first step: the gradients are not in the arena yet
    for (const Tensor& p : opt_.parameters())
      if (Tensor g = p.grad(); g.defined()) grads.push_back(g);
  }
  NoGradGuard no_grad;
  for (Tensor& g : grads) {
    // The batch's mean gradient is the shares' means weighted by their rows.
    if (weight_ != 1.0) g.mul_(weight_);
    group_.all_reduce(g, dist::ReduceOp::mean);
  }
}

Loss CompiledStep::eager(const Tensor& x) {
  const Loss loss = model_.compute_loss(x);
  opt_.zero_grad();
  loss.total.backward();
  average_gradients();
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

void CompiledStep::forget() {
  plan_ = dispatch::Plan();
  ready_ = false;
  input_ = Tensor();
  source_id_ = 0;
  loss_ = Loss();
}

Loss CompiledStep::operator()(const Tensor& batch) {
  check(batch.defined() && batch.ndim() == 2, kWhere, "expected a batch [N, D], got ",
        batch.defined() ? batch.shape().str() : std::string("an undefined tensor"));
  if (source_id_ != 0) forget();  // the recorded step drew from a source
  const std::int64_t total = batch.dim(0);
  Tensor x = batch;
  if (group_.size() > 1) {
    const dist::Share s = share_of(total);
    x = batch.rows(s.first, s.count);
  }
  const bool same_input =
      !input_.defined() ||
      (x.shape() == input_.shape() && x.device() == input_.device() && x.dtype() == input_.dtype());
  return run(
      total, x.device(), same_input, [&] { return eager(x); },
      [&] {
        input_ = Tensor::empty(x.shape(), x.options());
        input_.copy_(x);
      },
      [&] { return eager(input_); }, [&] { input_.copy_(x); }, [] {});
}

Loss CompiledStep::operator()(data::BatchSource& source, std::int64_t rows) {
  check(source.data().ndim() == 2, kWhere, "expected a data set [N, D], got ",
        source.data().shape().str());
  // Another source than the recorded step's (or a recorded batch): record again.
  if (source.id() != source_id_ && (ready_ || input_.defined())) forget();
  std::int64_t left = 0;  // rows of the epoch left before recording
  // This rank's share of the next `rows` rows; the source moves past all of them.
  auto draw = [&] {
    if (group_.size() == 1) return source.draw(rows);
    const dist::Share s = share_of(rows);
    return source.draw(s.count, s.first, rows);
  };
  return run(
      rows, source.data().device(), true, [&] { return eager(draw()); },
      [&] {
        source_id_ = source.id();
        left = source.left();
      },
      [&] { return eager(draw()); }, [&] { source.skip(rows); },
      [&] { source.rewind(left - source.left()); });  // what the capture drew, if anything
}

Loss CompiledStep::run(std::int64_t total, Device device, bool same_input,
                       const std::function<Loss()>& eager_step,
                       const std::function<void()>& before_recording,
                       const std::function<Loss()>& recorded_step,
                       const std::function<void()>& before_replay,
                       const std::function<void()>& capture_failed) {
  model_.train();
  norm_ = std::numeric_limits<double>::quiet_NaN();
  const std::int64_t rows = total;
  // Across processes: this rank's share of the batch, its draws as the whole batch's.
  std::optional<RowShardScope> scope;
  weight_ = 1.0;
  if (group_.revision() != group_revision_) {  // the ranks changed: record anew
    forget();
    warmed_ = false;
    group_revision_ = group_.revision();
  }
  if (group_.size() > 1) {
    const std::string why = model_.unshared_loss();
    check(why.empty(), kWhere, "a batch shared by ", group_.size(), " processes: ", why);
    const dist::Share s = share_of(total);
    scope.emplace(RowShard{.first = s.first, .count = s.count, .total = total, .group = &group_});
    weight_ = static_cast<double>(s.count) * group_.size() / static_cast<double>(total);
  }
  replayed_last_ = false;
  from_plan_last_ = false;
  // The recorded size is the largest batch seen: a shorter one (an epoch's last) runs eagerly, and
  // a larger one than recorded (after a first fit on a smaller set) is recorded anew.
  if (rows > rows_) {
    if (rows_ != 0) forget();
    rows_ = rows;
  }
  const bool replayable = options_.replay && replay_error_.empty() && model_.replayable_step() &&
                          rows == rows_ && same_input;
  Loss loss;
  bool from_plan = true;  // recorded or replayed: the norm is read once the step has run
  // The replayed steps' norms are all checked before a step runs otherwise.
  // A step after a change of what a recorded step bakes in (the model's seed or memory, the
  // device) is taken eagerly (which creates what the change dropped, such as a generator's offset
  // in memory on the new device), then recorded again.
  if (model_revision_ != model_.step_revision() || device != device_) {
    forget();
    warmed_ = false;
    device_ = device;
  }
  if (!(replayable && ready_ && revision_ == opt_.revision())) poll_norms(true);
  if (!replayable) {
    from_plan = false;
    loss = eager_step();
  } else if (ready_ && revision_ == opt_.revision()) {
    before_replay();
    plan_.replay();
    model_.on_step_event(Autoencoder::StepEvent::replayed);
    ++replayed_;
    replayed_last_ = true;
    from_plan_last_ = true;
    loss = loss_;
  } else if (!warmed_ || revision_ != opt_.revision()) {
    // The first step creates the gradients and the optimizer's state; a recorded step must not
    // (its replays would create them anew), so it is taken eagerly first.
    ready_ = false;
    warmed_ = true;
    revision_ = opt_.revision();
    from_plan = false;
    loss = eager_step();
    model_revision_ = model_.step_revision();
  } else {
    before_recording();
    model_.on_step_event(Autoencoder::StepEvent::recording);
    loss_ = Loss();      // the previous recording's tensors go now, not inside the capture
    std::string failed;  // why this rank's capture failed
    try {
      dispatch::Recorder recorder(plan_, device);
      loss_ = recorded_step();
      recorder.finish();
    } catch (const Error& e) {
      if (!device.is_cuda()) throw;
      failed = e.what();
      std::cerr << "latent: the training step could not be captured as a CUDA graph (" << failed
                << "); steps run eagerly\n";
    }
    // Across processes every rank takes its steps alike (NCCL: a collective is captured on every
    // rank or on none): a rank that could not capture makes them all run eagerly.
    if (group_.size() > 1 && device.is_cuda()) {
      const auto first = group_.first_problem(failed);
      if (failed.empty() && first)
        failed =
            detail::cat("rank ", first->first,
                        " could not capture its training step as a CUDA graph: ", first->second);
    }
    if (!failed.empty()) {
      // A capture, failed or not, ran nothing (the kernels of a capture do not run): the step is
      // taken eagerly, and so are the next ones.
      replay_error_ = failed;
      forget();
      capture_failed();
      model_.on_step_event(Autoencoder::StepEvent::discarded);
      loss = eager_step();
      ++steps_;
      return loss;
    }
    // A GPU recording is a capture: nothing ran yet, the graph's first launch is this step.
    if (plan_.is_graph()) plan_.replay();
    model_revision_ = model_.step_revision();
    ready_ = true;
    from_plan_last_ = true;
    loss = loss_;
  }
  ++steps_;
  if (from_plan && clipper_ && clipper_->norm_memory()) {  // null: no parameter had a gradient
    // Read without waiting; checked as the reads land (and all of them by last_grad_norm()).
    pending_norms_.emplace_back(
        steps_ - 1, backend::ReadBack(clipper_->norm_memory(), clipper_->device(), sizeof(double)));
    poll_norms(false);
  }
  return loss;
}

}  // namespace latent::models
