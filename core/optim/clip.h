// Gradient clipping by global norm.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace latent::optim {

// The L2 norm of all defined gradients of `params` taken together (accumulated in double;
// parameters without a gradient are skipped). When it exceeds max_norm, every gradient is
// scaled in place by max_norm / (norm + 1e-6). Returns the norm before clipping.
// A non-finite norm (an inf or nan somewhere in the gradients) is returned as is and nothing is
// scaled: scaling would spread the nan to every gradient; the caller can test the result and skip
// the step. Throws latent::Error for a negative or non-finite max_norm.
// On a CUDA device the sum of squares is one deterministic multi-tensor reduction (identical bits
// run to run); reading the norm back to the host waits for the device: one synchronization per
// call, the price of returning the norm as a number.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// The same norm without clipping.
double grad_norm(const std::vector<Tensor>& params);

// Clipping by global norm with the norm and the factor in memory, read by the kernels when they
// run, so a recorded step that clips replays correctly (the Trainer uses it). clip(params) queues
// the sum of squares of every defined gradient, the factor max_norm / (norm + 1e-6) when the norm
// exceeds max_norm (else 1), and the scaling of every gradient by it; a non-finite norm makes the
// factor 0 and sets every gradient to 0 (no NaN spreads; the caller reads last_norm() and stops).
// The parameters share one device. Throws latent::Error for a negative or non-finite max_norm.
class GradClipper {
 public:
  explicit GradClipper(double max_norm);
  void clip(const std::vector<Tensor>& params);
  // The norm of the last clip() (reads the device: it waits for it); NaN before any.
  double last_norm() const;
  // Where the last clip() leaves its norm (one double in device memory; null before any clip),
  // for a read that does not wait (backend::ReadBack); its device.
  const double* norm_memory() const;
  Device device() const { return mem_.defined() ? mem_.device() : Device::cpu(); }
  double max_norm() const { return max_norm_; }

 private:
  double max_norm_;
  Tensor mem_;  // [sum of squares, norm, factor] as doubles in float32 storage
};

}  // namespace latent::optim
