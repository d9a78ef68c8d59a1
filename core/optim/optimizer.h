// optim::Optimizer: the common machinery of the optimizers — parameter handles, per-parameter
// state, step counting, and state export/import for checkpoints.
//
// An optimizer holds handles to the parameters it was given (the very tensors of the model:
// Module::to() converts them in place, and the optimizer follows). step() updates, under
// NoGradGuard, every parameter whose grad() is defined, skipping the others (a parameter that took
// no part in the loss), and bumps the version of what it writes.
//
// Per-parameter state (momentum buffers, moments) is created on a parameter's first update with
// its shape, dtype and device, and follows the parameter if it is later moved or converted.
//
// What changes from step to step (the step count, the learning rate, each parameter's update
// count t and Adam's bias corrections) lives in device memory beside the parameters, written by
// the step's first kernel and read by the update kernels (kernels/optim.h), so a recorded step
// replays correctly. The parameters of one optimizer share one device.
//
// State for checkpoints, with i the parameter's index in the list given to the constructor:
//   "<name>.step"          scalar: the number of step() calls
//   "<name>.step.<i>"      scalar: how many of them updated parameter i (present once it has been)
//   "<name>.<slot>.<i>"    the state tensor `slot` of parameter i (e.g. "adam.m.3", "adam.v.3")
// where <name> is "sgd", "adam" or "adamw". Scalars are float64 CPU tensors.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/optim.h"

namespace latent::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  Optimizer(Optimizer&&) = default;
  Optimizer& operator=(Optimizer&&) = default;

  // One update of every parameter whose gradient is defined.
  void step();
  // Zeroes every parameter's gradient, keeping its memory (set_to_none: drops it instead, so the
  // parameter is skipped by step() unless a later backward reaches it).
  void zero_grad(bool set_to_none = false);
  // The number of step() calls and replayed steps (read from the device: it waits for it).
  std::int64_t step_count() const;

  // The learning rate the next step uses. set_lr makes it a constant (after a schedule too);
  // it throws latent::Error for a negative or non-finite lr.
  double lr() const;
  void set_lr(double lr);
  // The learning rate the last step used, as its kernels computed it (reads the device: it waits
  // for it); 0 before the first step.
  double last_lr() const;
  // The learning rate follows `schedule`, evaluated in the step's first kernel from the step
  // count: LrSchedule::attach builds it. The optimizer keeps it until set_lr or another one.
  void set_lr_schedule(const kernels::LrSpec& schedule);

  // Counts the changes a recorded step cannot see (set_lr, set_lr_schedule, load_state): a
  // plan recorded at another revision must be recorded again.
  std::uint64_t revision() const { return revision_; }

  const std::vector<Tensor>& parameters() const { return params_; }
  // Every gradient as one tensor when they all live in one arena, for one collective over all of
  // them (data parallelism); undefined otherwise. Gradients a first backward made outside the
  // arena move in (copied) when every parameter has one. A gradient marked zero (zero_grad) is
  // written first, so the arena holds no stale values.
  Tensor grad_arena();
  const std::string& name() const { return name_; }

  // The state described above. The tensors share memory with the optimizer: clone() them to keep
  // a snapshot across later steps.
  NamedTensors state() const;
  // Replaces the whole state by `state` (copied, converted to each parameter's dtype/device).
  // Throws latent::Error, leaving the optimizer unchanged, for an entry of another optimizer, an
  // unknown name, a parameter index out of range, a shape that does not match the parameter, or a
  // missing or invalid step count.
  void load_state(const NamedTensors& state);

 protected:
  // `slots` names the per-parameter state tensors ("momentum"; "m", "v"). Throws latent::Error
  // for an empty list, an undefined or non-leaf tensor, or one given twice.
  Optimizer(std::string name, std::vector<Tensor> params, std::vector<std::string> slots);

  // One pending update of a step: parameter `index` and its gradient; or, with `flat`, every
  // parameter at once: param and grad are then the whole arenas (1-D) and index is 0 (every
  // parameter has the same update count in flat mode).
  struct Update {
    std::size_t index = 0;
    Tensor param;
    Tensor grad;
    bool flat = false;
  };
  // Updates every parameter of `updates` (gradients already checked against their parameters,
  // the step's values already in state_memory()), under NoGradGuard; the caller bumps the
  // versions afterwards.
  virtual void update_all(const std::vector<Update>& updates) = 0;
  // The updates grouped by dtype (groups in order of first appearance, updates in list order
  // within a group).
  static std::vector<std::vector<Update>> group_by_dtype(const std::vector<Update>& updates);
  // The step values in memory (kernels/optim.h), on the parameters' device.
  double* state_memory() const;
  // Adam's betas for the bias corrections of the step (0 for SGD).
  virtual std::pair<double, double> betas() const { return {0.0, 0.0}; }

  // State slot k of parameter i, created zero-filled (then `fresh` is set) on first use, and
  // moved to the parameter's dtype/device if the parameter moved since.
  Tensor& slot(std::size_t i, std::size_t k, bool* fresh = nullptr);
  // Slot k of an update: slot(u.index, k), or the whole slot arena for a flat update.
  Tensor slot_of(const Update& u, std::size_t k);

  // Throws unless v is finite and v >= 0 ("[adam] lr must be ...").
  void check_non_negative(const char* what, double v) const;

 private:
  std::string name_;
  std::vector<Tensor> params_;
  std::vector<std::string> slot_names_;
  // The state memory (optim_state_size(P) doubles in float32 storage) on `device`, created
  // zero-filled or moved there on first need.
  void ensure_state(Device device) const;
  std::vector<double> read_state() const;
  void write_state(const std::vector<double>& values) const;

  // Flat mode: the parameters, their gradients and each state slot live in one arena apiece
  // (parameter i at flat_offsets_[i], aligned), so zero_grad launches nothing and a step is one
  // update over the arena. Entered at construction when the parameters allow it (one device and
  // dtype, each the sole owner of its memory); the step falls back to per-parameter updates
  // whenever something no longer lives in its arena (a moved parameter, a replaced gradient), and
  // leaves flat mode for good once the parameters' update counts differ.
  void flatten();
  bool flat_valid() const;
  Tensor arena_view(const Tensor& arena, std::size_t i) const;
  // Whether t is parameter i's place in `arena`.
  bool in_arena(const Tensor& t, const Tensor& arena, std::size_t i) const;
  Tensor& slot_arena(std::size_t k);
  // Gradients and state slots that live outside their arenas move in (copied).
  void move_into_arenas();

  std::vector<std::vector<Tensor>> slots_;  // [param][slot], undefined until first use
  bool flat_ = false;
  Tensor flat_params_, flat_grads_;
  std::vector<Tensor> flat_slots_;  // [slot], undefined until first use
  std::vector<std::int64_t> flat_offsets_;
  kernels::LrSpec lr_spec_;
  mutable Tensor state_;
  std::uint64_t revision_ = 0;
};

}  // namespace latent::optim
