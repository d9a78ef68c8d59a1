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
  std::int64_t step_count() const { return step_; }

  // The learning rate, for schedules. set_lr throws latent::Error for a negative or non-finite lr.
  virtual double lr() const = 0;
  virtual void set_lr(double lr) = 0;

  const std::vector<Tensor>& parameters() const { return params_; }
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

  // Updates parameter i, whose gradient g is defined, for the t-th time (t >= 1). Runs under
  // NoGradGuard; the caller bumps the versions afterwards.
  virtual void update(std::size_t i, const Tensor& p, const Tensor& g, std::int64_t t) = 0;

  // One pending update of a step: parameter `index`, its gradient, and its update count t.
  struct Update {
    std::size_t index = 0;
    Tensor param;
    Tensor grad;
    std::int64_t t = 1;
  };
  // All updates of one step (every gradient already checked against its parameter). The default
  // calls update() for each; optimizers with a multi-tensor kernel override it to update all the
  // parameters of one CUDA device in a single launch.
  virtual void update_all(const std::vector<Update>& updates);
  // The updates grouped by device and dtype (groups in order of first appearance, updates in
  // list order within a group).
  static std::vector<std::vector<Update>> group_by_device(const std::vector<Update>& updates);

  // State slot k of parameter i, created zero-filled (then `fresh` is set) on first use, and
  // moved to the parameter's dtype/device if the parameter moved since.
  Tensor& slot(std::size_t i, std::size_t k, bool* fresh = nullptr);

  // Throws unless v is finite and v >= 0 ("[adam] lr must be ...").
  void check_non_negative(const char* what, double v) const;

 private:
  std::string name_;
  std::vector<Tensor> params_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor>> slots_;  // [param][slot], undefined until first use
  std::vector<std::int64_t> param_steps_;
  std::int64_t step_ = 0;
};

}  // namespace latent::optim
