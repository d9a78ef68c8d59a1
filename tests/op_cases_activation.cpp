#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> activation_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  // relu, leaky_relu and elu have a kink at 0 (elu's second derivative jumps there): their
  // inputs alternate in sign and stay at least 0.1 away from it.
  auto inputs_for = [](bool kinked) {
    return [kinked](std::int64_t n) {
      if (!kinked) return In{{.shape = {n, 6}, .lo = -2.5, .hi = 2.5}};
      return In{{.shape = {n, 6}, .make = [](std::int64_t i, double u) {
                   return (i % 2 ? 1.0 : -1.0) * (0.1 + 1.9 * u);
                 }}};
    };
  };
  struct Named {
    const char* name;
    ActParams params;
    std::function<Tensor(const Tensor&)> wrapper;  // the named function for act(x)
    bool kinked;
  };
  const std::vector<Named> acts = {
      {"identity",
       {.act = Act::identity},
       [](const Tensor& x) { return activation(x, {.act = Act::identity}); },
       false},
      {"relu", {.act = Act::relu}, [](const Tensor& x) { return relu(x); }, true},
      {"leaky_relu",
       {.act = Act::leaky_relu, .alpha = 0.1f},
       [](const Tensor& x) { return leaky_relu(x, 0.1f); },
       true},
      {"elu", {.act = Act::elu, .alpha = 0.7f}, [](const Tensor& x) { return elu(x, 0.7f); }, true},
      {"gelu", {.act = Act::gelu}, [](const Tensor& x) { return gelu(x); }, false},
      {"sigmoid", {.act = Act::sigmoid}, [](const Tensor& x) { return sigmoid(x); }, false},
      {"tanh", {.act = Act::tanh}, [](const Tensor& x) { return tanh(x); }, false},
      {"softplus", {.act = Act::softplus}, [](const Tensor& x) { return softplus(x); }, false},
  };
  // Benchmark: the same values on a hidden layer of 512 units at batch 4096.
  auto bench_for = [&](bool kinked) {
    return [inputs = inputs_for(kinked)] {
      In in = inputs(1);
      in[0].shape = {4096, 512};
      return in;
    };
  };
  for (const Named& a : acts) {
    auto wrapper = a.wrapper;
    v.push_back({.name = std::string("activation/") + a.name,
                 .inputs = inputs_for(a.kinked),
                 .fn = [wrapper](const std::vector<Tensor>& x) { return wrapper(x[0]); }});
    v.back().bench_inputs = bench_for(a.kinked);
    const ActParams p = a.params;
    v.push_back({.name = std::string("activation_grad/") + a.name,
                 .inputs = inputs_for(a.kinked),
                 .fn = [p](const std::vector<Tensor>& x) { return activation_grad(x[0], p); }});
    v.back().bench_inputs = bench_for(a.kinked);
  }
  // Large inputs where the naive formulas overflow: the stable forms must stay finite.
  v.push_back({.name = "activation/softplus_wide",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 6}, .lo = -40, .hi = 40}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return softplus(x[0]); }});
  v.push_back({.name = "activation/sigmoid_wide",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 6}, .lo = -12, .hi = 12}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return sigmoid(x[0]); }});
  return v;
}

}  // namespace latent::testing
