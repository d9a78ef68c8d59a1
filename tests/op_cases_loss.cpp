#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> loss_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  const std::pair<const char*, Reduction> modes[] = {{"none", Reduction::none},
                                                     {"sum", Reduction::sum},
                                                     {"batch_mean", Reduction::batch_mean},
                                                     {"mean", Reduction::mean}};

  // Benchmark: the reconstruction terms of a batch of 4096 images of 784 pixels. Per-sample sums
  // add non-negative terms (bce, squared errors, and 0.5 (log 2 pi + lv) > 0 for lv > -1.8).
  constexpr std::int64_t kBenchN = 4096, kBenchD = 784;
  for (const auto& entry : modes) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto mode = entry.first;
    const auto r = entry.second;
    const std::string m = mode;
    // Targets in [0, 1]: probabilities, not only hard labels.
    v.push_back(
        {.name = "bce_with_logits/" + m,
         .inputs =
             [](std::int64_t n) {
               return In{{.shape = {n, 5}, .lo = -3, .hi = 3}, {.shape = {n, 5}, .lo = 0, .hi = 1}};
             },
         .fn = [r](const std::vector<Tensor>& x) { return bce_with_logits(x[0], x[1], r); }});
    v.back().bench_inputs = [] {
      return In{{.shape = {kBenchN, kBenchD}, .lo = -3, .hi = 3},
                {.shape = {kBenchN, kBenchD}, .lo = 0, .hi = 1}};
    };
    // A training loss: the target needs no gradient, so the forward writes the logits' gradient.
    if (r != Reduction::none)
      v.push_back(
          {.name = "bce_with_logits/" + m + "_grad_in_forward",
           .inputs =
               [](std::int64_t n) {
                 return In{{.shape = {n, 5}, .lo = -3, .hi = 3},
                           {.shape = {n, 5}, .lo = 0, .hi = 1, .grad = false}};
               },
           .fn = [r](const std::vector<Tensor>& x) { return bce_with_logits(x[0], x[1], r); }});
    // Three-dimensional: the per-sample sums run over every non-first dimension.
    v.push_back({.name = "mse/" + m,
                 .inputs =
                     [](std::int64_t n) {
                       return In{{.shape = {n, 2, 3}}, {.shape = {n, 2, 3}}};
                     },
                 .fn = [r](const std::vector<Tensor>& x) { return mse(x[0], x[1], r); }});
    v.back().bench_inputs = [] {
      return In{{.shape = {kBenchN, kBenchD}}, {.shape = {kBenchN, kBenchD}}};
    };

    // gaussian_nll with each logvar layout; logvar in a moderate range so exp(-lv) stays tame.
    const std::pair<const char*, std::function<Shape(std::int64_t)>> layouts[] = {
        {"full",
         [](std::int64_t n) {
           return Shape{n, 4};
         }},
        {"row", [](std::int64_t) { return Shape{4}; }},
        {"scalar", [](std::int64_t) { return Shape{}; }},
        {"scalar1", [](std::int64_t) { return Shape{1}; }}};
    for (const auto& layout_entry : layouts) {
      const char* layout = layout_entry.first;
      auto lvs = layout_entry.second;
      v.push_back(
          {.name = std::string("gaussian_nll/") + layout + "/" + m,
           .inputs =
               [lvs](std::int64_t n) {
                 return In{{.shape = {n, 4}},
                           {.shape = lvs(n), .lo = -1.0, .hi = 1.0},
                           {.shape = {n, 4}, .lo = -1.5, .hi = 1.5}};
               },
           .fn = [r](const std::vector<Tensor>& x) { return gaussian_nll(x[0], x[1], x[2], r); }});
      // The learned-variance decoder: a mean and a log-variance per pixel.
      if (std::string(layout) == "full")
        v.back().bench_inputs = [] {
          return In{{.shape = {kBenchN, kBenchD}},
                    {.shape = {kBenchN, kBenchD}, .lo = -1.0, .hi = 1.0},
                    {.shape = {kBenchN, kBenchD}, .lo = -1.5, .hi = 1.5}};
        };
      // A fixed variance and data: the forward writes the mean's gradient.
      if (r != Reduction::none)
        v.push_back(
            {.name = std::string("gaussian_nll/") + layout + "/" + m + "_grad_in_forward",
             .inputs =
                 [lvs](std::int64_t n) {
                   return In{{.shape = {n, 4}},
                             {.shape = lvs(n), .lo = -1.0, .hi = 1.0, .grad = false},
                             {.shape = {n, 4}, .lo = -1.5, .hi = 1.5, .grad = false}};
                 },
             .fn =
                 [r](const std::vector<Tensor>& x) { return gaussian_nll(x[0], x[1], x[2], r); }});
    }

    // The learned-variance decoder's packed (mean | logvar) columns.
    if (r != Reduction::none)
      v.push_back(
          {.name = "gaussian_nll_packed/" + m,
           .inputs =
               [](std::int64_t n) {
                 return In{{.shape = {n, 8}, .lo = -1.0, .hi = 1.0},
                           {.shape = {n, 4}, .lo = -1.5, .hi = 1.5, .grad = false}};
               },
           .fn = [r](const std::vector<Tensor>& x) { return gaussian_nll_packed(x[0], x[1], r); }});

    // Three levels per dimension; data kept away from the rounding midpoints 0.25 and 0.75.
    if (r != Reduction::none)
      v.push_back(
          {.name = "categorical_nll/" + m,
           .inputs =
               [](std::int64_t n) {
                 return In{{.shape = {n, 4 * 3}, .lo = -2, .hi = 2},
                           {.shape = {n, 4}, .grad = false, .make = [](std::int64_t i, double u) {
                              const double centres[3] = {0.1, 0.5, 0.9};
                              return centres[(i + static_cast<int>(u * 3)) % 3];
                            }}};
               },
           .fn = [r](const std::vector<Tensor>& x) { return categorical_nll(x[0], x[1], 3, r); }});

    // Class indices 0..4 as floats; no gradient for them.
    v.push_back({.name = "cross_entropy/" + m,
                 .inputs =
                     [](std::int64_t n) {
                       return In{
                           {.shape = {n, 5}, .lo = -2, .hi = 2},
                           {.shape = {n}, .grad = false, .make = [](std::int64_t i, double u) {
                              return static_cast<double>((i + static_cast<int>(u * 5)) % 5);
                            }}};
                     },
                 .fn = [r](const std::vector<Tensor>& x) { return cross_entropy(x[0], x[1], r); }});
  }

  v.push_back({.name = "log_softmax",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 6}, .lo = -3, .hi = 3}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return log_softmax(x[0]); }});
  // Large logits: the max shift must keep the values (and the parity) exact.
  v.push_back({.name = "log_softmax/wide",
               .inputs =
                   [](std::int64_t n) {
                     return In{{.shape = {n, 6}, .lo = -60, .hi = 60}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return log_softmax(x[0]); }});
  v.push_back(
      {.name = "bce_with_logits/wide",
       .inputs =
           [](std::int64_t n) {
             return In{{.shape = {n, 5}, .lo = -30, .hi = 30}, {.shape = {n, 5}, .lo = 0, .hi = 1}};
           },
       .fn =
           [](const std::vector<Tensor>& x) {
             return bce_with_logits(x[0], x[1], Reduction::none);
           }});
  return v;
}

}  // namespace latent::testing
