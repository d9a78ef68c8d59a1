#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> reduce_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  using Fn = std::function<Tensor(const Tensor&)>;

  // Sums over many rows lose a few float32 ulps on either backend: looser absolute tolerance
  // for them than for means.
  auto add = [&](const std::string& name, Fn fn, double lo, double hi, double atol) {
    v.push_back({.name = name,
                 .inputs =
                     [=](std::int64_t n) {
                       return In{{.shape = {n, 5}, .lo = lo, .hi = hi}};
                     },
                 .fn = [fn](const std::vector<Tensor>& x) { return fn(x[0]); },
                 .atol = atol});
  };

  // Benchmark: 4096 images of 784 pixels. Sums and means get values in [0, 1]: a sum of 784 or
  // 4096 terms of both signs could land near zero, below what the tolerances allow for.
  auto bench = [](double lo, double hi) {
    return [=] { return In{{.shape = {4096, 784}, .lo = lo, .hi = hi}}; };
  };
  add(
      "sum/all", [](const Tensor& x) { return sum(x); }, -1, 1, 1e-3);
  v.back().bench_inputs = bench(0, 1);
  add(
      "mean/all", [](const Tensor& x) { return mean(x); }, -1, 1, 1e-5);
  v.back().bench_inputs = bench(0, 1);
  v.push_back({.name = "sum/all_3d",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 2, 3}}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return sum(x[0]); },
               .atol = 1e-3});
  v.push_back({.name = "mean/all_1d",
               .inputs = [](std::int64_t n) { return In{{.shape = {n}}}; },
               .fn = [](const std::vector<Tensor>& x) { return mean(x[0]); }});

  struct Variant {
    const char* suffix;
    int dim;
    bool keepdim;
  };
  const Variant variants[] = {{"dim0", 0, false},      {"dim0_keepdim", 0, true},
                              {"dim1", 1, false},      {"dim1_keepdim", 1, true},
                              {"dim_neg1", -1, false}, {"dim_neg2_keepdim", -2, true}};
  for (const Variant& var : variants) {
    const int d = var.dim;
    const bool k = var.keepdim;
    const std::string s = var.suffix;
    // A reduction over dim 0 adds n values; over dim 1 five.
    const double sum_atol = (d == 0 || d == -2) ? 1e-3 : 1e-5;
    add(
        "sum/" + s, [d, k](const Tensor& x) { return sum(x, d, k); }, -1, 1, sum_atol);
    v.back().bench_inputs = bench(0, 1);
    add(
        "mean/" + s, [d, k](const Tensor& x) { return mean(x, d, k); }, -1, 1, 1e-5);
    v.back().bench_inputs = bench(0, 1);
    add(
        "logsumexp/" + s, [d, k](const Tensor& x) { return logsumexp(x, d, k); }, -3, 3, 1e-4);
    v.back().bench_inputs = bench(-3, 3);
    add(
        "logmeanexp/" + s, [d, k](const Tensor& x) { return logmeanexp(x, d, k); }, -3, 3, 1e-4);
    v.back().bench_inputs = bench(-3, 3);
  }
  // Values whose exponentials overflow float32 (and float64 beyond ~709): only the
  // max-subtracted form gives finite results and gradients.
  add(
      "logsumexp/dim1_wide", [](const Tensor& x) { return logsumexp(x, 1); }, -800, 800, 1e-3);
  add(
      "logmeanexp/dim0_wide", [](const Tensor& x) { return logmeanexp(x, 0); }, -800, 800, 1e-3);
  // Central differences of outputs near 800 carry ~1e-7 of rounding noise.
  v[v.size() - 2].grad_atol = 1e-5;
  v.back().grad_atol = 1e-5;
  return v;
}

}  // namespace latent::testing
