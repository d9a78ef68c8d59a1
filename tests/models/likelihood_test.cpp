// Decoder likelihoods: NLLs checked against the written-out densities (constants included), the
// categorical quantization, the learned-variance layout, means, sample statistics, gradients, and
// every error path.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include "models/likelihood.h"
#include "support/gradcheck.h"

namespace latent::models {
namespace {

const double kLog2Pi = std::log(2.0 * std::numbers::pi);

Tensor f64(std::vector<double> v, const Shape& s, bool grad = false) {
  return Tensor::from_data(std::span<const double>(v), s,
                           {.dtype = DType::f64, .requires_grad = grad});
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

double sigmoid_ref(double l) {
  return 1.0 / (1.0 + std::exp(-l));
}

// ---- nll ---------------------------------------------------------------------------------------

// The continuous Bernoulli is a density on [0, 1]: exp(-nll) integrates to 1 for every logit
// (both sides of 0 and at 0, in double), its mean is the integral of x p(x), and draws average to
// it.
TEST(Likelihood, ContinuousBernoulliIsANormalizedDensity) {
  const LikelihoodConfig cb{.kind = Likelihood::continuous_bernoulli};
  const std::int64_t points = 4001;
  std::vector<double> grid(points);
  for (std::int64_t i = 0; i < points; ++i) grid[i] = static_cast<double>(i) / (points - 1);
  const Tensor x =
      Tensor::from_data(std::span<const double>(grid), {points, 1}, {.dtype = DType::f64});
  for (const double eta : {-8.0, -1.0, -0.05, 0.0, 1e-3, 0.3, 5.0}) {
    SCOPED_TRACE("eta " + std::to_string(eta));
    const Tensor params = Tensor::full({points, 1}, eta, {.dtype = DType::f64});
    const std::vector<double> nl = nll(cb, params, x).to_vector<double>();
    double area = 0, first = 0;
    for (std::int64_t i = 0; i < points; ++i) {
      const double w = (i == 0 || i == points - 1) ? 0.5 : 1.0;  // trapezoid
      area += w * std::exp(-nl[i]) / (points - 1);
      first += w * grid[i] * std::exp(-nl[i]) / (points - 1);
    }
    EXPECT_NEAR(area, 1.0, 1e-6);
    const double m = mean(cb, Tensor::full({1, 1}, eta, {.dtype = DType::f64})).item();
    EXPECT_NEAR(m, first, 1e-6);
    Generator g(3);
    const std::vector<double> draws =
        sample(cb, Tensor::full({20000, 1}, eta, {.dtype = DType::f64}), g).to_vector<double>();
    double avg = 0;
    for (double v : draws) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
      avg += v / static_cast<double>(draws.size());
    }
    EXPECT_NEAR(avg, m, 0.01);
  }
  EXPECT_EQ(parse_likelihood("continuous_bernoulli"), Likelihood::continuous_bernoulli);
}

TEST(Likelihood, BernoulliNllIsTheCrossEntropyPerSample) {
  const LikelihoodConfig c{.kind = Likelihood::bernoulli};
  const std::vector<double> l = {0.0, 2.0, -1.0, 3.5, -0.25, 0.7};
  const std::vector<double> y = {1.0, 0.0, 0.5, 1.0, 0.0, 1.0};
  std::vector<double> want(2, 0.0);
  for (std::size_t i = 0; i < l.size(); ++i) {
    const double p = sigmoid_ref(l[i]);
    want[i / 3] += -(y[i] * std::log(p) + (1 - y[i]) * std::log(1 - p));
  }
  Tensor out = nll(c, f64(l, {2, 3}), f64(y, {2, 3}));
  EXPECT_EQ(out.shape(), Shape({2}));
  expect_near_all(out.to_vector<double>(), want, 1e-12);
  // Exact on binary data: x = 1 with logit 0 costs log 2 nats per pixel.
  EXPECT_NEAR(nll(c, Tensor::zeros({1, 5}, {.dtype = DType::f64}),
                  Tensor::ones({1, 5}, {.dtype = DType::f64}))
                  .item(),
              5 * std::log(2.0), 1e-12);
}

TEST(Likelihood, GaussianNllIncludesTheConstants) {
  // sigma 1 at x = mean: only the normalizer, 0.5 log(2 pi) per dimension.
  const LikelihoodConfig unit{.kind = Likelihood::gaussian, .sigma = 1.0};
  Tensor mu = f64({0.3, -1.0, 2.0, 0.0, 5.0, 0.1, 0.2, 0.3}, {2, 4});
  expect_near_all(nll(unit, mu, mu).to_vector<double>(), {0.5 * kLog2Pi * 4, 0.5 * kLog2Pi * 4},
                  1e-12);
  // sigma 2, every residual 1: log sigma + 0.5 log 2 pi + 0.5 r^2 / sigma^2 per dimension.
  const LikelihoodConfig two{.kind = Likelihood::gaussian, .sigma = 2.0};
  Tensor x = f64({1.3, 0.0, 3.0, -1.0, 6.0, 1.1, -0.8, 1.3}, {2, 4});
  const double per_dim = std::log(2.0) + 0.5 * kLog2Pi + 0.5 * 1.0 / 4.0;
  expect_near_all(nll(two, mu, x).to_vector<double>(), {4 * per_dim, 4 * per_dim}, 1e-12);
  // float32 too.
  EXPECT_NEAR(nll(unit, Tensor::zeros({3, 10}), Tensor::zeros({3, 10})).to_vector<double>()[2],
              5 * kLog2Pi, 1e-5);
}

TEST(Likelihood, LearnedVarianceLayoutIsMeansThenLogVariances) {
  const LikelihoodConfig c{.kind = Likelihood::gaussian_learned};
  EXPECT_EQ(params_per_dim(c), 2);
  // D = 2: params = (mu_0, mu_1 | logvar_0, logvar_1).
  Tensor params = f64({0.0, 1.0, 0.0, std::log(4.0), 2.0, -1.0, -2.0, 1.0}, {2, 4});
  Tensor x = f64({1.0, 1.0, 2.5, 0.0}, {2, 2});
  auto term = [](double m, double lv, double v) {
    return 0.5 * (kLog2Pi + lv + (v - m) * (v - m) / std::exp(lv));
  };
  expect_near_all(nll(c, params, x).to_vector<double>(),
                  {term(0, 0, 1) + term(1, std::log(4.0), 1), term(2, -2, 2.5) + term(-1, 1, 0)},
                  1e-12);
  expect_near_all(mean(c, params).to_vector<double>(), {0, 1, 2, -1}, 0);
}

TEST(Likelihood, CategoricalQuantizesToTheNearestLevel) {
  // K = 4 levels: x * 3 = 0, .48, .51, 1.5, 2.52, 3 -> 0, 0, 1, 2, 3, 3 (halves round up).
  Tensor x = f64({0.0, 0.16, 0.17, 0.5, 0.84, 1.0}, {1, 6});
  expect_near_all(quantize(x, 4).to_vector<double>(), {0, 0, 1, 2, 3, 3}, 0);
  expect_near_all(quantize(x, 2).to_vector<double>(), {0, 0, 0, 1, 1, 1}, 0);

  const LikelihoodConfig c{.kind = Likelihood::categorical, .levels = 4};
  EXPECT_EQ(params_per_dim(c), 4);
  // Uniform logits: log K nats per dimension whatever the data.
  EXPECT_NEAR(nll(c, Tensor::zeros({1, 24}, {.dtype = DType::f64}), x).item(), 6 * std::log(4.0),
              1e-12);
  // Two dimensions, contiguous K logits each: -log softmax(logits_d)[level_d].
  const std::vector<double> logits = {1.0, 2.0, 0.5, -1.0, 0.0, 0.0, 3.0, 1.0};
  Tensor xs = f64({0.4, 1.0}, {1, 2});  // levels 1 and 3
  auto lse = [&](int d) {
    double s = 0;
    for (int k = 0; k < 4; ++k) s += std::exp(logits[static_cast<std::size_t>(4 * d + k)]);
    return std::log(s);
  };
  EXPECT_NEAR(nll(c, f64(logits, {1, 8}), xs).item(), (lse(0) - 2.0) + (lse(1) - 1.0), 1e-12);
}

TEST(Likelihood, CategoricalMeanIsTheExpectedLevel) {
  const LikelihoodConfig c{.kind = Likelihood::categorical, .levels = 3};
  // softmax (1/4, 1/2, 1/4) -> (0 + 1/2 + 2/4) / 2 = 0.5; (1/4, 1/4, 1/2) -> (1/4 + 1) / 2.
  const double l2 = std::log(2.0);
  Tensor params = f64({0, l2, 0, 0, 0, l2}, {1, 6});
  expect_near_all(mean(c, params).to_vector<double>(), {0.5, 0.625}, 1e-12);
}

TEST(Likelihood, MeansOfBernoulliAndGaussian) {
  Tensor l = f64({-2.0, 0.0, 1.5}, {1, 3});
  expect_near_all(mean({.kind = Likelihood::bernoulli}, l).to_vector<double>(),
                  {sigmoid_ref(-2.0), 0.5, sigmoid_ref(1.5)}, 1e-15);
  expect_near_all(mean({.kind = Likelihood::gaussian, .sigma = 0.1}, l).to_vector<double>(),
                  {-2.0, 0.0, 1.5}, 0);
}

TEST(Likelihood, NllIsDifferentiableInTheParameters) {
  Generator gen(5);
  Tensor x01 = Tensor::rand({3, 4}, gen, {.dtype = DType::f64});
  for (const LikelihoodConfig& c :
       {LikelihoodConfig{.kind = Likelihood::bernoulli},
        LikelihoodConfig{.kind = Likelihood::gaussian, .sigma = 0.5},
        LikelihoodConfig{.kind = Likelihood::gaussian_learned},
        LikelihoodConfig{.kind = Likelihood::categorical, .levels = 5}}) {
    Tensor params = Tensor::randn({3, 4 * params_per_dim(c)}, gen, {.dtype = DType::f64});
    params.requires_grad_();
    const auto r = testing::gradcheck(
        [&](const std::vector<Tensor>& in) { return nll(c, in[0], x01); }, {params}, 1e-7, 1e-6);
    EXPECT_TRUE(r.ok) << likelihood_name(c.kind) << ": " << r.first_failure;
    const auto rm = testing::gradcheck(
        [&](const std::vector<Tensor>& in) { return mean(c, in[0]); }, {params}, 1e-7, 1e-6);
    EXPECT_TRUE(rm.ok) << likelihood_name(c.kind) << " mean: " << rm.first_failure;
  }
}

// ---- sample ------------------------------------------------------------------------------------

TEST(Likelihood, SamplesFollowTheDistribution) {
  Generator gen(11);
  const std::int64_t n = 20000;
  // Bernoulli with p = sigmoid(logit) = 0.3 and 0.9.
  Tensor logits = Tensor::zeros({n, 2}, {.dtype = DType::f64});
  logits.copy_(tile_rows(f64({std::log(0.3 / 0.7), std::log(9.0)}, {1, 2}), n));
  const std::vector<double> b =
      sample({.kind = Likelihood::bernoulli}, logits, gen).to_vector<double>();
  double c0 = 0, c1 = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double v0 = b[static_cast<std::size_t>(2 * i)],
                 v1 = b[static_cast<std::size_t>(2 * i + 1)];
    ASSERT_TRUE((v0 == 0 || v0 == 1) && (v1 == 0 || v1 == 1));
    c0 += v0;
    c1 += v1;
  }
  EXPECT_NEAR(c0 / n, 0.3, 0.015);
  EXPECT_NEAR(c1 / n, 0.9, 0.01);

  // Gaussian with fixed sigma 2 around 1; learned variance exp(log 0.25) around -3.
  auto moments = [](const std::vector<double>& v) {
    double m = 0, s = 0;
    for (double a : v) m += a;
    m /= static_cast<double>(v.size());
    for (double a : v) s += (a - m) * (a - m);
    return std::pair{m, std::sqrt(s / static_cast<double>(v.size()))};
  };
  auto [gm, gs] = moments(sample({.kind = Likelihood::gaussian, .sigma = 2.0},
                                 Tensor::ones({n, 1}, {.dtype = DType::f64}), gen)
                              .to_vector<double>());
  EXPECT_NEAR(gm, 1.0, 0.05);
  EXPECT_NEAR(gs, 2.0, 0.05);
  Tensor lp = Tensor::zeros({n, 2}, {.dtype = DType::f64});
  lp.copy_(tile_rows(f64({-3.0, std::log(0.25)}, {1, 2}), n));
  auto [lm, ls] =
      moments(sample({.kind = Likelihood::gaussian_learned}, lp, gen).to_vector<double>());
  EXPECT_NEAR(lm, -3.0, 0.01);
  EXPECT_NEAR(ls, 0.5, 0.01);

  // Categorical over K = 3 levels with probabilities (0.2, 0.5, 0.3): values k / 2.
  Tensor cl = Tensor::zeros({n, 3}, {.dtype = DType::f64});
  cl.copy_(tile_rows(f64({std::log(0.2), std::log(0.5), std::log(0.3)}, {1, 3}), n));
  std::vector<double> counts(3, 0.0);
  for (double v :
       sample({.kind = Likelihood::categorical, .levels = 3}, cl, gen).to_vector<double>()) {
    ASSERT_TRUE(v == 0.0 || v == 0.5 || v == 1.0) << v;
    counts[static_cast<std::size_t>(std::lround(v * 2))] += 1.0 / n;
  }
  EXPECT_NEAR(counts[0], 0.2, 0.01);
  EXPECT_NEAR(counts[1], 0.5, 0.012);
  EXPECT_NEAR(counts[2], 0.3, 0.012);
}

TEST(Likelihood, SamplingIsSeededAndNotDifferentiable) {
  Tensor logits = Tensor::zeros({4, 6});
  logits.requires_grad_();
  for (const LikelihoodConfig& c :
       {LikelihoodConfig{.kind = Likelihood::bernoulli},
        LikelihoodConfig{.kind = Likelihood::gaussian},
        LikelihoodConfig{.kind = Likelihood::gaussian_learned},
        LikelihoodConfig{.kind = Likelihood::categorical, .levels = 3}}) {
    Generator a(7), b(7);
    Tensor sa = sample(c, logits, a), sb = sample(c, logits, b);
    EXPECT_EQ(sa.to_vector<float>(), sb.to_vector<float>()) << likelihood_name(c.kind);
    EXPECT_FALSE(sa.requires_grad()) << likelihood_name(c.kind);
    EXPECT_EQ(sa.shape(), Shape({4, 6 / params_per_dim(c)})) << likelihood_name(c.kind);
    EXPECT_GT(a.offset(), 0u);
  }
}

// ---- configuration and errors ------------------------------------------------------------------

TEST(Likelihood, NamesRoundTrip) {
  for (Likelihood k : {Likelihood::bernoulli, Likelihood::gaussian, Likelihood::gaussian_learned,
                       Likelihood::categorical})
    EXPECT_EQ(parse_likelihood(likelihood_name(k)), k);
  const std::string e = error_of([] { parse_likelihood("poisson"); });
  EXPECT_NE(e.find("[likelihood]"), std::string::npos) << e;
  EXPECT_NE(e.find("poisson"), std::string::npos) << e;
  EXPECT_NE(e.find("gaussian_learned"), std::string::npos) << e;
}

TEST(Likelihood, ValidateRejectsBadSettings) {
  EXPECT_NO_THROW(validate({}));
  EXPECT_NO_THROW(validate({.kind = Likelihood::gaussian, .sigma = 0.1}));
  std::string e = error_of([] { validate({.kind = Likelihood::gaussian, .sigma = 0.0}); });
  EXPECT_NE(e.find("sigma"), std::string::npos) << e;
  e = error_of([] { validate({.kind = Likelihood::gaussian, .sigma = -1.0}); });
  EXPECT_NE(e.find("-1"), std::string::npos) << e;
  e = error_of([] { validate({.kind = Likelihood::gaussian, .sigma = std::nan("")}); });
  EXPECT_NE(e.find("sigma"), std::string::npos) << e;
  e = error_of([] { validate({.kind = Likelihood::categorical, .levels = 1}); });
  EXPECT_NE(e.find("levels must be >= 2, got 1"), std::string::npos) << e;
  // The same checks guard nll / mean / sample.
  e = error_of([] {
    nll({.kind = Likelihood::categorical, .levels = 1}, Tensor::zeros({1, 1}),
        Tensor::zeros({1, 1}));
  });
  EXPECT_NE(e.find("levels"), std::string::npos) << e;
}

TEST(Likelihood, WrongParameterWidthSaysWhatWasExpected) {
  Tensor x = Tensor::zeros({2, 3});
  std::string e = error_of([&] {
    nll({.kind = Likelihood::gaussian_learned}, Tensor::zeros({2, 3}), x);
  });
  EXPECT_NE(e.find("[likelihood]"), std::string::npos) << e;
  EXPECT_NE(e.find("D*2"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 6)"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 3)"), std::string::npos) << e;
  e = error_of([&] {
    nll({.kind = Likelihood::categorical, .levels = 4}, Tensor::zeros({2, 8}), x);
  });
  EXPECT_NE(e.find("D*4"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 12)"), std::string::npos) << e;
  e = error_of([&] { nll({}, Tensor::zeros({3, 3}), x); });  // batch sizes differ
  EXPECT_NE(e.find("(3, 3)"), std::string::npos) << e;
  e = error_of([&] { nll({}, Tensor::zeros({6}), x); });
  EXPECT_NE(e.find("(6)"), std::string::npos) << e;
  e = error_of([&] { mean({.kind = Likelihood::gaussian_learned}, Tensor::zeros({2, 3})); });
  EXPECT_NE(e.find("D*2"), std::string::npos) << e;
  e = error_of([&] {
    Generator g(0);
    sample({.kind = Likelihood::categorical, .levels = 4}, Tensor::zeros({2, 6}), g);
  });
  EXPECT_NE(e.find("D*4"), std::string::npos) << e;
}

TEST(Likelihood, CategoricalRejectsDataOutsideTheUnitInterval) {
  const LikelihoodConfig c{.kind = Likelihood::categorical, .levels = 4};
  const std::string e = error_of([&] {
    nll(c, Tensor::zeros({1, 8}, {.dtype = DType::f64}), f64({0.5, 1.5}, {1, 2}));
  });
  EXPECT_NE(e.find("[0, 1]"), std::string::npos) << e;
  EXPECT_NE(e.find("1.5"), std::string::npos) << e;
  EXPECT_NE(error_of([] { quantize(Tensor::zeros({2}), 1); }).find("levels"), std::string::npos);
}

// The fused likelihood losses treat the data as data; an input that needs a gradient takes the
// general path and gets one.
TEST(GaussianNllPacked, AnInputThatNeedsAGradientGetsOne) {
  Generator gen(3);
  const Tensor params = Tensor::randn({4, 6}, gen).requires_grad_();
  const Tensor x = Tensor::rand({4, 3}, gen).requires_grad_();
  const LikelihoodConfig c{.kind = Likelihood::gaussian_learned};
  nll_mean(c, params, x).backward();
  ASSERT_TRUE(x.grad().defined());
  ASSERT_TRUE(params.grad().defined());
  const Tensor same = gaussian_nll_packed(params.detach(), x.detach(), Reduction::batch_mean);
  EXPECT_NEAR(same.item(), nll_mean(c, params.detach(), x.detach()).item(), 1e-5);
}

}  // namespace
}  // namespace latent::models
