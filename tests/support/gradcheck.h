// Central-difference gradient check in float64 on the CPU.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent::testing {

struct GradCheckResult {
  bool ok = true;
  double max_abs_err = 0;     // over all checked elements
  std::string first_failure;  // "input 1 element 7: analytic 0.25 numeric 0.5"
};

// Compares the autograd gradient of L = sum(fn(inputs) * w), for a fixed random w, with central
// differences (step h) for every element of every input that requires grad. Inputs must be
// float64 CPU tensors.
GradCheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double atol, double rtol,
                          double h = 1e-6);

}  // namespace latent::testing
