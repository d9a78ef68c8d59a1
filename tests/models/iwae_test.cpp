// IWAE: the importance log-weights against a hand computation, the k = 1 bound against the ELBO,
// the bound against the ELBO and across k on a trained model, training, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <numbers>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/latent.h"
#include "models/evaluate.h"
#include "models/iwae.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using latent::testing::error_of;
using latent::testing::have_fashion_mnist;

constexpr double kLog2Pi = 1.8378770664093453;

#define REQUIRE_FASHION_MNIST()                                              \
  if (!have_fashion_mnist())                                                 \
  GTEST_SKIP() << "Fashion-MNIST not found in " << data::fashion_mnist_dir() \
               << " (install dataset-fashion-mnist or set LATENT_FASHION_MNIST)"

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

std::vector<double> train(IWAE& model, const Tensor& x, int epochs) {
  optim::Adam opt(model.parameters(), {.lr = 2e-3});
  std::vector<double> losses;
  for (int e = 0; e < epochs; ++e) {
    for (const Tensor& xb : data::batches(x, {.batch = 100, .seed = 1, .epoch = e})) {
      Loss loss = model.compute_loss(xb);
      opt.zero_grad();
      loss.total.backward();
      opt.step();
      losses.push_back(loss.total.item());
    }
  }
  return losses;
}

TEST(IWAE, LogWeightsAndBoundHandComputed) {
  IWAE model({.input = 5,
              .hidden = {4},
              .latent = 3,
              .likelihood = LikelihoodConfig{.kind = Likelihood::gaussian, .sigma = 1.0},
              .k = 2});
  model.to(DType::f64);
  EXPECT_EQ(model.name(), "iwae");
  EXPECT_EQ(model.k(), 2);
  Generator gen(3);
  const Tensor x = Tensor::rand({2, 5}, gen, {.dtype = DType::f64});
  const Tensor eps = Tensor::randn({4, 3}, gen, {.dtype = DType::f64});
  VAEOutput out = model.forward(x, eps);
  const auto lw = model.log_weights(out, x).to_vector<double>();
  ASSERT_EQ(lw.size(), 4u);
  const auto xv = x.to_vector<double>(), ev = eps.to_vector<double>();
  const auto zv = out.z.to_vector<double>(), pv = out.params.to_vector<double>();
  const auto lv = out.logvar.to_vector<double>();
  std::vector<double> want(4);
  for (int r = 0; r < 2; ++r) {
    for (int n = 0; n < 2; ++n) {
      const int row = r * 2 + n;
      double log_px = 0, log_pz = 0, log_qz = 0;
      for (int d = 0; d < 5; ++d) {
        const double diff = xv[n * 5 + d] - pv[row * 5 + d];
        log_px -= 0.5 * (kLog2Pi + diff * diff);
      }
      for (int j = 0; j < 3; ++j) {
        log_pz -= 0.5 * (kLog2Pi + zv[row * 3 + j] * zv[row * 3 + j]);
        log_qz -= 0.5 * (kLog2Pi + lv[n * 3 + j] + ev[row * 3 + j] * ev[row * 3 + j]);
      }
      want[row] = log_px + log_pz - log_qz;
      EXPECT_NEAR(lw[row], want[row], 1e-10) << "row " << row;
    }
  }
  // The bound: log-mean-exp over the two samples of each input (rows n and 2 + n).
  const auto bound = model.bound(out, x).to_vector<double>();
  Loss loss = model.loss(out, x);
  double total = 0;
  for (int n = 0; n < 2; ++n) {
    const double b = std::log(0.5 * (std::exp(want[n]) + std::exp(want[2 + n])));
    EXPECT_NEAR(bound[n], b, 1e-10);
    total -= b / 2;
  }
  ASSERT_EQ(loss.terms.size(), 1u);
  EXPECT_EQ(loss.terms[0].first, "neg_bound");
  EXPECT_NEAR(loss.total.item(), total, 1e-10);
  EXPECT_EQ(loss.total.item(), loss.term("neg_bound").item());
}

TEST(IWAE, OneSampleBoundIsTheElboForTheSameNoise) {
  const std::int64_t n = 20;
  IWAE iwae({.input = 784, .hidden = {64}, .latent = 6, .k = 1, .seed = 4});
  VAE vae({.input = 784, .hidden = {64}, .latent = 6, .seed = 4});  // the same weights
  Generator gen(5);
  const Tensor x = Tensor::rand({n, 784}, gen);
  const Tensor eps = Tensor::randn({n, 6}, gen);
  VAEOutput out = iwae.forward(x, eps);
  // L_1 = log p(x|z) + log p(z) - log q(z|x): the VAE's reconstruction term plus a one-sample
  // estimate of -KL, here computed by hand from the same noise.
  const auto ev = eps.to_vector<double>(), zv = out.z.to_vector<double>();
  const auto lv = out.logvar.to_vector<double>();
  double log_q_minus_p = 0;
  for (std::size_t i = 0; i < ev.size(); ++i)
    log_q_minus_p += 0.5 * (zv[i] * zv[i] - lv[i] - ev[i] * ev[i]);
  Loss vl = vae.loss(vae.forward(x, eps), x);
  EXPECT_NEAR(iwae.loss(out, x).total.item(), vl.term("recon").item() + log_q_minus_p / n, 2e-3);

  // Averaged over many draws, the sampled KL is the closed form the ELBO uses.
  const std::int64_t r = 400;
  VAEOutput many = iwae.forward(x, Tensor::randn({r * n, 6}, gen));
  const auto zm = many.z.to_vector<double>(), mu = many.mu.to_vector<double>();
  std::vector<double> mc;
  for (std::int64_t row = 0; row < r * n; ++row) {
    const std::int64_t in = row % n;
    double v = 0;
    for (int j = 0; j < 6; ++j) {
      const double zz = zm[row * 6 + j], m = mu[in * 6 + j], l = lv[in * 6 + j];
      // log q - log p for this draw.
      v += -0.5 * (l + (zz - m) * (zz - m) * std::exp(-l)) + 0.5 * zz * zz;
    }
    mc.push_back(v);
  }
  double var = 0;
  const double m = mean_of(mc);
  for (double v : mc) var += (v - m) * (v - m);
  const double se =
      std::sqrt(var / static_cast<double>(mc.size() - 1) / static_cast<double>(mc.size()));
  const double kl = kl_normal(many.h).item();
  EXPECT_NEAR(m, kl, 4 * se + 1e-4) << "sampled KL " << m << " closed form " << kl;
}

TEST(IWAE, BoundIsAtLeastTheElboAndGrowsWithK) {
  REQUIRE_FASHION_MNIST();
  const data::Dataset train_set = data::fashion_mnist(Split::train, {.limit = 1000});
  const Tensor x = data::fashion_mnist(Split::test, {.limit = 200}).images;
  IWAE model({.input = 784, .hidden = {128}, .latent = 8, .k = 5, .seed = 6});
  train(model, train_set.images, 3);
  model.eval();
  NoGradGuard no_grad;
  Generator gen(7);
  const std::int64_t n = x.dim(0);
  // L_k averaged over 50 / k independent estimates per example: 50 draws for every k.
  auto average_bound = [&](std::int64_t k) {
    double total = 0;
    const std::int64_t reps = 50 / k;
    for (std::int64_t rep = 0; rep < reps; ++rep) {
      VAEOutput out = model.forward(x, Tensor::randn({k * n, 8}, gen));
      total += sum(model.bound(out, x)).item();
    }
    return total / static_cast<double>(reps * n);
  };
  const double l1 = average_bound(1), l5 = average_bound(5), l50 = average_bound(50);
  const ElboResult e = elbo(model, x, 50);
  EXPECT_NEAR(l1, e.elbo, 1.5) << "L_1 is an estimate of the ELBO";
  EXPECT_GT(l5, e.elbo) << "L_5 " << l5 << " ELBO " << e.elbo;
  EXPECT_GT(l5, l1 + 5);
  EXPECT_GT(l50, l5 + 2) << "L_1 " << l1 << " L_5 " << l5 << " L_50 " << l50;
}

TEST(IWAE, LossFallsAndSeededRunsRepeat) {
  REQUIRE_FASHION_MNIST();
  const Tensor x = data::fashion_mnist(Split::train, {.limit = 600}).images;
  const IWAEConfig c{.input = 784, .hidden = {64}, .latent = 8, .k = 4, .seed = 8};
  IWAE a(c), b(c);
  const auto la = train(a, x, 2);
  EXPECT_LT(la.back(), 0.8 * la.front()) << la.front() << " -> " << la.back();
  EXPECT_EQ(train(b, x, 2), la);
  for (const Tensor& p : a.parameters()) EXPECT_TRUE(std::isfinite(sum(p).item()));
}

TEST(IWAE, Errors) {
  EXPECT_NE(error_of([] {
              IWAE m({.input = 10, .hidden = {4}, .latent = 2, .k = 0});
            }).find("[iwae] k must be at least 1, got 0"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { IWAE m({.input = 10, .hidden = {4}, .latent = 0}); }).find("[iwae] latent"),
      std::string::npos);
  IWAE m({.input = 10, .hidden = {4}, .latent = 2});
  Generator gen(9);
  const std::string msg = error_of([&] { m.compute_loss(Tensor::rand({3, 11}, gen)); });
  EXPECT_NE(msg.find("[iwae]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(3, 11)"), std::string::npos) << msg;
}

}  // namespace
}  // namespace latent::models
