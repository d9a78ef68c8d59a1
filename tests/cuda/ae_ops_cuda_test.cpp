// The CUDA kernels of the autoencoder ops (losses, VAE sampling and KL, contractive and sparsity
// penalties) against the CPU reference at N = 4099 rows, with row lengths on both sides of the
// warp-per-row limit; noise drawn and regenerated on the GPU; bitwise repeatability; NaN for a
// bad class index. Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

constexpr std::int64_t kN = 4099;

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

struct Spec {
  Shape shape;
  double lo = -1.0;
  double hi = 1.0;
  bool grad = true;
  std::function<float(std::int64_t)> value;  // custom values (class indices) instead of uniform
};

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string name;
  std::vector<Spec> inputs;
  Fn fn;
  double atol = 1e-5;
  double rtol = 1e-4;
};

// The same values on every device: drawn on the CPU from one seed, then moved.
std::vector<Tensor> make_inputs(const std::vector<Spec>& specs, Device dev) {
  Generator gen(7);
  std::vector<Tensor> out;
  for (const Spec& s : specs) {
    Tensor t = Tensor::rand(s.shape, gen, {}, s.lo, s.hi);
    if (s.value) {
      std::vector<float> v(static_cast<std::size_t>(s.shape.numel()));
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = s.value(static_cast<std::int64_t>(i));
      t = Tensor::from_data(std::span<const float>(v), s.shape);
    }
    if (dev.is_cuda()) t = t.to(dev);
    if (s.grad) t.requires_grad_();
    out.push_back(t);
  }
  return out;
}

struct Outcome {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;
};

// Forward, then backward with fixed weights in (0.5, 1.5); everything copied to the host.
Outcome run(const Case& c, Device dev) {
  std::vector<Tensor> in = make_inputs(c.inputs, dev);
  Tensor y = c.fn(in);
  Outcome r;
  r.out = y.to_vector<float>();
  Generator wg(5);
  const Tensor w = Tensor::rand(y.shape(), wg, {}, 0.5, 1.5);
  y.backward(w.to(dev));
  for (const Tensor& t : in)
    if (t.requires_grad()) r.grads.push_back(t.grad().to_vector<float>());
  return r;
}

void expect_close(const std::vector<float>& gpu, const std::vector<float>& cpu, double atol,
                  double rtol, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  int bad = 0;
  bool all_zero = true;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    all_zero = all_zero && cpu[i] == 0.0f;
    const double err = std::fabs(static_cast<double>(gpu[i]) - cpu[i]);
    if (!(err <= atol + rtol * std::fabs(static_cast<double>(cpu[i]))) && bad++ < 5)
      ADD_FAILURE() << what << " element " << i << ": gpu " << gpu[i] << " cpu " << cpu[i];
  }
  EXPECT_EQ(bad, 0) << what << ": elements out of tolerance";
  // An all-zero reference would let a kernel that writes nothing pass.
  EXPECT_FALSE(all_zero && !cpu.empty()) << what << ": the CPU reference is all zeros";
}

std::vector<std::uint32_t> bits(const std::vector<float>& v) {
  std::vector<std::uint32_t> b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

std::vector<Case> cases() {
  std::vector<Case> v;
  const std::pair<const char*, Reduction> reductions[] = {{"none", Reduction::none},
                                                          {"sum", Reduction::sum},
                                                          {"batch_mean", Reduction::batch_mean},
                                                          {"mean", Reduction::mean}};
  // 5: a warp per row; 300: a block per row, and more than one 32-column tile.
  for (std::int64_t d : {5, 300}) {
    const std::string w = "/d" + std::to_string(d);
    for (const auto& [rname, r] : reductions) {
      const std::string sfx = w + "/" + rname;
      const Reduction red = r;
      v.push_back({"bce_with_logits" + sfx,
                   {{.shape = {kN, d}, .lo = -3, .hi = 3}, {.shape = {kN, d}, .lo = 0, .hi = 1}},
                   [red](const auto& x) { return bce_with_logits(x[0], x[1], red); }});
      v.push_back({"mse" + sfx, {{.shape = {kN, d}}, {.shape = {kN, d}}}, [red](const auto& x) {
                     return mse(x[0], x[1], red);
                   }});
      const std::pair<const char*, Shape> layouts[] = {
          {"full", Shape{kN, d}}, {"row", Shape{d}}, {"scalar", Shape{}}};
      for (const auto& [lname, lshape] : layouts)
        v.push_back({std::string("gaussian_nll/") + lname + sfx,
                     {{.shape = {kN, d}},
                      {.shape = lshape, .lo = -1, .hi = 1},
                      {.shape = {kN, d}, .lo = -1.5, .hi = 1.5}},
                     [red](const auto& x) { return gaussian_nll(x[0], x[1], x[2], red); }});
      v.push_back({"cross_entropy" + sfx,
                   {{.shape = {kN, d}, .lo = -2, .hi = 2},
                    {.shape = {kN},
                     .grad = false,
                     .value = [d](std::int64_t i) { return static_cast<float>((i * 7) % d); }}},
                   [red](const auto& x) { return cross_entropy(x[0], x[1], red); }});
      v.push_back({"l1_penalty" + sfx, {{.shape = {kN, d}}}, [red](const auto& x) {
                     return l1_penalty(x[0], red);
                   }});
      v.push_back({"kl_normal" + sfx,
                   {{.shape = {kN, 2 * d}, .lo = -1.5, .hi = 1.5}},
                   [red](const auto& x) { return kl_normal(x[0], red); }});
      for (const auto& [aname, act] :
           {std::pair{"sigmoid", kernels::Act::sigmoid}, std::pair{"tanh", kernels::Act::tanh}}) {
        const kernels::ActParams p{.act = act};
        v.push_back({std::string("contractive_penalty/") + aname + sfx,
                     {{.shape = {kN, d}, .lo = -2, .hi = 2}, {.shape = {d, 20}}},
                     [p, red](const auto& x) { return contractive_penalty(x[0], x[1], p, red); }});
      }
    }
    v.push_back({"log_softmax" + w, {{.shape = {kN, d}, .lo = -30, .hi = 30}}, [](const auto& x) {
                   return log_softmax(x[0]);
                 }});
    v.push_back({"kl_normal_terms" + w,
                 {{.shape = {kN, 2 * d}, .lo = -1.5, .hi = 1.5}},
                 [](const auto& x) { return kl_normal_terms(x[0]); }});
    v.push_back({"kl_sparsity" + w,
                 {{.shape = {kN, d}, .lo = 0.05, .hi = 0.95}},
                 [](const auto& x) { return kl_sparsity(x[0], 0.1); }});
    v.push_back({"jacobian_seed" + w, {{.shape = {kN, 3}}, {.shape = {3, d}}}, [](const auto& x) {
                   return jacobian_seed(x[0], x[1]);
                 }});
    v.push_back({"scale_row_groups" + w,
                 {{.shape = {3 * kN, d}}, {.shape = {kN, d}}},
                 [](const auto& x) { return scale_row_groups(x[0], x[1]); }});
    v.push_back({"reparametrize/eps" + w,
                 {{.shape = {kN, 2 * d}, .lo = -1.5, .hi = 1.5},
                  {.shape = {2 * kN, d}, .lo = -2, .hi = 2, .grad = false}},
                 [](const auto& x) { return reparametrize(x[0], x[1]); }});
    v.push_back({"reparametrize/generated" + w,
                 {{.shape = {kN, 2 * d}, .lo = -1.5, .hi = 1.5}},
                 [](const auto& x) {
                   Generator gen(2718);
                   gen.take(5);
                   return reparametrize(x[0], 3, gen);
                 }});
  }
  return v;
}

TEST(AeOpsCuda, MatchCpuAndRepeatBitwise) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const Outcome cpu = run(c, Device::cpu());
    const Outcome g1 = run(c, gpu);
    const Outcome g2 = run(c, gpu);
    expect_close(g1.out, cpu.out, c.atol, c.rtol, "forward");
    EXPECT_EQ(bits(g1.out), bits(g2.out)) << "forward differs between two GPU runs";
    ASSERT_EQ(g1.grads.size(), cpu.grads.size());
    for (std::size_t i = 0; i < cpu.grads.size(); ++i) {
      expect_close(g1.grads[i], cpu.grads[i], c.atol, c.rtol, "grad " + std::to_string(i));
      EXPECT_EQ(bits(g1.grads[i]), bits(g2.grads[i]))
          << "grad " << i << " differs between two GPU runs";
    }
  }
}

// z = mu + exp(logvar / 2) eps with eps drawn inside the kernel: the same Philox elements as the
// CPU, for R*N*Z not a multiple of 4 (noise blocks straddle rows and samples).
TEST(AeOpsCuda, ReparametrizeSameNoiseAsCpu) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  constexpr std::int64_t kZ = 7;
  Generator hg(3);
  const Tensor h = Tensor::rand({kN, 2 * kZ}, hg, {}, -1.5, 1.5);
  Generator gc(2718), gg(2718);
  gc.take(5);
  gg.take(5);
  const auto zc = reparametrize(h, 3, gc).to_vector<float>();
  const auto zg = reparametrize(h.to(gpu), 3, gg).to_vector<float>();
  EXPECT_EQ(gc.offset(), gg.offset());
  ASSERT_EQ(zc.size(), zg.size());
  int bad = 0;
  for (std::size_t i = 0; i < zc.size(); ++i)
    if (!(std::fabs(zc[i] - zg[i]) <= 1e-5f * (1 + std::fabs(zc[i]))) && bad++ < 5)
      ADD_FAILURE() << "z element " << i << ": gpu " << zg[i] << " cpu " << zc[i];
  EXPECT_EQ(bad, 0);
}

// With mu = 0 and logvar = 0 the sample is the noise itself, and d/dlogvar = 1/2 sum_r dz eps.
// The backward regenerates eps from (seed, offset): it must equal the drawn noise, so the
// gradient matches the explicit-noise path bit for bit and the hand-computed sums.
TEST(AeOpsCuda, ReparametrizeBackwardRegeneratesNoise) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  constexpr std::int64_t kZ = 7, kR = 3;
  Tensor h1 = Tensor::zeros({kN, 2 * kZ}, {.device = gpu}).requires_grad_();
  Tensor h2 = Tensor::zeros({kN, 2 * kZ}, {.device = gpu}).requires_grad_();
  Generator gen(99);
  gen.take(3);
  Tensor z = reparametrize(h1, kR, gen);
  const Tensor eps = z.detach();
  Generator wg(4);
  const Tensor w = Tensor::rand({kR * kN, kZ}, wg, {}, -1.0, 1.0);
  z.backward(w.to(gpu));
  reparametrize(h2, eps).backward(w.to(gpu));
  const auto g1 = h1.grad().to_vector<float>();
  const auto g2 = h2.grad().to_vector<float>();
  EXPECT_EQ(bits(g1), bits(g2)) << "regenerated noise differs from the drawn noise";

  const auto e = eps.to_vector<float>();
  const auto wv = w.to_vector<float>();
  std::vector<float> want(g1.size());
  for (std::int64_t n = 0; n < kN; ++n)
    for (std::int64_t k = 0; k < kZ; ++k) {
      double mu = 0, lv = 0;
      for (std::int64_t r = 0; r < kR; ++r) {
        const std::size_t i = static_cast<std::size_t>((r * kN + n) * kZ + k);
        mu += wv[i];
        lv += 0.5 * static_cast<double>(wv[i] * e[i]);
      }
      want[static_cast<std::size_t>(n * 2 * kZ + k)] = static_cast<float>(mu);
      want[static_cast<std::size_t>(n * 2 * kZ + kZ + k)] = static_cast<float>(lv);
    }
  expect_close(g1, want, 1e-6, 1e-5, "dh");

  // And the noise is the CPU's for the same generator state.
  Generator cg(99);
  cg.take(3);
  const auto ec = reparametrize(Tensor::zeros({kN, 2 * kZ}), kR, cg).to_vector<float>();
  expect_close(e, ec, 1e-5, 1e-5, "noise");
}

// No host-side target check on the GPU: a bad class index turns its row into NaN.
TEST(AeOpsCuda, CrossEntropyBadTargetIsNaN) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  Generator g(1);
  const Tensor logits = Tensor::rand({6, 5}, g, {}, -2, 2);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> t = {2.0f, 5.0f, 1.5f, -1.0f, nan, 4.0f};  // rows 1..4 are bad
  const Tensor target = Tensor::from_data(std::span<const float>(t), {6});
  EXPECT_THROW(cross_entropy(logits, target, Reduction::none), Error);  // the CPU checks

  Tensor lg = logits.to(gpu).requires_grad_();
  const Tensor tg = target.to(gpu);
  Tensor per_sample = cross_entropy(lg, tg, Reduction::none);
  const auto v = per_sample.to_vector<float>();
  ASSERT_EQ(v.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    const bool bad = i >= 1 && i <= 4;
    EXPECT_EQ(std::isnan(v[static_cast<std::size_t>(i)]), bad) << "row " << i;
  }
  per_sample.backward(Tensor::ones({6}, {.device = gpu}));
  const auto dx = lg.grad().to_vector<float>();
  for (int i = 0; i < 6; ++i)
    for (int k = 0; k < 5; ++k)
      EXPECT_EQ(std::isnan(dx[static_cast<std::size_t>(i * 5 + k)]), i >= 1 && i <= 4)
          << "row " << i << " class " << k;
  EXPECT_TRUE(std::isnan(cross_entropy(logits.to(gpu), tg, Reduction::batch_mean).item()));
  EXPECT_TRUE(std::isnan(cross_entropy(logits.to(gpu), tg, Reduction::sum).item()));
}

// Sums over an empty batch are 0 (the reduced kernels still write their output).
TEST(AeOpsCuda, EmptyBatchSumIsZero) {
  LATENT_REQUIRE_GPU();
  const TensorOptions o{.device = Device::cuda(0)};
  const Tensor x = Tensor::zeros({0, 5}, o);
  EXPECT_EQ(bce_with_logits(x, x, Reduction::sum).item(), 0.0);
  EXPECT_EQ(mse(x, x, Reduction::sum).item(), 0.0);
  EXPECT_EQ(l1_penalty(x, Reduction::sum).item(), 0.0);
  EXPECT_EQ(kl_normal(Tensor::zeros({0, 4}, o), Reduction::sum).item(), 0.0);
  EXPECT_EQ(cross_entropy(x, Tensor::zeros({0}, o), Reduction::sum).item(), 0.0);
  EXPECT_EQ(bce_with_logits(x, x, Reduction::none).numel(), 0);
}

// The bias of an empty batch gets a gradient of zeros, as on the CPU, not the memory it was
// given (the pool's last block of that size, filled with ones first).
TEST(AeOpsCuda, EmptyBatchBiasGradientIsZero) {
  LATENT_REQUIRE_GPU();
  for (const Device d : {Device::cpu(), Device::cuda(0)}) {
    { const Tensor stale = Tensor::ones({5}, {.device = d}); }
    const Tensor x = Tensor::zeros({0, 5}, {.device = d}).requires_grad_();
    const Tensor b = Tensor::zeros({5}, {.device = d}).requires_grad_();
    sum(add(x, b)).backward();
    ASSERT_TRUE(b.grad().defined()) << d.str();
    EXPECT_EQ(b.grad().to_vector<float>(), std::vector<float>(5, 0.0f)) << d.str();
  }
}

// A logit of +inf: the categorical loss is +inf on both backends (the log-sum-exp is the inf
// itself), not NaN on the GPU.
TEST(AeOpsCuda, CategoricalInfiniteLogitMatchesCpu) {
  LATENT_REQUIRE_GPU();
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor logits = Tensor::from_data(std::vector<float>{0.0f, inf, 0.0f}, {1, 3});
  const Tensor x = Tensor::zeros({1, 1});
  const double cpu = categorical_nll(logits, x, 3, Reduction::sum).item();
  const double gpu =
      categorical_nll(logits.to(Device::cuda(0)), x.to(Device::cuda(0)), 3, Reduction::sum).item();
  EXPECT_TRUE(std::isinf(cpu) && cpu > 0) << cpu;
  EXPECT_EQ(gpu, cpu);
}

// A NaN anywhere in a row makes the row NaN on both backends, in rows a warp sums and rows a
// block sums; the categorical likelihood's row too (a NaN after +inf: not +inf).
TEST(AeOpsCuda, NaNLogitsMatchCpu) {
  LATENT_REQUIRE_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const std::int64_t k : {std::int64_t{3}, std::int64_t{40}, std::int64_t{700}}) {
    std::vector<float> v(static_cast<std::size_t>(4 * k), 1.0f);
    // Row 0: NaN first, then +inf; row 1: NaN second, +inf last; row 2: +inf first, NaN last;
    // row 3: finite.
    v[0] = nan;
    v[1] = inf;
    v[static_cast<std::size_t>(k + 1)] = nan;
    v[static_cast<std::size_t>(2 * k - 1)] = inf;
    v[static_cast<std::size_t>(2 * k)] = inf;
    v[static_cast<std::size_t>(3 * k - 1)] = nan;
    const Tensor x = Tensor::from_data(v, {4, k});
    const std::vector<float> cpu = log_softmax(x).to_vector<float>();
    const std::vector<float> gpu =
        log_softmax(x.to(Device::cuda(0))).to(Device::cpu()).to_vector<float>();
    for (std::size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_EQ(std::isnan(cpu[i]), static_cast<std::int64_t>(i) < 3 * k) << k << " " << i;
      EXPECT_EQ(std::isnan(gpu[i]), std::isnan(cpu[i])) << k << " " << i;
      if (!std::isnan(cpu[i])) {
        EXPECT_NEAR(gpu[i], cpu[i], 1e-5) << k << " " << i;
      }
    }
  }
  const Tensor logits = Tensor::from_data(std::vector<float>{1.0f, nan, inf}, {1, 3});
  const Tensor level0 = Tensor::zeros({1, 1});  // the finite logit's level
  const double lc = categorical_nll(logits, level0, 3, Reduction::sum).item();
  const double lg =
      categorical_nll(logits.to(Device::cuda(0)), level0.to(Device::cuda(0)), 3, Reduction::sum)
          .item();
  EXPECT_TRUE(std::isnan(lc) && std::isnan(lg)) << lc << " " << lg;
}

}  // namespace
}  // namespace latent
