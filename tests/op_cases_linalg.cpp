#include "op_cases.h"

namespace latent::testing {

namespace {

using In = std::vector<InputSpec>;
using kernels::Act;
using kernels::ActParams;

constexpr std::int64_t kD = 4;  // dense input size
constexpr std::int64_t kH = 5;  // dense output size

// Inputs that keep every pre-activation of the dense layer at least 0.2 away from 0 (relu,
// leaky_relu and elu have kinks there): x in [0.5, 1] is positive, each row of w has one sign
// (alternating between rows, so both sides of the kink are covered) and magnitude in [0.2, 0.6],
// so |x . w_h| >= 4 * 0.5 * 0.2 = 0.4, and the bias moves it by at most 0.2.
In dense_inputs(std::int64_t n, bool bias) {
  In in = {
      {.shape = {n, kD}, .make = [](std::int64_t, double u) { return 0.5 + 0.5 * u; }},
      {.shape = {kH, kD},
       .make =
           [](std::int64_t i, double u) {
             const double sign = (i / kD) % 2 == 0 ? 1.0 : -1.0;
             return sign * (0.2 + 0.4 * u);
           }},
  };
  if (bias) in.push_back({.shape = {kH}, .lo = -0.2, .hi = 0.2});
  return in;
}

// Benchmark shapes: the first layer of the 784-512-256-32 models at batch 128.
constexpr std::int64_t kBenchN = 128;
constexpr std::int64_t kBenchD = 784;
constexpr std::int64_t kBenchH = 512;

// All values positive, so no sum of the forward or of the gradients (over 784, 512 or 128 terms)
// cancels: float32 on either backend then stays well inside the parity tolerances. w in
// [0, 4/D] keeps the pre-activations near 1.5 (x in [0.5, 1]), where no activation saturates.
In dense_bench_inputs(bool bias) {
  In in = {{.shape = {kBenchN, kBenchD}, .lo = 0.5, .hi = 1.0},
           {.shape = {kBenchH, kBenchD}, .lo = 0.0, .hi = 4.0 / kBenchD}};
  if (bias) in.push_back({.shape = {kBenchH}, .lo = -0.2, .hi = 0.2});
  return in;
}

}  // namespace

std::vector<OpCase> linalg_cases() {
  std::vector<OpCase> v;

  // matmul: the batch n is the rows of the result; a and b are stored transposed when flagged.
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const std::string name = std::string("matmul/") + (ta ? "T" : "N") + (tb ? "T" : "N");
    v.push_back({.name = name,
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = ta ? Shape{4, n} : Shape{n, 4}},
                                 {.shape = tb ? Shape{5, 4} : Shape{4, 5}}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return matmul(x[0], x[1], ta, tb); }});
    // The dense layer's forward product: [128, 784] x [784, 512], positive values.
    v.back().bench_inputs = [=] {
      return In{
          {.shape = ta ? Shape{kBenchD, kBenchN} : Shape{kBenchN, kBenchD}, .lo = 0.5, .hi = 1.0},
          {.shape = tb ? Shape{kBenchH, kBenchD} : Shape{kBenchD, kBenchH},
           .lo = 0.0,
           .hi = 4.0 / kBenchD}};
    };
  }
  // The product the dense backward computes for dW: the batch is the inner dimension, so the
  // float sum runs over n terms.
  v.push_back({.name = "matmul/batch_inner",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 3}}, {.shape = {n, 4}}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1], true, false); },
               .atol = 1e-4});
  // The dense layer's dW at batch 128: [128, 512]^T x [128, 784].
  v.back().bench_inputs = [] {
    return In{{.shape = {kBenchN, kBenchH}, .lo = 0.5, .hi = 1.0},
              {.shape = {kBenchN, kBenchD}, .lo = 0.5, .hi = 1.0}};
  };

  struct ActCase {
    const char* name;
    ActParams params;
  };
  const ActCase acts[] = {{"identity", {Act::identity, 0.0f}},
                          {"relu", {Act::relu, 0.0f}},
                          {"leaky_relu", {Act::leaky_relu, 0.1f}},
                          {"elu", {Act::elu, 1.0f}},
                          {"gelu", {Act::gelu, 0.0f}},
                          {"sigmoid", {Act::sigmoid, 0.0f}},
                          {"tanh", {Act::tanh, 0.0f}},
                          {"softplus", {Act::softplus, 0.0f}},
                          // A negative alpha makes act' unrecoverable from the output: the
                          // layer keeps the pre-activation instead.
                          {"leaky_relu_negative_slope", {Act::leaky_relu, -0.5f}}};
  for (const ActCase& a : acts) {
    const ActParams p = a.params;
    v.push_back({.name = std::string("dense/") + a.name,
                 .inputs = [](std::int64_t n) { return dense_inputs(n, true); },
                 .fn = [=](const std::vector<Tensor>& x) { return dense(x[0], x[1], x[2], p); }});
    v.back().bench_inputs = [] { return dense_bench_inputs(true); };
    v.push_back(
        {.name = std::string("dense/") + a.name + "_nobias",
         .inputs = [](std::int64_t n) { return dense_inputs(n, false); },
         .fn = [=](const std::vector<Tensor>& x) { return dense(x[0], x[1], Tensor(), p); }});
    v.back().bench_inputs = [] { return dense_bench_inputs(false); };
  }
  // A stack of layers as one op: smooth activations (no kinks), the second layer without a
  // bias, and a last layer with and without an activation.
  for (const auto& [name, last] : {std::pair{"tanh_gelu_identity", kernels::Act::identity},
                                   std::pair{"tanh_gelu_sigmoid", kernels::Act::sigmoid}}) {
    const kernels::Act out_act = last;
    v.push_back({.name = std::string("mlp/") + name,
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 4}}, {.shape = {5, 4}}, {.shape = {5}},
                                 {.shape = {3, 5}}, {.shape = {2, 3}}, {.shape = {2}}};
                     },
                 .fn =
                     [out_act](const std::vector<Tensor>& x) {
                       return mlp(x[0], {{x[1], x[2], {kernels::Act::tanh, 0.0f}},
                                         {x[3], Tensor(), {kernels::Act::gelu, 0.0f}},
                                         {x[4], x[5], {out_act, 0.0f}}});
                     }});
  }
  // The weights' gradients sum over the batch (n terms of either sign; n = 4099 in the parity
  // check) in float on both sides, in cuBLAS's order on the GPU and ours on the CPU: a sum that
  // lands near 0 keeps the rounding of the large partial sums, about 2e-5.
  for (OpCase& c : v)
    if (c.name.rfind("matmul/", 0) == 0 || c.name.rfind("mlp/", 0) == 0) c.atol = 1e-4;
  return v;
}

}  // namespace latent::testing
