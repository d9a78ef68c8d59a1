// Evaluation: reconstruction error, the ELBO, importance-sampled log p(x) (chunking, k, against the
// ELBO), KL per dimension, active units, export of mu, modes and generators left alone, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/latent.h"
#include "models/evaluate.h"
#include "models/vae.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using latent::testing::error_of;
using latent::testing::have_fashion_mnist;

#define REQUIRE_FASHION_MNIST()                                              \
  if (!have_fashion_mnist())                                                 \
  GTEST_SKIP() << "Fashion-MNIST not found in " << data::fashion_mnist_dir() \
               << " (install dataset-fashion-mnist or set LATENT_FASHION_MNIST)"

const Tensor& test_images() {
  static const Tensor x = data::fashion_mnist(Split::test, {.limit = 300}).images;
  return x;
}

VAEConfig config() {
  return {.input = 784, .hidden = {128}, .latent = 16, .seed = 11};
}

// A VAE trained for a few epochs on 1000 training images, built once for the whole file.
VAE& trained() {
  static const std::unique_ptr<VAE> vae = [] {
    auto m = std::make_unique<VAE>(config());
    const Tensor x = data::fashion_mnist(Split::train, {.limit = 1000}).images;
    optim::Adam opt(m->parameters(), {.lr = 2e-3});
    for (int e = 0; e < 6; ++e)
      for (const Tensor& xb : data::batches(x, {.batch = 100, .seed = 2, .epoch = e})) {
        Loss loss = m->compute_loss(xb);
        opt.zero_grad();
        loss.total.backward();
        opt.step();
      }
    return m;
  }();
  return *vae;
}

std::vector<double> doubles(const Tensor& t) {
  return t.to_vector<double>();
}

TEST(Evaluate, ReconstructionErrorMatchesADirectComputation) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images().rows(0, 100);
  const ReconstructionError r = reconstruction_error(vae, x, {.batch = 30});
  NoGradGuard no_grad;
  const Tensor params = vae.decode_params(vae.encode(x));
  const double sq = sum(square(sub(sigmoid(params), x))).item() / 100;
  EXPECT_NEAR(r.squared_error, sq, 1e-3 * sq);
  EXPECT_NEAR(r.mse, sq / 784, 1e-3 * sq / 784);
  const double nll_want = bce_with_logits(params, x).item();
  EXPECT_NEAR(r.nll, nll_want, 1e-3 * nll_want);
  // Training improved it.
  VAE untrained(config());
  const ReconstructionError u = reconstruction_error(untrained, x);
  EXPECT_LT(r.mse, 0.7 * u.mse);
  EXPECT_LT(r.nll, 0.8 * u.nll);
}

TEST(Evaluate, ElboIsTheUnweightedBound) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images().rows(0, 100);
  const ElboResult e = elbo(vae, x, 4, {.batch = 64, .seed = 3});
  EXPECT_NEAR(e.elbo, -(e.recon + e.kl), 1e-9);
  // The closed-form KL does not depend on the samples; the estimate repeats with the seed.
  const ElboResult again = elbo(vae, x, 4, {.batch = 64, .seed = 3});
  EXPECT_EQ(e.elbo, again.elbo);
  NoGradGuard no_grad;
  vae.eval();
  EXPECT_NEAR(e.kl, kl_normal(vae.posterior(x)).item(), 1e-3);
  vae.train();
  // A beta-VAE with the same weights reports the same ELBO: beta is not part of the bound.
  VAEConfig c = config();
  c.beta = 5.0;
  c.free_bits = 1.0;
  VAE beta(c);
  VAE plain(config());
  EXPECT_EQ(elbo(beta, x, 2).elbo, elbo(plain, x, 2).elbo);
}

TEST(Evaluate, ChunkingDoesNotChangeLogLikelihood) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images().rows(0, 12);
  const auto full = doubles(log_likelihood_per_example(vae, x, {.k = 50, .chunk = 50, .batch = 5}));
  for (std::int64_t chunk : {1, 7}) {
    const auto chunked =
        doubles(log_likelihood_per_example(vae, x, {.k = 50, .chunk = chunk, .batch = 5}));
    ASSERT_EQ(chunked.size(), full.size());
    for (std::size_t i = 0; i < full.size(); ++i)
      EXPECT_NEAR(chunked[i], full[i], 1e-4) << "chunk " << chunk << " example " << i;
  }
  // Another seed gives another estimate; the mean is the mean of the per-example values.
  const double other = log_likelihood(vae, x, {.k = 50, .chunk = 50, .batch = 5, .seed = 1});
  double m = 0;
  for (double v : full) m += v;
  EXPECT_NE(other, m / 12);
  EXPECT_NEAR(log_likelihood(vae, x, {.k = 50, .chunk = 13, .batch = 5}), m / 12, 1e-4);
}

TEST(Evaluate, FiveThousandSamplesInChunks) {
  REQUIRE_FASHION_MNIST();
  VAE small({.input = 784, .hidden = {16}, .latent = 4, .seed = 12});
  const Tensor x = test_images().rows(0, 3);
  const auto chunked =
      doubles(log_likelihood_per_example(small, x, {.k = 5000, .chunk = 500, .batch = 3}));
  const auto at_once =
      doubles(log_likelihood_per_example(small, x, {.k = 5000, .chunk = 5000, .batch = 3}));
  const double e = elbo(small, x, 1).elbo;
  double m = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(chunked[i], at_once[i], 1e-4) << i;
    EXPECT_TRUE(std::isfinite(chunked[i]));
    m += chunked[i] / 3;
  }
  EXPECT_GT(m, e);
}

TEST(Evaluate, LogLikelihoodIsAtLeastTheElboAndTightensWithK) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images().rows(0, 100);
  const double e = elbo(vae, x, 20).elbo;
  const double ll1 = log_likelihood(vae, x, {.k = 1, .chunk = 1, .batch = 100, .seed = 5});
  const double ll20 = log_likelihood(vae, x, {.k = 20, .chunk = 10, .batch = 50});
  const double ll200 = log_likelihood(vae, x, {.k = 200, .chunk = 100, .batch = 25});
  EXPECT_NEAR(ll1, e, 3.0) << "one importance sample is an ELBO estimate";
  EXPECT_GT(ll20, e);
  EXPECT_GT(ll200, ll20);
  EXPECT_TRUE(std::isfinite(ll200));
}

TEST(Evaluate, KlPerDimSumsToTheTotalKl) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images();
  const Tensor per_dim = kl_per_dim(vae, x, {.batch = 77});
  EXPECT_EQ(per_dim.shape(), Shape({16}));
  double total = 0;
  for (double v : doubles(per_dim)) {
    EXPECT_GE(v, 0);
    total += v;
  }
  const ElboResult e = elbo(vae, x, 1);
  EXPECT_NEAR(total, e.kl, 1e-4 * e.kl);
  // Batching does not change it.
  const auto other = doubles(kl_per_dim(vae, x, {.batch = 300}));
  const auto mine = doubles(per_dim);
  for (std::size_t j = 0; j < mine.size(); ++j) EXPECT_NEAR(other[j], mine[j], 1e-5);
}

TEST(Evaluate, ActiveUnitsOfTrainedAndUntrainedModels) {
  REQUIRE_FASHION_MNIST();
  const Tensor x = test_images();
  VAE& vae = trained();
  const ActiveUnits a = active_units(vae, x);
  EXPECT_EQ(a.variance.shape(), Shape({16}));
  // The variance is Var over the data of mu_j, from export_mu.
  const Tensor mu = export_mu(vae, x);
  const auto mv = mu.to_vector<double>();
  const auto var = doubles(a.variance);
  std::int64_t count = 0;
  for (std::size_t j = 0; j < 16; ++j) {
    double m = 0, v = 0;
    for (std::size_t n = 0; n < 300; ++n) m += mv[n * 16 + j] / 300;
    for (std::size_t n = 0; n < 300; ++n) v += (mv[n * 16 + j] - m) * (mv[n * 16 + j] - m) / 300;
    EXPECT_NEAR(var[j], v, 1e-4 * v + 1e-7) << j;
    count += v > 0.01;
  }
  EXPECT_EQ(a.count, count);
  // Training spreads the posterior means of the used dimensions over the data (variances near 1),
  // while an untrained encoder maps every image to nearly the same code.
  EXPECT_GE(a.count, 12);
  VAE untrained(config());
  const ActiveUnits u = active_units(untrained, x);
  double mean_trained = 0, mean_untrained = 0;
  for (double v : var) mean_trained += v / 16;
  for (double v : doubles(u.variance)) mean_untrained += v / 16;
  EXPECT_GT(mean_trained, 3 * mean_untrained);
  EXPECT_GE(active_units(vae, x, 0.3).count, 8);
  EXPECT_EQ(active_units(untrained, x, 0.3).count, 0);
  // The threshold decides the count.
  EXPECT_EQ(active_units(vae, x, 0.0).count, 16);
  EXPECT_EQ(active_units(vae, x, 1e9).count, 0);
}

TEST(Evaluate, ExportMuEqualsEncodeAndWritesNpy) {
  REQUIRE_FASHION_MNIST();
  VAE& vae = trained();
  const Tensor x = test_images().rows(0, 50);
  const Tensor mu = export_mu(vae, x, {.batch = 7});
  EXPECT_EQ(mu.shape(), Shape({50, 16}));
  NoGradGuard no_grad;
  const auto want = vae.encode(x).to_vector<float>();
  const auto got = mu.to_vector<float>();
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << i;
  const std::string path =
      (std::filesystem::temp_directory_path() / "latent_evaluate_test_mu.npy").string();
  const Tensor written = export_mu(vae, x, path);
  const Tensor back = data::read_npy(path);
  EXPECT_EQ(back.shape(), Shape({50, 16}));
  EXPECT_EQ(back.to_vector<float>(), written.to_vector<float>());
  std::filesystem::remove(path);
}

TEST(Evaluate, LeavesTheModelsModeAndGeneratorsAlone) {
  VAE vae({.input = 20, .hidden = {8}, .latent = 3});
  Generator gen(1);
  const Tensor x = Tensor::rand({10, 20}, gen);
  const std::uint64_t offset = vae.generator().offset();
  EXPECT_TRUE(vae.is_training());
  elbo(vae, x, 3);
  log_likelihood(vae, x, {.k = 10, .chunk = 3});
  kl_per_dim(vae, x);
  EXPECT_TRUE(vae.is_training());
  EXPECT_EQ(vae.generator().offset(), offset);
  vae.eval();
  reconstruction_error(vae, x);
  EXPECT_FALSE(vae.is_training());
  // Mode restored even when the evaluation throws.
  vae.train();
  EXPECT_THROW(log_likelihood(vae, x, {.k = 0}), Error);
  EXPECT_TRUE(vae.is_training());
  // No graph is recorded.
  EXPECT_FALSE(export_mu(vae, x).requires_grad());
}

TEST(Evaluate, Errors) {
  VAE vae({.input = 20, .hidden = {8}, .latent = 3});
  Generator gen(2);
  const Tensor x = Tensor::rand({10, 20}, gen);
  auto has = [](const std::string& m, const std::string& part) {
    return m.find(part) != std::string::npos;
  };
  std::string m = error_of([&] { log_likelihood(vae, x, {.k = 0}); });
  EXPECT_TRUE(has(m, "[evaluate] log_likelihood: k must be at least 1, got 0")) << m;
  m = error_of([&] { log_likelihood(vae, x, {.k = 10, .chunk = 0}); });
  EXPECT_TRUE(has(m, "chunk must be at least 1")) << m;
  m = error_of([&] { log_likelihood(vae, x, {.batch = 0}); });
  EXPECT_TRUE(has(m, "batch must be at least 1")) << m;
  m = error_of([&] { elbo(vae, x, 0); });
  EXPECT_TRUE(has(m, "[evaluate] elbo: samples must be at least 1")) << m;
  m = error_of([&] { reconstruction_error(vae, Tensor::rand({4, 21}, gen)); });
  EXPECT_TRUE(has(m, "[evaluate] reconstruction_error")) << m;
  EXPECT_TRUE(has(m, "(4, 21)")) << m;
  m = error_of([&] { kl_per_dim(vae, Tensor::rand({0, 20}, gen)); });
  EXPECT_TRUE(has(m, "empty")) << m;
  m = error_of([&] { active_units(vae, x, -1.0); });
  EXPECT_TRUE(has(m, "threshold")) << m;
  m = error_of([&] { export_mu(vae, Tensor()); });
  EXPECT_TRUE(has(m, "undefined")) << m;
}

}  // namespace
}  // namespace latent::models
