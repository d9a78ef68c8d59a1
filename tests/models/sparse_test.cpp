// The sparse autoencoder: L1 and KL(rho || rho_hat) penalties with their weights, the code
// activation rules, a falling loss on Fashion-MNIST with codes that become sparse, seeded
// repeatability, and config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "models/sparse.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using testing::error_of;
using testing::have_fashion_mnist;
using testing::images;
using testing::train;

void expect_terms_add_up(const Loss& l) {
  double sum = 0;
  for (const auto& [name, value] : l.values())
    if (name != "total") sum += value;
  EXPECT_NEAR(sum, l.total.item(), 1e-5 * std::fabs(l.total.item()));
}

SparseAEConfig small(Sparsity penalty) {
  return {.input = 20,
          .latent = 30,  // overcomplete: allowed by default
          .encoder = {.hidden = {16}},
          .decoder = {.hidden = {16}},
          .penalty = penalty,
          .weight = 0.5,
          .rho = 0.1,
          .beta = 2.0};
}

TEST(SparseAE, PenaltiesEnterTheTotalWithTheirWeights) {
  Generator g(1);
  Tensor x = Tensor::rand({8, 20}, g);

  SparseAE l1(small(Sparsity::l1));
  EXPECT_EQ(l1.name(), "SparseAE");
  EXPECT_EQ(l1.encoder().activation_of(1).act, Act::relu);  // the default L1 code
  AEOutput out = l1.forward(x);
  EXPECT_EQ(out.code.shape(), Shape({8, 30}));
  Loss l = l1.loss(out, x);
  ASSERT_EQ(l.terms.size(), 2u);
  EXPECT_EQ(l.terms[0].first, "recon");
  EXPECT_EQ(l.terms[1].first, "l1");
  EXPECT_NEAR(l.term("l1").item(), 0.5 * l1_penalty(out.code).item(), 1e-6);
  EXPECT_NEAR(l.term("recon").item(), mean(nll(l1.likelihood(), out.params, x)).item(), 1e-5);
  EXPECT_GT(l.term("l1").item(), 0.0);
  expect_terms_add_up(l);

  SparseAE kl(small(Sparsity::kl));
  EXPECT_EQ(kl.encoder().activation_of(1).act, Act::sigmoid);  // forced for KL
  AEOutput ko = kl.forward(x);
  Loss lk = kl.loss(ko, x);
  EXPECT_EQ(lk.terms[1].first, "kl_sparsity");
  EXPECT_NEAR(lk.term("kl_sparsity").item(), 2.0 * kl_sparsity(ko.code, 0.1).item(), 1e-6);
  EXPECT_NEAR(kl.penalty(ko.code).item(), kl_sparsity(ko.code, 0.1).item(), 0);
  expect_terms_add_up(lk);
  // Explicitly sigmoid is fine too; other activations for L1 are the user's choice.
  SparseAEConfig c = small(Sparsity::kl);
  c.code_activation = Act::sigmoid;
  EXPECT_NO_THROW(SparseAE{c});
  c = small(Sparsity::l1);
  c.code_activation = Act::identity;
  EXPECT_EQ(SparseAE(c).encoder().activation_of(1).act, Act::identity);

  // Gradients reach the encoder through the penalty alone (weight on, recon detached out).
  SparseAE pen_only(small(Sparsity::kl));
  pen_only.loss(pen_only.forward(x), x).term("kl_sparsity").backward();
  EXPECT_GT(sum(abs(pen_only.parameter("encoder.layers.0.weight").grad())).item(), 0.0);
}

TEST(SparseAE, ConfigErrorsNameTheModelAndTheField) {
  auto err = [](const SparseAEConfig& c) { return error_of([&] { SparseAE m(c); }); };
  SparseAEConfig c = small(Sparsity::l1);
  c.weight = -1e-3;
  std::string e = err(c);
  EXPECT_NE(e.find("[SparseAE] weight"), std::string::npos) << e;
  EXPECT_NE(e.find("-0.001"), std::string::npos) << e;
  c = small(Sparsity::kl);
  c.beta = -2;
  e = err(c);
  EXPECT_NE(e.find("[SparseAE] beta"), std::string::npos) << e;
  for (double rho : {0.0, 1.0, 1.5, -0.2}) {
    c = small(Sparsity::kl);
    c.rho = rho;
    e = err(c);
    EXPECT_NE(e.find("[SparseAE] rho must lie in (0, 1)"), std::string::npos) << e;
  }
  c = small(Sparsity::kl);
  c.code_activation = Act::relu;
  e = err(c);
  EXPECT_NE(e.find("[SparseAE] the KL sparsity penalty needs a sigmoid code"), std::string::npos)
      << e;
  EXPECT_NE(e.find("relu"), std::string::npos) << e;
  c = small(Sparsity::l1);
  c.undercomplete = true;  // latent 30 > input 20
  e = err(c);
  EXPECT_NE(e.find("[SparseAE] latent (30) exceeds input (20)"), std::string::npos) << e;
  c = small(Sparsity::l1);
  c.input = -4;
  EXPECT_NE(err(c).find("[SparseAE] input must be positive"), std::string::npos);
  c = small(Sparsity::l1);
  c.likelihood = {.kind = Likelihood::gaussian, .sigma = -1};
  EXPECT_NE(err(c).find("[SparseAE] likelihood"), std::string::npos);
  SparseAE m(small(Sparsity::l1));
  e = error_of([&] { m.penalty(Tensor::zeros({2, 29})); });
  EXPECT_NE(e.find("[N, 30]"), std::string::npos) << e;
}

TEST(SparseAE, LossFallsAndCodesBecomeSparseOnFashionMnist) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor train_x = images(Split::train, 1000);
  const Tensor test_x = images(Split::test, 500);
  const MLPSpec net{.hidden = {64}};

  // KL: the mean activation of every unit is pulled towards rho.
  SparseAE kl({.input = 784,
               .latent = 64,
               .encoder = net,
               .decoder = net,
               .penalty = Sparsity::kl,
               .rho = 0.05,
               .beta = 3.0,
               .seed = 2});
  const std::vector<double> lk = train(kl, train_x, 250, 100, 3e-3);
  EXPECT_LT(std::accumulate(lk.end() - 20, lk.end(), 0.0),
            0.7 * std::accumulate(lk.begin(), lk.begin() + 20, 0.0));
  kl.eval();
  {
    NoGradGuard ng;
    const Tensor code = kl.encode(test_x);
    const double mean_activation = mean(code).item();
    std::cout << "KL sparse code: mean activation " << mean_activation << " (rho 0.05)\n";
    EXPECT_LT(mean_activation, 0.12);
    expect_terms_add_up(kl.compute_loss(test_x));
  }

  // L1 on a relu code: most code entries end exactly at zero, far more than without the penalty.
  auto zero_fraction = [&](double weight) {
    SparseAE m({.input = 784,
                .latent = 64,
                .encoder = net,
                .decoder = net,
                .penalty = Sparsity::l1,
                .weight = weight,
                .seed = 2});
    const std::vector<double> l = train(m, train_x, 250, 100, 3e-3);
    EXPECT_LT(std::accumulate(l.end() - 20, l.end(), 0.0),
              0.7 * std::accumulate(l.begin(), l.begin() + 20, 0.0));
    m.eval();
    NoGradGuard ng;
    const std::vector<float> code = m.encode(test_x).to_vector<float>();
    double zeros = 0;
    for (float v : code) zeros += v == 0.0f;
    return zeros / static_cast<double>(code.size());
  };
  const double sparse = zero_fraction(1.0), dense = zero_fraction(0.0);
  std::cout << "L1 relu code: zero fraction " << sparse << " with weight 1, " << dense
            << " without\n";
  EXPECT_GT(sparse, dense + 0.2);
}

TEST(SparseAE, SeededRunsRepeatExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor x = images(Split::train, 256);
  for (Sparsity p : {Sparsity::l1, Sparsity::kl}) {
    const SparseAEConfig c{.input = 784,
                           .latent = 16,
                           .encoder = {.hidden = {32}},
                           .decoder = {.hidden = {32}},
                           .penalty = p,
                           .weight = 0.01,
                           .seed = 9};
    SparseAE a(c), b(c);
    EXPECT_EQ(train(a, x, 12, 64, 1e-3), train(b, x, 12, 64, 1e-3));
  }
}

}  // namespace
}  // namespace latent::models
