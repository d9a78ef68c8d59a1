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

}  // namespace latent::optim
