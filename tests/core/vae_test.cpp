// Reparametrized sampling and the KL divergence to N(0, I): hand-computed values, the noise
// stream, sample statistics, a Monte Carlo check of the closed form, clamping and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/latent.h"
#include "kernels/philox.h"
#include "support/test_util.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent {
namespace {

using latent::testing::expect_thread_count_independent;

using testing::error_of;
using testing::expect_near_all;
using testing::f64;
using testing::kF64;

// ---- reparametrize ---------------------------------------------------------------------------

TEST(Reparametrize, ExplicitNoiseHandComputed) {
  // mu = (0.5, -1), logvar = (0, 2): sigma = (1, e).
  Tensor h = f64({0.5, -1.0, 0.0, 2.0}, {1, 4}, true);
  Tensor eps = f64({1.0, -0.5, 0.3, 2.0}, {2, 2});
  Tensor z = reparametrize(h, eps);
  EXPECT_EQ(z.shape(), Shape({2, 2}));
  expect_near_all(z.to_vector<double>(), {1.5, -2.3591409142295223, 0.8, 4.43656365691809}, 1e-14);
  z.backward(Tensor::ones({2, 2}, kF64));
  // dmu = sum_r dz; dlogvar = sum_r dz * eps * sigma / 2.
  expect_near_all(h.grad().to_vector<double>(), {2.0, 2.0, 0.65, 2.038711371344284}, 1e-14);
  EXPECT_EQ(z.grad_fn_name(), "reparametrize");
}

TEST(Reparametrize, EpsGetsNoGradient) {
  Tensor h = f64({0.1, 0.2}, {1, 2}, true);
  Tensor eps = f64({0.7, -0.4}, {2, 1}, true);
  reparametrize(h, eps).backward(Tensor::ones({2, 1}, kF64));
  EXPECT_FALSE(eps.grad().defined());
  EXPECT_TRUE(h.grad().defined());
}

TEST(Reparametrize, ElementIIsNormalAtOfTheReservedOffset) {
  Generator gen(31);
  gen.take(9);  // start away from offset 0
  const std::uint64_t offset = gen.offset();
  Tensor h = Tensor::zeros({3, 2 * 5});  // mu = 0, logvar = 0: z = eps
  const auto z = reparametrize(h, 2, gen).to_vector<float>();
  ASSERT_EQ(z.size(), 2u * 3u * 5u);
  for (std::uint64_t i = 0; i < z.size(); ++i)
    EXPECT_EQ(z[i], kernels::philox::normal_at(31, offset, i)) << i;
  EXPECT_EQ(gen.offset(), offset + kernels::philox::blocks_for(30));
}

// The generated-noise path regenerates eps in its backward; the explicit path saves it. For the
// same generator state both must agree exactly, forward and backward, in both dtypes.
template <class T>
void generated_matches_explicit(DType dtype, std::int64_t n, std::int64_t zdim,
                                std::int64_t samples) {
  Generator hgen(5);
  Tensor h0 = Tensor::randn({n, 2 * zdim}, hgen, {.dtype = dtype});
  Tensor dz = Tensor::randn({samples * n, zdim}, hgen, {.dtype = dtype});

  Generator a(77), b(77);
  a.take(3);
  b.take(3);
  Tensor h1 = h0.clone().detach().requires_grad_(true);
  Tensor z1 = reparametrize(h1, samples, a);
  z1.backward(dz);

  Tensor eps = Tensor::randn({samples * n, zdim}, b, {.dtype = dtype});
  Tensor h2 = h0.clone().detach().requires_grad_(true);
  Tensor z2 = reparametrize(h2, eps);
  z2.backward(dz);

  EXPECT_EQ(a.offset(), b.offset());
  EXPECT_EQ(z1.to_vector<T>(), z2.to_vector<T>());
  EXPECT_EQ(h1.grad().to_vector<T>(), h2.grad().to_vector<T>());
}

TEST(Reparametrize, GeneratedNoiseMatchesExplicitNoiseF32) {
  generated_matches_explicit<float>(DType::f32, 7, 6, 3);     // 126 numbers: not a multiple of 4
  generated_matches_explicit<float>(DType::f32, 300, 17, 8);  // the kernels' parallel loops
}
TEST(Reparametrize, GeneratedNoiseMatchesExplicitNoiseF64) {
  generated_matches_explicit<double>(DType::f64, 7, 6, 3);
  generated_matches_explicit<double>(DType::f64, 300, 17, 8);
}

std::vector<float> values_and_grad(const Tensor& out, const Tensor& h) {
  Generator gen(3);
  out.backward(Tensor::rand(out.shape(), gen, {}, 0.5, 1.5));
  std::vector<float> v = out.to_vector<float>();
  for (float g : h.grad().to_vector<float>()) v.push_back(g);
  return v;
}

TEST(VaeFamily, ResultsDoNotDependOnTheThreadCount) {
  Generator gen(17);
  const Tensor h0 = Tensor::randn({3000, 32}, gen);
  expect_thread_count_independent([&] {
    Tensor h = h0.clone().requires_grad_(true);
    Generator g(1);
    return values_and_grad(reparametrize(h, 4, g), h);
  });
  for (Reduction red : {Reduction::none, Reduction::batch_mean}) {
    expect_thread_count_independent([&] {
      Tensor h = h0.clone().requires_grad_(true);
      return values_and_grad(kl_normal(h, red), h);
    });
  }
  expect_thread_count_independent([&] {
    Tensor h = h0.clone().requires_grad_(true);
    return values_and_grad(kl_normal_terms(h), h);
  });
}

TEST(Reparametrize, SuccessiveDrawsDiffer) {
  Generator gen(1);
  Tensor h = Tensor::zeros({2, 4});
  EXPECT_NE(reparametrize(h, 1, gen).to_vector<float>(),
            reparametrize(h, 1, gen).to_vector<float>());
}

TEST(Reparametrize, SampleMeanAndStd) {
  // mu = (1, -2), sigma = (2, 0.5).
  Tensor h = f64({1.0, -2.0, std::log(4.0), std::log(0.25)}, {1, 4});
  const std::int64_t samples = 40000;
  Generator gen(2024);
  const auto z = reparametrize(h, samples, gen).to_vector<double>();
  const double mu[2] = {1.0, -2.0}, sigma[2] = {2.0, 0.5};
  for (int k = 0; k < 2; ++k) {
    double s = 0, s2 = 0;
    for (std::int64_t r = 0; r < samples; ++r) s += z[static_cast<std::size_t>(2 * r + k)];
    const double m = s / static_cast<double>(samples);
    for (std::int64_t r = 0; r < samples; ++r) {
      const double d = z[static_cast<std::size_t>(2 * r + k)] - m;
      s2 += d * d;
    }
    const double sd = std::sqrt(s2 / static_cast<double>(samples - 1));
    // 5 standard errors for the mean; the std's relative standard error is ~ 1/sqrt(2R) = 0.35%.
    EXPECT_NEAR(m, mu[k], 5 * sigma[k] / std::sqrt(double(samples))) << "dim " << k;
    EXPECT_NEAR(sd / sigma[k], 1.0, 0.02) << "dim " << k;
  }
  // Samples of one input are rows r*N + n: consecutive rows here, independent across dims.
  double cov = 0;
  for (std::int64_t r = 0; r < samples; ++r)
    cov +=
        (z[static_cast<std::size_t>(2 * r)] - 1.0) * (z[static_cast<std::size_t>(2 * r + 1)] + 2.0);
  EXPECT_NEAR(cov / static_cast<double>(samples) / (sigma[0] * sigma[1]), 0.0, 0.03);
}

TEST(Reparametrize, HugeLogvarIsClampedAndGetsNoGradient) {
  Tensor h = f64({0.5, -0.5, 1e4, -1e4}, {1, 4}, true);
  Tensor eps = f64({1.0, 1.0}, {1, 2});
  Tensor z = reparametrize(h, eps);
  const auto zv = z.to_vector<double>();
  for (double x : zv) EXPECT_TRUE(std::isfinite(x));
  EXPECT_NEAR(zv[0], 0.5 + std::exp(kLogvarMax / 2), 1e-6);
  EXPECT_NEAR(zv[1], -0.5 + std::exp(kLogvarMin / 2), 1e-15);
  z.backward(Tensor::ones({1, 2}, kF64));
  expect_near_all(h.grad().to_vector<double>(), {1.0, 1.0, 0.0, 0.0}, 0.0);

  // The same through the generated-noise path, in float32.
  Tensor h32 =
      Tensor::from_data(std::vector<float>{0.f, 0.f, 1e4f, -1e4f}, {1, 4}, {.requires_grad = true});
  Generator gen(8);
  Tensor z32 = reparametrize(h32, 4, gen);
  for (float x : z32.to_vector<float>()) EXPECT_TRUE(std::isfinite(x));
  z32.backward(Tensor::ones({4, 2}));
  const auto g = h32.grad().to_vector<float>();
  EXPECT_EQ(g[2], 0.0f);
  EXPECT_EQ(g[3], 0.0f);
}

TEST(Reparametrize, Errors) {
  Generator gen(0);
  const std::string odd = error_of([&] { reparametrize(Tensor::zeros({2, 3}), 1, gen); });
  EXPECT_NE(odd.find("[reparametrize]"), std::string::npos) << odd;
  EXPECT_NE(odd.find("(2, 3)"), std::string::npos) << odd;
  EXPECT_THROW(reparametrize(Tensor::zeros({2, 0}), 1, gen), Error);
  EXPECT_THROW(reparametrize(Tensor::zeros({4}), 1, gen), Error);
  const std::string r0 = error_of([&] { reparametrize(Tensor::zeros({2, 4}), 0, gen); });
  EXPECT_NE(r0.find("[reparametrize] samples must be at least 1"), std::string::npos) << r0;
  EXPECT_EQ(gen.offset(), 0u);  // failed calls reserve no numbers

  const std::string bad_eps = error_of([&] {
    reparametrize(Tensor::zeros({2, 4}), Tensor::zeros({3, 2}));
  });
  EXPECT_NE(bad_eps.find("[reparametrize]"), std::string::npos) << bad_eps;
  EXPECT_NE(bad_eps.find("(2, 4)"), std::string::npos) << bad_eps;
  EXPECT_NE(bad_eps.find("(3, 2)"), std::string::npos) << bad_eps;
  EXPECT_THROW(reparametrize(Tensor::zeros({2, 4}), Tensor::zeros({4, 3})), Error);
  EXPECT_THROW(reparametrize(Tensor::zeros({2, 4}), Tensor::zeros({0, 2})), Error);
  EXPECT_THROW(reparametrize(Tensor::zeros({2, 4}), Tensor::zeros({4, 2}, kF64)), Error);
  EXPECT_THROW(reparametrize(Tensor::zeros({2, 4}), Tensor()), Error);
  EXPECT_THROW(reparametrize(Tensor(), 1, gen), Error);
}

// ---- KL to N(0, I) ---------------------------------------------------------------------------

// Two samples, Z = 2: (mu | logvar) rows.
Tensor kl_input(bool grad) {
  return f64({0.5, -1.0, 0.2, -0.3, 0.0, 2.0, 1.0, 0.0}, {2, 4}, grad);
}

TEST(KlNormal, HandComputedTermsAndReductions) {
  Tensor h = kl_input(false);
  expect_near_all(kl_normal_terms(h).to_vector<double>(),
                  {0.13570137908008495, 0.520409110340859, 0.35914091422952255, 2.0}, 1e-14);
  expect_near_all(kl_normal(h, Reduction::none).to_vector<double>(),
                  {0.656110489420944, 2.3591409142295223}, 1e-14);
  EXPECT_EQ(kl_normal(h, Reduction::none).shape(), Shape({2}));
  EXPECT_EQ(kl_normal(h).shape(), Shape());
  EXPECT_NEAR(kl_normal(h, Reduction::sum).item(), 3.0152514036504665, 1e-14);
  EXPECT_NEAR(kl_normal(h, Reduction::batch_mean).item(), 1.5076257018252333, 1e-14);
  EXPECT_NEAR(kl_normal(h).item(), 1.5076257018252333, 1e-14);  // the default
  EXPECT_NEAR(kl_normal(h, Reduction::mean).item(), 0.7538128509126166, 1e-14);
}

TEST(KlNormal, HandComputedGradient) {
  // d/dmu = mu, d/dlogvar = (exp(logvar) - 1) / 2, scaled by 1/N for batch_mean.
  Tensor h = kl_input(true);
  kl_normal(h, Reduction::batch_mean).backward();
  expect_near_all(h.grad().to_vector<double>(),
                  {0.25, -0.5, 0.11070137908008493 / 2, -0.12959088965914106 / 2, 0.0, 1.0,
                   0.8591409142295225 / 2, 0.0},
                  1e-14);
  // Per-sample output weights: row n scaled by dout[n].
  Tensor h2 = kl_input(true);
  kl_normal(h2, Reduction::none).backward(f64({2.0, -1.0}, {2}));
  expect_near_all(h2.grad().to_vector<double>(),
                  {1.0, -2.0, 0.11070137908008493 * 2, -0.12959088965914106 * 2, 0.0, -2.0,
                   -0.8591409142295225, 0.0},
                  1e-14);
}

TEST(KlNormal, ZeroAtTheStandardNormal) {
  Tensor h = Tensor::zeros({3, 8}, {.dtype = DType::f64, .requires_grad = true});
  Tensor kl = kl_normal(h, Reduction::sum);
  EXPECT_EQ(kl.item(), 0.0);
  kl.backward();
  for (double g : h.grad().to_vector<double>()) EXPECT_EQ(g, 0.0);
  for (double t : kl_normal_terms(h.detach()).to_vector<double>()) EXPECT_EQ(t, 0.0);
}

TEST(KlNormal, AccurateForTinyLogvar) {
  // exp(lv) - 1 - lv ~ lv^2 / 2 = 5e-17: a naive formula in float64 returns rounding noise.
  Tensor h = f64({0.0, 1e-8}, {1, 2});
  EXPECT_NEAR(kl_normal(h, Reduction::sum).item() / 2.5e-17, 1.0, 1e-6);
}

TEST(KlNormal, MatchesMonteCarloEstimate) {
  // KL(q || p) = E_q[log q(z) - log p(z)], z from our sampler; per sample the log-ratio is
  //   -eps^2 / 2 - logvar / 2 + z^2 / 2   (the 2 pi constants cancel).
  const double mu[2] = {0.5, -1.0}, lv[2] = {0.2, -0.3};
  Tensor h = f64({mu[0], mu[1], lv[0], lv[1]}, {1, 4});
  const std::int64_t samples = 100000;
  Generator gen(99);
  const auto z = reparametrize(h, samples, gen).to_vector<double>();
  double acc = 0;
  for (std::int64_t r = 0; r < samples; ++r)
    for (int k = 0; k < 2; ++k) {
      const double zz = z[static_cast<std::size_t>(2 * r + k)];
      const double e = (zz - mu[k]) / std::exp(lv[k] / 2);
      acc += -0.5 * e * e - 0.5 * lv[k] + 0.5 * zz * zz;
    }
  const double mc = acc / static_cast<double>(samples);
  EXPECT_NEAR(mc, kl_normal(h, Reduction::sum).item(), 0.02);
  EXPECT_NEAR(kl_normal(h, Reduction::sum).item(), 0.656110489420944, 1e-14);
}

TEST(KlNormal, TermsSumToPerSampleValues) {
  Generator gen(4);
  Tensor h = Tensor::randn({5, 12}, gen, kF64);
  const auto terms = kl_normal_terms(h).to_vector<double>();
  const auto per = kl_normal(h, Reduction::none).to_vector<double>();
  for (int n = 0; n < 5; ++n) {
    double s = 0;
    for (int k = 0; k < 6; ++k) s += terms[static_cast<std::size_t>(n * 6 + k)];
    EXPECT_NEAR(per[static_cast<std::size_t>(n)], s, 1e-13);
  }
}

TEST(KlNormal, HugeLogvarIsClampedAndGetsNoGradient) {
  Tensor h = f64({0.3, 0.3, 1e4, -1e4}, {1, 4}, true);
  Tensor kl = kl_normal(h, Reduction::sum);
  const double want = 0.5 * (0.09 + std::expm1(kLogvarMax) - kLogvarMax) +
                      0.5 * (0.09 + std::expm1(kLogvarMin) - kLogvarMin);
  EXPECT_TRUE(std::isfinite(kl.item()));
  EXPECT_NEAR(kl.item() / want, 1.0, 1e-14);
  kl.backward();
  expect_near_all(h.grad().to_vector<double>(), {0.3, 0.3, 0.0, 0.0}, 0.0);

  Tensor t = Tensor::from_data(std::vector<float>{0.f, 1e4f}, {1, 2}, {.requires_grad = true});
  Tensor terms = kl_normal_terms(t);
  EXPECT_TRUE(std::isfinite(terms.item()));
  terms.backward(Tensor::ones({1, 1}));
  EXPECT_EQ(t.grad().to_vector<float>()[1], 0.0f);
}

TEST(KlNormal, Errors) {
  const std::string odd = error_of([] { kl_normal(Tensor::zeros({4, 5})); });
  EXPECT_NE(odd.find("[kl_normal]"), std::string::npos) << odd;
  EXPECT_NE(odd.find("(4, 5)"), std::string::npos) << odd;
  const std::string terms = error_of([] { kl_normal_terms(Tensor::zeros({2, 2, 2})); });
  EXPECT_NE(terms.find("[kl_normal_terms]"), std::string::npos) << terms;
  EXPECT_NE(terms.find("(2, 2, 2)"), std::string::npos) << terms;
  EXPECT_THROW(kl_normal(Tensor()), Error);
}

TEST(KlNormal, EmptyBatch) {
  Tensor h = Tensor::zeros({0, 4});
  EXPECT_EQ(kl_normal(h, Reduction::sum).item(), 0.0);
  EXPECT_THROW(kl_normal(h, Reduction::batch_mean), Error);  // the mean of nothing
  EXPECT_THROW(kl_normal(h, Reduction::mean), Error);
  EXPECT_EQ(kl_normal(h, Reduction::none).shape(), Shape({0}));
}

// The sample and the KL from one op: each alone, and both, give the gradients of the separate ops.
TEST(ReparametrizeKl, EachOutputAloneAndBothGiveTheSeparateOpsGradients) {
  Generator g0(5);
  const Tensor h0 = Tensor::randn({6, 8}, g0, {.dtype = DType::f64});
  auto grad_of = [&](auto&& f) {
    const Tensor h = h0.clone().requires_grad_();
    f(h).backward();
    return h.grad().to_vector<double>();
  };
  const auto kl_alone = grad_of([](const Tensor& h) {
    Generator gen(7);
    return reparametrize_kl(h, 1, gen).kl;
  });
  const auto kl_ref = grad_of([](const Tensor& h) { return kl_normal(h, Reduction::batch_mean); });
  const auto z_alone = grad_of([](const Tensor& h) {
    Generator gen(7);
    return sum(reparametrize_kl(h, 2, gen).z);
  });
  const auto z_ref = grad_of([](const Tensor& h) {
    Generator gen(7);
    return sum(reparametrize(h, 2, gen));
  });
  const auto both = grad_of([](const Tensor& h) {
    Generator gen(7);
    const SampleAndKl s = reparametrize_kl(h, 2, gen);
    return add(sum(s.z), mul(s.kl, 3.0));
  });
  ASSERT_EQ(kl_alone.size(), kl_ref.size());
  for (std::size_t i = 0; i < kl_ref.size(); ++i) {
    EXPECT_NEAR(kl_alone[i], kl_ref[i], 1e-12) << i;
    EXPECT_NEAR(z_alone[i], z_ref[i], 1e-12) << i;
    EXPECT_NEAR(both[i], z_ref[i] + 3.0 * kl_ref[i], 1e-12) << i;
  }
}

}  // namespace
}  // namespace latent
