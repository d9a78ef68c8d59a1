#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> vae_cases() {
  std::vector<OpCase> v;
  using In = std::vector<InputSpec>;
  constexpr std::int64_t kZ = 4;
  // h [n, 2Z] = (mu | logvar); logvar in [-1.5, 1.5], well inside the clamp range.
  auto h_spec = [](std::int64_t n) {
    return InputSpec{.shape = {n, 2 * kZ}, .lo = -1.5, .hi = 1.5};
  };
  // logvar columns alternate between below the clamp range and inside it: the clamped ones must
  // get exactly zero gradient (central differences see a flat function there). Above the range
  // exp(logvar) ~ 1e8 would drown the central differences in rounding error; that side is
  // covered by tests/core/vae_test.cpp.
  auto clamped_h_spec = [](std::int64_t n) {
    return InputSpec{.shape = {n, 2 * kZ}, .make = [](std::int64_t i, double u) {
                       if (i % (2 * kZ) < kZ) return 2 * u - 1;  // mu
                       return (i % 2 ? kLogvarMin - 5 : 0.0) + (u - 0.5);
                     }};
  };

  // Benchmark: the 784-512-256-32 VAE's encoder output at batch 4096, h [4096, 2 * 32].
  constexpr std::int64_t kBenchN = 4096, kBenchZ = 32;
  auto bench_h = [] { return InputSpec{.shape = {kBenchN, 2 * kBenchZ}, .lo = -1.5, .hi = 1.5}; };

  // The generated-noise overload builds its generator inside fn, so every call (the gradient
  // check calls fn many times) draws the same noise.
  for (std::int64_t samples : {1, 3}) {
    v.push_back({.name = "reparametrize/generated_r" + std::to_string(samples),
                 .inputs = [=](std::int64_t n) { return In{h_spec(n)}; },
                 .fn =
                     [=](const std::vector<Tensor>& x) {
                       Generator gen(2718);
                       gen.take(5);  // a non-zero starting offset
                       return reparametrize(x[0], samples, gen);
                     }});
    v.back().bench_inputs = [=] { return In{bench_h()}; };
  }
  // The sample and the KL together; z + kl (broadcast) makes both gradients reach h.
  for (std::int64_t samples : {1, 2}) {
    v.push_back({.name = "reparametrize_kl/r" + std::to_string(samples),
                 .inputs = [=](std::int64_t n) { return In{h_spec(n)}; },
                 .fn =
                     [=](const std::vector<Tensor>& x) {
                       Generator gen(2718);
                       gen.take(5);
                       const SampleAndKl s = reparametrize_kl(x[0], samples, gen);
                       return add(s.z, s.kl);
                     }});
    v.back().bench_inputs = [=] { return In{bench_h()}; };
  }
  v.push_back({.name = "reparametrize/eps",
               .inputs =
                   [=](std::int64_t n) {
                     return In{h_spec(n), {.shape = {2 * n, kZ}, .lo = -2, .hi = 2, .grad = false}};
                   },
               .fn = [](const std::vector<Tensor>& x) { return reparametrize(x[0], x[1]); }});
  v.back().bench_inputs = [=] {
    return In{bench_h(), {.shape = {2 * kBenchN, kBenchZ}, .lo = -2, .hi = 2, .grad = false}};
  };
  v.push_back(
      {.name = "reparametrize/clamped",
       .inputs =
           [=](std::int64_t n) {
             return In{clamped_h_spec(n), {.shape = {2 * n, kZ}, .lo = -2, .hi = 2, .grad = false}};
           },
       .fn = [](const std::vector<Tensor>& x) { return reparametrize(x[0], x[1]); }});

  const std::pair<const char*, Reduction> reductions[] = {{"none", Reduction::none},
                                                          {"sum", Reduction::sum},
                                                          {"batch_mean", Reduction::batch_mean},
                                                          {"mean", Reduction::mean}};
  for (const auto& entry : reductions) {
    // Named copies: lambdas capture them (clang before 16 cannot capture bindings).
    const auto name = entry.first;
    const auto red = entry.second;
    v.push_back({.name = std::string("kl_normal/") + name,
                 .inputs = [=](std::int64_t n) { return In{h_spec(n)}; },
                 .fn = [red](const std::vector<Tensor>& x) { return kl_normal(x[0], red); }});
    v.back().bench_inputs = [=] { return In{bench_h()}; };
  }
  v.push_back(
      {.name = "kl_normal/clamped",
       .inputs = [=](std::int64_t n) { return In{clamped_h_spec(n)}; },
       .fn = [](const std::vector<Tensor>& x) { return kl_normal(x[0], Reduction::none); }});
  v.push_back({.name = "kl_normal_terms",
               .inputs = [=](std::int64_t n) { return In{h_spec(n)}; },
               .fn = [](const std::vector<Tensor>& x) { return kl_normal_terms(x[0]); }});
  v.back().bench_inputs = [=] { return In{bench_h()}; };
  return v;
}

}  // namespace latent::testing
