#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> sparsity_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  // Benchmark: the same values on a code of 128 units at batch 4096.
  auto bench = [](const std::function<In(std::int64_t)>& inputs) {
    In in = inputs(1);
    in[0].shape = {4096, 128};
    return in;
  };
  const std::pair<const char*, Reduction> modes[] = {{"none", Reduction::none},
                                                     {"sum", Reduction::sum},
                                                     {"batch_mean", Reduction::batch_mean},
                                                     {"mean", Reduction::mean}};
  for (const auto& entry : modes) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto mode = entry.first;
    const auto r = entry.second;
    // |h| has a kink at 0: values alternate in sign and stay at least 0.1 away from it.
    v.push_back({.name = std::string("l1_penalty/") + mode,
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 6}, .make = [](std::int64_t i, double u) {
                                    return (i % 2 ? 1.0 : -1.0) * (0.1 + u);
                                  }}};
                     },
                 .fn = [r](const std::vector<Tensor>& x) { return l1_penalty(x[0], r); }});
    v.back().bench_inputs = [bench, inputs = v.back().inputs] { return bench(inputs); };
  }
  // h like a sigmoid code, in (0.05, 0.95): rho_hat stays far from the clamp.
  for (double rho : {0.05, 0.5}) {
    v.push_back({.name = rho < 0.1 ? "kl_sparsity/rho_0.05" : "kl_sparsity/rho_0.5",
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 7}, .lo = 0.05, .hi = 0.95}};
                     },
                 .fn = [rho](const std::vector<Tensor>& x) { return kl_sparsity(x[0], rho); }});
    v.back().bench_inputs = [bench, inputs = v.back().inputs] { return bench(inputs); };
  }
  return v;
}

}  // namespace latent::testing
