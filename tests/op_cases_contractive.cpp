#include "op_cases.h"

namespace latent::testing {

namespace {

using In = std::vector<InputSpec>;

// Pre-activations with |x| in [0.2, 1.2], alternating in sign: both sides of relu's, leaky
// relu's and elu's kink at 0, never near it.
InputSpec preact_spec(Shape shape) {
  return {.shape = shape,
          .make = [](std::int64_t i, double u) { return (i % 2 ? 1.0 : -1.0) * (0.2 + u); }};
}

}  // namespace

std::vector<OpCase> contractive_cases() {
  std::vector<OpCase> v;
  constexpr std::int64_t kH = 5, kD = 4;
  // Benchmark: one encoder layer 784 -> 512 at batch 4096. Every term of the penalty and of its
  // gradient sums is non-negative (squares), so long sums stay within the parity tolerances.
  auto bench = [] { return In{preact_spec({4096, 512}), {.shape = {512, 784}}}; };

  const std::pair<const char*, ActParams> acts[] = {{"identity", {Act::identity}},
                                                    {"relu", {Act::relu}},
                                                    {"leaky_relu", {Act::leaky_relu, 0.1f}},
                                                    {"elu", {Act::elu, 1.0f}},
                                                    {"gelu", {Act::gelu}},
                                                    {"sigmoid", {Act::sigmoid}},
                                                    {"tanh", {Act::tanh}},
                                                    {"softplus", {Act::softplus}}};
  for (const auto& entry : acts) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto name = entry.first;
    const auto act = entry.second;
    v.push_back(
        {.name = std::string("contractive_penalty/") + name,
         .inputs =
             [=](std::int64_t n) {
               return In{preact_spec({n, kH}), {.shape = {kH, kD}}};
             },
         .fn =
             [act](const std::vector<Tensor>& x) { return contractive_penalty(x[0], x[1], act); }});
    v.back().bench_inputs = bench;
  }
  const std::pair<const char*, Reduction> reductions[] = {
      {"none", Reduction::none}, {"sum", Reduction::sum}, {"mean", Reduction::mean}};
  for (const auto& entry : reductions) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto name = entry.first;
    const auto red = entry.second;
    v.push_back({.name = std::string("contractive_penalty/sigmoid_") + name,
                 .inputs =
                     [=](std::int64_t n) {
                       return In{preact_spec({n, kH}), {.shape = {kH, kD}}};
                     },
                 .fn =
                     [red](const std::vector<Tensor>& x) {
                       return contractive_penalty(x[0], x[1], {Act::sigmoid}, red);
                     }});
    v.back().bench_inputs = bench;
  }

  v.push_back({.name = "jacobian_seed",
               .inputs =
                   [=](std::int64_t n) {
                     return In{{.shape = {n, 3}}, {.shape = {3, kH}}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return jacobian_seed(x[0], x[1]); }});
  v.push_back({.name = "scale_row_groups",
               .inputs =
                   [=](std::int64_t n) {
                     return In{{.shape = {3 * n, kH}}, {.shape = {n, kH}}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return scale_row_groups(x[0], x[1]); }});

  // One layer: input x [n, 4] -> code [n, 3].
  v.push_back({.name = "jacobian_penalty/one_layer_sigmoid",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {3, 4}}, preact_spec({n, 3})};
                   },
               .fn =
                   [](const std::vector<Tensor>& x) {
                     return jacobian_penalty({x[0]}, {x[1]}, {{Act::sigmoid}});
                   }});
  // Three layers 4 -> 6 -> 5 -> 3 with mixed activations; inputs: w1, w2, w3, pre1, pre2, pre3.
  const std::pair<const char*, Reduction> deep_reductions[] = {
      {"none", Reduction::none},
      {"sum", Reduction::sum},
      {"batch_mean", Reduction::batch_mean},
      {"mean", Reduction::mean}};
  for (const auto& entry : deep_reductions) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto name = entry.first;
    const auto red = entry.second;
    v.push_back({.name = std::string("jacobian_penalty/three_layers_") + name,
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {6, 4}},   {.shape = {5, 6}},   {.shape = {3, 5}},
                                 preact_spec({n, 6}), preact_spec({n, 5}), preact_spec({n, 3})};
                     },
                 .fn =
                     [red](const std::vector<Tensor>& x) {
                       return jacobian_penalty({x[0], x[1], x[2]}, {x[3], x[4], x[5]},
                                               {{Act::tanh}, {Act::softplus}, {Act::elu, 1.0f}},
                                               red);
                     }});
  }
  v.push_back({.name = "jacobian_penalty/three_layers_relu_gelu_sigmoid",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {6, 4}},   {.shape = {5, 6}},   {.shape = {3, 5}},
                               preact_spec({n, 6}), preact_spec({n, 5}), preact_spec({n, 3})};
                   },
               .fn =
                   [](const std::vector<Tensor>& x) {
                     return jacobian_penalty({x[0], x[1], x[2]}, {x[3], x[4], x[5]},
                                             {{Act::relu}, {Act::gelu}, {Act::sigmoid}});
                   }});
  // The weights' gradients sum over the batch in float on both sides, in other orders: a sum
  // near 0 keeps the rounding of its large partial sums (as for matmul's).
  for (OpCase& c : v)
    if (c.name.rfind("jacobian_penalty/", 0) == 0) c.atol = 1e-4;
  return v;
}

}  // namespace latent::testing
