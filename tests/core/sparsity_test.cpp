// Sparsity penalties: hand-computed values (python3, written-out formulas) and gradients, the
// rho_hat clamp, the threaded path, and the error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using testing::error_of;
using testing::expect_near_all;
using testing::f64;
using testing::kF64;

double kl(double rho, double q) {
  return rho * std::log(rho / q) + (1 - rho) * std::log((1 - rho) / (1 - q));
}

// ---- l1_penalty ------------------------------------------------------------------------------

TEST(L1Penalty, EveryReductionHandComputed) {
  Tensor h = f64({1, -2, 0, 0.5, 0, -0.25}, {2, 3});
  expect_near_all(l1_penalty(h, Reduction::none).to_vector<double>(), {3.0, 0.75}, 0.0);
  EXPECT_EQ(l1_penalty(h, Reduction::sum).item(), 3.75);
  EXPECT_EQ(l1_penalty(h).item(), 1.875);  // batch_mean, the default
  EXPECT_EQ(l1_penalty(h, Reduction::mean).item(), 0.625);
  // Rows over all non-first dimensions.
  EXPECT_EQ(l1_penalty(h.reshape({2, 3, 1}), Reduction::sum).item(), 3.75);
}

TEST(L1Penalty, GradientIsTheSignAndZeroAtZero) {
  Tensor h = f64({1, -2, 0, 0.5, 0, -0.25}, {2, 3}, true);
  l1_penalty(h, Reduction::sum).backward();
  expect_near_all(h.grad().to_vector<double>(), {1, -1, 0, 1, 0, -1}, 0.0);
  Tensor h2 = f64({1, -2, 0, 0.5, 0, -0.25}, {2, 3}, true);
  l1_penalty(h2, Reduction::none).backward(f64({2, -0.5}, {2}));
  expect_near_all(h2.grad().to_vector<double>(), {2, -2, 0, -0.5, 0, 0.5}, 0.0);
  Tensor h3 = f64({1, -2, 0, 0.5, 0, -0.25}, {2, 3}, true);
  l1_penalty(h3, Reduction::mean).backward();
  expect_near_all(h3.grad().to_vector<double>(), {1 / 6., -1 / 6., 0, 1 / 6., 0, -1 / 6.}, 1e-16);
}

TEST(L1Penalty, ThreadedPathMatchesADirectSum) {
  Generator gen(3);
  Tensor h = Tensor::randn({400, 100}, gen);
  double s = 0;
  for (float v : h.to_vector<float>()) s += std::fabs(v);
  EXPECT_NEAR(l1_penalty(h, Reduction::sum).item(), s, 1e-6 * s);
  EXPECT_NEAR(l1_penalty(h, Reduction::mean).item(), s / 40000, 1e-6 * s / 40000);
}

TEST(L1Penalty, Errors) {
  EXPECT_EQ(l1_penalty(Tensor::zeros({0, 4}), Reduction::sum).item(), 0.0);
  std::string e = error_of([] { l1_penalty(Tensor::zeros({0, 4}), Reduction::batch_mean); });
  EXPECT_NE(e.find("[l1_penalty]"), std::string::npos) << e;
  EXPECT_NE(e.find("(0, 4)"), std::string::npos) << e;
  EXPECT_EQ(l1_penalty(Tensor::zeros({0, 4}), Reduction::none).shape(), Shape({0}));
  e = error_of([] { l1_penalty(Tensor::scalar(1.0)); });
  EXPECT_NE(e.find("batch dimension"), std::string::npos) << e;
  EXPECT_THROW(l1_penalty(Tensor()), Error);
}

// ---- kl_sparsity -----------------------------------------------------------------------------

TEST(KlSparsity, ValueAndGradientHandComputed) {
  // rho_hat = (0.2, 0.3, 0): the last unit is dead and clamped to 1e-6.
  Tensor h = f64({0.1, 0.2, 0.0, 0.3, 0.4, 0.0}, {2, 3}, true);
  Tensor l = kl_sparsity(h, 0.05);
  EXPECT_EQ(l.shape(), Shape{});
  EXPECT_NEAR(l.item(), 0.7867288541893678, 1e-14);
  l.backward();
  // dKL/dq / N = (-rho / q + (1 - rho) / (1 - q)) / 2 per unit, shared by the rows; 0 where
  // clamped.
  expect_near_all(
      h.grad().to_vector<double>(),
      {0.4687499999999999, 0.5952380952380952, 0.0, 0.4687499999999999, 0.5952380952380952, 0.0},
      1e-15);
}

TEST(KlSparsity, ZeroWhereTheTargetIsMet) {
  Tensor h = f64({0.1, 0.3, 0.3, 0.1}, {2, 2}, true);  // rho_hat = (0.2, 0.2)
  Tensor l = kl_sparsity(h, 0.2);
  EXPECT_NEAR(l.item(), 0.0, 1e-16);
  l.backward();
  expect_near_all(h.grad().to_vector<double>(), {0, 0, 0, 0}, 1e-15);
}

TEST(KlSparsity, ClampsAtBothEndsWithoutGradient) {
  // A unit always off and one always on: finite penalties at the clamp, no gradient through it.
  Tensor h = f64({0.0, 1.0, 0.0, 1.0}, {2, 2}, true);
  Tensor l = kl_sparsity(h, 0.05);
  EXPECT_NEAR(l.item(), kl(0.05, 1e-6) + 12.926219836692894, 1e-12);
  EXPECT_TRUE(std::isfinite(l.item()));
  l.backward();
  expect_near_all(h.grad().to_vector<double>(), {0, 0, 0, 0}, 0.0);
  // Float32 too.
  EXPECT_TRUE(std::isfinite(kl_sparsity(h.detach().to(DType::f32), 0.05).item()));
}

TEST(KlSparsity, ThreadedPathMatchesADirectComputation) {
  // 500 x 80: the column sums run in blocks on several threads.
  Generator gen(9);
  const std::int64_t n = 500, hd = 80;
  Tensor h = Tensor::rand({n, hd}, gen, kF64, 0.05, 0.95);
  const std::vector<double> v = h.to_vector<double>();
  double want = 0;
  for (std::int64_t j = 0; j < hd; ++j) {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += v[static_cast<std::size_t>(i * hd + j)];
    want += kl(0.1, s / n);
  }
  EXPECT_NEAR(kl_sparsity(h, 0.1).item(), want, 1e-12 * want);
  EXPECT_NEAR(kl_sparsity(h.to(DType::f32), 0.1).item(), want, 1e-5 * want);
}

TEST(KlSparsity, Errors) {
  Tensor h = Tensor::full({2, 3}, 0.5);
  for (double rho : {0.0, 1.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    const std::string e = error_of([&] { kl_sparsity(h, rho); });
    EXPECT_NE(e.find("[kl_sparsity] rho must lie in (0, 1)"), std::string::npos) << e;
  }
  // Close enough to 1 to round to 1 in float32: rejected there, fine in float64.
  EXPECT_NE(error_of([&] { kl_sparsity(h, 1.0 - 1e-9); }).find("rounds"), std::string::npos);
  EXPECT_NO_THROW(kl_sparsity(h.to(DType::f64), 1.0 - 1e-9));
  std::string e = error_of([] { kl_sparsity(Tensor::full({2, 3, 4}, 0.5), 0.1); });
  EXPECT_NE(e.find("[kl_sparsity] h must be 2-D"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 3, 4)"), std::string::npos) << e;
  e = error_of([] { kl_sparsity(Tensor::zeros({0, 3}), 0.1); });
  EXPECT_NE(e.find("(0, 3)"), std::string::npos) << e;
  EXPECT_THROW(kl_sparsity(Tensor(), 0.1), Error);
}

TEST(SparsityGraph, Names) {
  Tensor h = f64({0.2, 0.4}, {1, 2}, true);
  EXPECT_EQ(l1_penalty(h).grad_fn_name(), "l1_penalty");
  EXPECT_EQ(kl_sparsity(h, 0.1).grad_fn_name(), "kl_sparsity");
}

}  // namespace
}  // namespace latent
