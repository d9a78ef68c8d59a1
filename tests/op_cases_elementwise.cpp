#include "core/backend.h"
#include "op_cases.h"

namespace latent::testing {

namespace {

// Benchmark shapes: a batch of 4096 images of 784 pixels.
constexpr std::int64_t kBenchRows = 4096;
constexpr std::int64_t kBenchCols = 784;

}  // namespace

std::vector<OpCase> elementwise_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  // Benchmark inputs: both operands in [0.5, 1.5], so the gradient of a broadcast operand (a sum
  // over 4096 rows or 784 columns) has no cancellation and the parity tolerances hold.
  auto bench = [](Shape a, Shape b) {
    return [=] {
      return In{{.shape = a, .lo = 0.5, .hi = 1.5}, {.shape = b, .lo = 0.5, .hi = 1.5}};
    };
  };
  const Shape full = {kBenchRows, kBenchCols};
  auto binary = [&](const std::string& name, auto fn, bool positive_b) {
    const double blo = positive_b ? 0.5 : -1.0;
    v.push_back({.name = name + "/same",
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 5}}, {.shape = {n, 5}, .lo = blo, .hi = 1.5}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0], x[1]); }});
    v.back().bench_inputs = bench(full, full);
    v.push_back({.name = name + "/row",
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 5}}, {.shape = {5}, .lo = blo, .hi = 1.5}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0], x[1]); }});
    v.back().bench_inputs = bench(full, {kBenchCols});
    v.push_back({.name = name + "/col",
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 5}}, {.shape = {n, 1}, .lo = blo, .hi = 1.5}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0], x[1]); }});
    v.back().bench_inputs = bench(full, {kBenchRows, 1});
    v.push_back({.name = name + "/scalar",
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 5}}, {.shape = {}, .lo = blo, .hi = 1.5}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0], x[1]); }});
    v.back().bench_inputs = bench(full, {});
    // The broadcast operand on the left: [D] op [N, D].
    v.push_back({.name = name + "/row_left",
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {5}}, {.shape = {n, 5}, .lo = blo, .hi = 1.5}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0], x[1]); }});
    v.back().bench_inputs = bench({kBenchCols}, full);
  };
  binary(
      "add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, false);
  binary(
      "sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, false);
  binary(
      "mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, false);
  binary(
      "div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, true);

  // The parity recipe of a one-input case, at the benchmark shape.
  auto at_shape = [](std::function<In(std::int64_t)> inputs, Shape shape) {
    return [=] {
      In in = inputs(1);
      in[0].shape = shape;
      return in;
    };
  };
  auto unary = [&](const std::string& name, auto fn, double lo, double hi) {
    v.push_back({.name = name,
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 7}, .lo = lo, .hi = hi}};
                     },
                 .fn = [=](const std::vector<Tensor>& x) { return fn(x[0]); }});
    v.back().bench_inputs = [=] { return In{{.shape = full, .lo = lo, .hi = hi}}; };
  };
  unary(
      "neg", [](const Tensor& x) { return neg(x); }, -1, 1);
  unary(
      "exp", [](const Tensor& x) { return exp(x); }, -2, 2);
  unary(
      "log", [](const Tensor& x) { return log(x); }, 0.2, 3);
  unary(
      "sqrt", [](const Tensor& x) { return sqrt(x); }, 0.2, 3);
  unary(
      "square", [](const Tensor& x) { return square(x); }, -2, 2);
  // abs and clamp have kinks: inputs kept away from 0 and from the bounds.
  v.push_back({.name = "abs",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 7}, .make = [](std::int64_t i, double u) {
                                  return (i % 2 ? 1.0 : -1.0) * (0.1 + u);
                                }}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return abs(x[0]); }});
  v.back().bench_inputs = at_shape(v.back().inputs, full);
  v.push_back({.name = "clamp",
               .inputs =
                   [](std::int64_t n) {
                     return In{
                         {.shape = {n, 7}, .make = [](std::int64_t i, double u) {
                            const double centers[3] = {-1.0, 0.0, 1.0};  // below, inside, above
                            return centers[i % 3] + 0.3 * (u - 0.5);
                          }}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return clamp(x[0], -0.5, 0.5); }});
  v.back().bench_inputs = at_shape(v.back().inputs, full);
  unary(
      "add_scalar", [](const Tensor& x) { return x + 2.5; }, -1, 1);
  unary(
      "mul_scalar", [](const Tensor& x) { return x * -1.5; }, -1, 1);
  unary(
      "rsub_scalar", [](const Tensor& x) { return 1.0 - x; }, -1, 1);
  unary(
      "rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, 0.5, 2);
  // Across the series (|eta| < 0.5 in float, 0.1 in double) and the closed forms.
  unary(
      "cb_log_norm", [](const Tensor& x) { return cb_log_norm(x); }, -6, 6);
  unary(
      "cb_log_norm_near_0", [](const Tensor& x) { return cb_log_norm(x); }, -0.6, 0.6);
  unary(
      "cb_mean", [](const Tensor& x) { return cb_mean(x); }, -6, 6);
  unary(
      "cb_mean_near_0", [](const Tensor& x) { return cb_mean(x); }, -0.6, 0.6);
  // a + w b and w b, w a one-element constant.
  for (const bool scaled : {false, true}) {
    v.push_back({.name = std::string("add_scaled/") + (scaled ? "scaled" : "sum"),
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 3}},
                                 {.shape = {n, 3}},
                                 {.shape = {1}, .lo = 0.5, .hi = 2, .grad = false}};
                     },
                 .fn =
                     [scaled](const std::vector<Tensor>& x) {
                       const ScaledSum s = add_scaled(x[0], x[1], x[2]);
                       return scaled ? s.scaled : s.sum;
                     }});
  }
  // The same with w computed by the kernel from a step count in memory (a linear ramp at step 3
  // of 8, scale 2: w = 0.75), the count fresh at every call.
  for (const bool scaled : {false, true}) {
    v.push_back({.name = std::string("add_scaled/ramp_") + (scaled ? "scaled" : "sum"),
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 3}}, {.shape = {n, 3}}};
                     },
                 .fn =
                     [scaled](const std::vector<Tensor>& x) {
                       const Tensor step = Tensor::zeros({2}, {.device = x[0].device()});
                       const std::int64_t at = 3;
                       backend::copy(step.raw_data(), step.device(), &at, Device::cpu(), sizeof at);
                       const kernels::Ramp ramp{
                           .kind = kernels::RampKind::linear, .steps = 8, .scale = 2.0};
                       const ScaledSum s = add_scaled(x[0], x[1], ramp, step);
                       return scaled ? s.scaled : s.sum;
                     }});
  }
  return v;
}

}  // namespace latent::testing
