// The contractive autoencoder: its penalty equals the squared Frobenius norm of a finite-difference
// Jacobian of its encoder (float64) for one- and three-layer encoders, the loss is differentiable
// (gradient check), its terms add up, the loss falls on Fashion-MNIST while the penalty makes the
// encoder contract, seeded runs repeat exactly, and config errors name the field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "models/contractive.h"
#include "support/gradcheck.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using testing::error_of;
using testing::have_fashion_mnist;
using testing::images;
using testing::train;

// ||d encode / dx||_F^2 per sample by central differences on the model's own encode().
std::vector<double> fd_jacobian_norms(ContractiveAE& cae, const Tensor& x, double h = 1e-5) {
  NoGradGuard ng;
  const std::int64_t n = x.dim(0), d = x.dim(1);
  std::vector<double> norms(static_cast<std::size_t>(n), 0.0);
  Tensor xp = x.clone(), xm = x.clone();
  double* pp = xp.data<double>();
  double* pm = xm.data<double>();
  for (std::int64_t j = 0; j < d; ++j) {
    for (std::int64_t i = 0; i < n; ++i) {
      pp[i * d + j] += h;
      pm[i * d + j] -= h;
    }
    const std::vector<double> fp = cae.encode(xp).to_vector<double>();
    const std::vector<double> fm = cae.encode(xm).to_vector<double>();
    const std::size_t z = fp.size() / static_cast<std::size_t>(n);
    for (std::size_t k = 0; k < fp.size(); ++k) {
      const double g = (fp[k] - fm[k]) / (2 * h);
      norms[k / z] += g * g;
    }
    for (std::int64_t i = 0; i < n; ++i) {
      pp[i * d + j] -= h;
      pm[i * d + j] += h;
    }
  }
  return norms;
}

ContractiveAEConfig tiny(std::vector<std::int64_t> hidden, Act hidden_act = Act::tanh) {
  return {.input = 12,
          .latent = 4,
          .encoder = {.hidden = std::move(hidden), .activation = hidden_act},
          .decoder = {.hidden = {6}},
          .lambda = 0.3,
          .seed = 4};
}

TEST(ContractiveAE, PenaltyEqualsAFiniteDifferenceJacobianNorm) {
  struct Case {
    const char* what;
    ContractiveAEConfig config;
    bool closed_form;
  };
  ContractiveAEConfig softplus_code = tiny({10, 7}, Act::elu);
  softplus_code.code_activation = Act::softplus;
  const std::vector<Case> cases = {
      {"1 layer, sigmoid code", tiny({}), true},
      {"1 layer, tanh code",
       [] {
         ContractiveAEConfig c = tiny({});
         c.code_activation = Act::tanh;
         return c;
       }(),
       true},
      {"3 layers, tanh hidden, sigmoid code", tiny({10, 7}), false},
      {"3 layers, elu hidden, softplus code", softplus_code, false},
  };
  Generator g(21);
  for (const Case& c : cases) {
    ContractiveAE cae(c.config);
    cae.to(DType::f64);
    EXPECT_EQ(cae.closed_form(), c.closed_form) << c.what;
    EXPECT_EQ(cae.encoder().num_layers(), c.closed_form ? 1u : 3u) << c.what;
    const Tensor x = Tensor::randn({5, 12}, g, {.dtype = DType::f64});
    const ContractiveAEOutput out = cae.forward(x);
    ASSERT_EQ(out.preacts.size(), cae.encoder().num_layers());
    const std::vector<double> got = cae.jacobian_norm(out, Reduction::none).to_vector<double>();
    const std::vector<double> want = fd_jacobian_norms(cae, x);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_GT(want[i], 1e-3) << c.what;  // a real Jacobian, not a vanishing one
      EXPECT_NEAR(got[i], want[i], 1e-7 * want[i] + 1e-9) << c.what << " sample " << i;
    }
    // The loss term is lambda times the batch mean of the same norms.
    const Loss l = cae.loss(out, x);
    const double mean_norm = std::accumulate(want.begin(), want.end(), 0.0) / want.size();
    EXPECT_NEAR(l.term("contractive").item(), 0.3 * mean_norm, 1e-7 * mean_norm) << c.what;
    EXPECT_NEAR(l.term("recon").item() + l.term("contractive").item(), l.total.item(), 1e-12);
    EXPECT_NEAR(l.term("recon").item(), mean(nll(cae.likelihood(), out.params, x)).item(), 1e-12);
  }
}

TEST(ContractiveAE, LossGradientMatchesFiniteDifferences) {
  Generator g(5);
  for (bool deep : {false, true}) {
    ContractiveAE cae(tiny(deep ? std::vector<std::int64_t>{6, 5} : std::vector<std::int64_t>{}));
    cae.to(DType::f64);
    const Tensor x = Tensor::rand({3, 12}, g, {.dtype = DType::f64});
    const auto r =
        testing::gradcheck([&](const std::vector<Tensor>&) { return cae.compute_loss(x).total; },
                           cae.parameters(), 1e-7, 1e-5);
    EXPECT_TRUE(r.ok) << (deep ? "3 layers: " : "1 layer: ") << r.first_failure;
  }
}

TEST(ContractiveAE, ConfigErrorsNameTheModelAndTheField) {
  auto err = [](const ContractiveAEConfig& c) { return error_of([&] { ContractiveAE m(c); }); };
  ContractiveAEConfig c = tiny({});
  c.lambda = -0.1;
  std::string e = err(c);
  EXPECT_NE(e.find("[ContractiveAE] lambda"), std::string::npos) << e;
  EXPECT_NE(e.find("-0.1"), std::string::npos) << e;
  c = tiny({});
  c.latent = 13;
  e = err(c);
  EXPECT_NE(e.find("[ContractiveAE] latent (13) exceeds input (12)"), std::string::npos) << e;
  c = tiny({4, 0});
  EXPECT_NE(err(c).find("[ContractiveAE] encoder.hidden"), std::string::npos);
  c = tiny({});
  c.latent = 0;
  EXPECT_NE(err(c).find("[ContractiveAE] latent must be positive"), std::string::npos);

  ContractiveAE cae(tiny({}));
  e = error_of([&] { cae.forward(Tensor::zeros({2, 11})); });
  EXPECT_NE(e.find("[ContractiveAE]"), std::string::npos) << e;
  EXPECT_NE(e.find("[N, 12]"), std::string::npos) << e;
  ContractiveAEOutput out = cae.forward(Tensor::zeros({2, 12}));
  out.preacts.clear();
  e = error_of([&] { cae.jacobian_norm(out); });
  EXPECT_NE(e.find("pre-activations"), std::string::npos) << e;
}

TEST(ContractiveAE, LossFallsAndThePenaltyContractsTheEncoder) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor train_x = images(Split::train, 1000);
  const Tensor test_x = images(Split::test, 300);
  auto run = [&](double lambda, std::vector<std::int64_t> hidden, int steps, std::int64_t batch) {
    ContractiveAE cae({.input = 784,
                       .latent = 16,
                       .encoder = {.hidden = std::move(hidden), .activation = Act::tanh},
                       .decoder = {.hidden = {64}},
                       .lambda = lambda,
                       .seed = 3});
    const std::vector<double> l = train(cae, train_x, steps, batch, 3e-3);
    EXPECT_LT(std::accumulate(l.end() - 10, l.end(), 0.0),
              0.8 * std::accumulate(l.begin(), l.begin() + 10, 0.0))
        << "lambda " << lambda;
    cae.eval();
    NoGradGuard ng;
    const ContractiveAEOutput out = cae.forward(test_x);
    const Loss loss = cae.loss(out, test_x);
    double sum = 0;
    for (const auto& [name, value] : loss.values())
      if (name != "total") sum += value;
    EXPECT_NEAR(sum, loss.total.item(), 1e-5 * loss.total.item());
    return cae.jacobian_norm(out).item();
  };
  // One sigmoid layer (closed form): with lambda the encoder's Jacobian is much smaller.
  const double plain = run(0.0, {}, 250, 100), contracted = run(10.0, {}, 250, 100);
  std::cout << "||J||_F^2 on test data: " << plain << " without penalty, " << contracted
            << " with lambda 10\n";
  EXPECT_LT(contracted, 0.3 * plain);
  // A three-layer encoder (the exact chain) trains too; smaller batches keep the N*Z-row GEMMs
  // cheap.
  run(0.5, {32, 32}, 100, 32);
}

TEST(ContractiveAE, SeededRunsRepeatExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor x = images(Split::train, 128);
  for (bool deep : {false, true}) {
    const ContractiveAEConfig c{
        .input = 784,
        .latent = 8,
        .encoder = {.hidden = deep ? std::vector<std::int64_t>{16} : std::vector<std::int64_t>{},
                    .activation = Act::tanh},
        .decoder = {.hidden = {16}},
        .lambda = 0.5,
        .seed = 11};
    ContractiveAE a(c), b(c);
    EXPECT_EQ(train(a, x, 10, 32, 1e-3), train(b, x, 10, 32, 1e-3)) << (deep ? "deep" : "1 layer");
  }
}

}  // namespace
}  // namespace latent::models
