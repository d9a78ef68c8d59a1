// The one table of op cases. It drives
//   - the float64 central-difference gradient check on the CPU (tests/core/gradcheck_test.cpp),
//   - the CUDA-vs-CPU parity check (tests/cuda/parity_test.cpp),
//   - the kernel benchmark.
// Each family contributes its cases from its own file, tests/op_cases_<family>.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent::testing {

struct InputSpec {
  Shape shape;
  // Random values uniform in [lo, hi] unless `make` is set.
  double lo = -1.0;
  double hi = 1.0;
  // Differentiate w.r.t. this input (and check its gradient).
  bool grad = true;
  // Custom values: make(i, u) for element i with u uniform in (0, 1) (class indices, values kept
  // away from kinks, ...).
  std::function<double(std::int64_t i, double u)> make;
};

struct OpCase {
  std::string name;  // "family/variant", unique: "dense/relu"
  // The inputs for a batch of n rows (n is 3 in the gradient check; 1, 3, 127, 1025, 4099 in the
  // CUDA parity check).
  std::function<std::vector<InputSpec>(std::int64_t n)> inputs;
  // Optional: realistic training shapes for the kernel benchmark (bench/bench_kernels.cpp), for
  // cases whose batch-of-n inputs are too narrow to say anything about speed; unset, the benchmark
  // uses inputs(4096). The benchmark checks CUDA against the CPU at these shapes with the
  // tolerances below, so values are chosen to keep long sums free of cancellation.
  std::function<std::vector<InputSpec>()> bench_inputs;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  // CUDA-vs-CPU parity in float32: |gpu - cpu| <= atol + rtol * |cpu|.
  double atol = 1e-5;
  double rtol = 1e-4;
  // Gradient check in float64: |analytic - numeric| <= grad_atol + grad_rtol * |numeric|.
  double grad_atol = 1e-6;
  double grad_rtol = 1e-5;
  bool differentiable = true;
  // Rows used by the gradient check.
  std::int64_t grad_n = 3;
};

// All cases, in a fixed order.
const std::vector<OpCase>& op_cases();

// One function per family (tests/op_cases_<family>.cpp).
std::vector<OpCase> elementwise_cases();
std::vector<OpCase> activation_cases();
std::vector<OpCase> reduce_cases();
std::vector<OpCase> linalg_cases();
std::vector<OpCase> shape_cases();
std::vector<OpCase> loss_cases();
std::vector<OpCase> vae_cases();
std::vector<OpCase> contractive_cases();
std::vector<OpCase> sparsity_cases();

// Materializes a case's inputs for n rows, deterministically from `seed`, in the given dtype and
// device; inputs with grad = true require grad when `with_grad`.
std::vector<Tensor> make_inputs(const OpCase& c, std::int64_t n, DType dtype, Device device,
                                std::uint64_t seed, bool with_grad);

}  // namespace latent::testing
