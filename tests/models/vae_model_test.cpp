// VAE and beta-VAE: shapes, the loss and its terms (beta, warm-up, free bits, R samples),
// explicit noise, seeded repeatability, evaluation-mode noise, training on Fashion-MNIST, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/latent.h"
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

const data::Dataset& train_set() {
  static const data::Dataset d = data::fashion_mnist(Split::train, {.limit = 1000});
  return d;
}
const data::Dataset& test_set() {
  static const data::Dataset d = data::fashion_mnist(Split::test, {.limit = 500});
  return d;
}

VAEConfig small_config() {
  return {.input = 784, .hidden = {64}, .latent = 8, .seed = 3};
}

std::vector<float> values(const Tensor& t) {
  return t.to_vector<float>();
}

// Trains for `epochs` over x with Adam; the KL schedule sees the global step.
std::vector<double> train(VAE& vae, const Tensor& x, int epochs, std::int64_t batch = 100,
                          double lr = 2e-3) {
  optim::Adam opt(vae.parameters(), {.lr = lr});
  std::vector<double> losses;
  std::int64_t step = 0;
  for (int e = 0; e < epochs; ++e) {
    for (const Tensor& xb : data::batches(x, {.batch = batch, .seed = 5, .epoch = e})) {
      vae.on_train_step(step++);
      Loss loss = vae.compute_loss(xb);
      opt.zero_grad();
      loss.total.backward();
      opt.step();
      losses.push_back(loss.total.item());
    }
  }
  return losses;
}

// ---- construction ------------------------------------------------------------------------------

TEST(VAE, DesignStyleConfigAndShapes) {
  VAE vae({.input = 784,
           .hidden = {32, 16},
           .latent = 4,
           .likelihood = Likelihood::bernoulli,
           .beta = 1.0f},
          Device::cpu());
  EXPECT_EQ(vae.name(), "vae");
  EXPECT_EQ(vae.input_dim(), 784);
  EXPECT_EQ(vae.latent_dim(), 4);
  // Encoder 784-32-16-8 (mu | logvar), decoder 4-16-32-784.
  EXPECT_EQ(vae.parameter("encoder.layers.2.weight").shape(), Shape({8, 16}));
  EXPECT_EQ(vae.parameter("decoder.layers.0.weight").shape(), Shape({16, 4}));
  EXPECT_EQ(vae.parameter("decoder.layers.2.weight").shape(), Shape({784, 32}));

  Generator gen(1);
  Tensor x = Tensor::rand({5, 784}, gen);
  VAEOutput out = vae.forward(x);
  EXPECT_EQ(out.h.shape(), Shape({5, 8}));
  EXPECT_EQ(out.mu.shape(), Shape({5, 4}));
  EXPECT_EQ(out.logvar.shape(), Shape({5, 4}));
  EXPECT_EQ(out.z.shape(), Shape({5, 4}));
  EXPECT_EQ(out.params.shape(), Shape({5, 784}));
  EXPECT_EQ(vae.encode(x).shape(), Shape({5, 4}));
  EXPECT_EQ(vae.reconstruct(x).shape(), Shape({5, 784}));
  // encode() is the posterior mean: the first Z columns of the encoder's output.
  EXPECT_EQ(values(vae.encode(x)), values(narrow_cols(vae.posterior(x), 0, 4)));
  EXPECT_EQ(values(out.mu), values(vae.encode(x)));
}

TEST(VAE, LikelihoodsSetTheDecoderWidth) {
  VAE g({.input = 10,
         .hidden = {6},
         .latent = 2,
         .likelihood = LikelihoodConfig{.kind = Likelihood::gaussian, .sigma = 0.5}});
  EXPECT_EQ(g.likelihood().sigma, 0.5);
  VAE gl({.input = 10, .hidden = {6}, .latent = 2, .likelihood = Likelihood::gaussian_learned});
  VAE cat({.input = 10,
           .hidden = {6},
           .latent = 2,
           .likelihood = LikelihoodConfig{.kind = Likelihood::categorical, .levels = 4}});
  Generator gen(2);
  Tensor x = Tensor::rand({3, 10}, gen);
  EXPECT_EQ(g.forward(x).params.shape(), Shape({3, 10}));
  EXPECT_EQ(gl.forward(x).params.shape(), Shape({3, 20}));
  EXPECT_EQ(cat.forward(x).params.shape(), Shape({3, 40}));
  // Every likelihood gives a finite loss and the decoder's mean has the input's shape.
  for (VAE* m : {&g, &gl, &cat}) {
    EXPECT_TRUE(std::isfinite(m->compute_loss(x).total.item()))
        << likelihood_name(m->likelihood().kind);
    EXPECT_EQ(m->reconstruct(x).shape(), Shape({3, 10}));
  }
}

// ---- the loss ----------------------------------------------------------------------------------

TEST(VAE, TermsAddUpExactly) {
  Generator gen(4);
  Tensor x = Tensor::rand({16, 784}, gen);
  for (const VAEConfig& c : {small_config(), VAEConfig{.input = 784,
                                             .hidden = {64},
                                             .latent = 8,
                                             .samples = 3,
                                             .beta = 4.0,
                                             .free_bits = 0.05,
                                             .seed = 3}}) {
    VAE vae(c);
    Loss loss = vae.compute_loss(x);
    ASSERT_EQ(loss.terms.size(), 2u);
    EXPECT_EQ(loss.terms[0].first, "recon");
    EXPECT_EQ(loss.terms[1].first, "kl");
    const float recon = static_cast<float>(loss.term("recon").item());
    const float kl = static_cast<float>(loss.term("kl").item());
    // total is one float32 addition of the two terms.
    EXPECT_EQ(static_cast<float>(loss.total.item()), recon + kl);
    EXPECT_GT(recon, 0);
    EXPECT_GT(kl, 0);
  }
}

TEST(VAE, ReconIsTheMeanNllAndKlTheClosedForm) {
  VAE vae(small_config());
  Generator gen(5);
  Tensor x = Tensor::rand({8, 784}, gen);
  Tensor eps = Tensor::randn({8, 8}, gen);
  VAEOutput out = vae.forward(x, eps);
  Loss loss = vae.loss(out, x);
  EXPECT_NEAR(loss.term("recon").item(),
              mean(bce_with_logits(out.params, x, Reduction::none)).item(), 1e-4);
  EXPECT_NEAR(loss.term("kl").item(), kl_normal(out.h).item(), 1e-5);
  // z = mu + exp(logvar / 2) * eps.
  const auto mu = values(out.mu), lv = values(out.logvar), e = values(eps), z = values(out.z);
  for (std::size_t i = 0; i < z.size(); ++i)
    EXPECT_NEAR(z[i], mu[i] + std::exp(0.5 * lv[i]) * e[i], 1e-5) << i;
}

TEST(VAE, BetaScalesTheKlTerm) {
  Generator gen(6);
  Tensor x = Tensor::rand({16, 784}, gen);
  Tensor eps = Tensor::randn({16, 8}, gen);
  VAEConfig c1 = small_config();
  VAEConfig c4 = small_config();
  c4.beta = 4.0;
  VAE v1(c1), v4(c4);  // same seed: same weights
  Loss l1 = v1.loss(v1.forward(x, eps), x);
  Loss l4 = v4.loss(v4.forward(x, eps), x);
  EXPECT_EQ(l1.term("recon").item(), l4.term("recon").item());
  EXPECT_NEAR(l4.term("kl").item(), 4.0 * l1.term("kl").item(), 1e-5 * l1.term("kl").item());
  VAEConfig c0 = small_config();
  c0.beta = 0.0;
  VAE v0(c0);
  EXPECT_EQ(v0.loss(v0.forward(x, eps), x).term("kl").item(), 0.0);
  EXPECT_EQ(v0.kl_weight(), 0.0);
}

TEST(VAE, BetaVAEIsTheVAEWithAnotherBeta) {
  BetaVAE b({.input = 20, .hidden = {8}, .latent = 2, .beta = 4.0});
  EXPECT_EQ(b.config().beta, 4.0);
  EXPECT_EQ(b.kl_weight(), 4.0);
}

TEST(VAE, WarmupScheduleValues) {
  const KlSchedule constant{};
  EXPECT_EQ(constant.factor(0), 1.0);
  EXPECT_EQ(constant.factor(12345), 1.0);

  const KlSchedule linear{.kind = KlAnneal::linear, .steps = 10};
  EXPECT_EQ(linear.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(linear.factor(1), 0.1);
  EXPECT_DOUBLE_EQ(linear.factor(5), 0.5);
  EXPECT_EQ(linear.factor(10), 1.0);
  EXPECT_EQ(linear.factor(1000), 1.0);

  // Cycles of 10 steps, rising over the first 4 of each.
  const KlSchedule cyc{.kind = KlAnneal::cyclical, .steps = 10, .ratio = 0.4};
  EXPECT_EQ(cyc.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(cyc.factor(2), 0.5);
  EXPECT_EQ(cyc.factor(4), 1.0);
  EXPECT_EQ(cyc.factor(9), 1.0);
  EXPECT_EQ(cyc.factor(10), 0.0);
  EXPECT_DOUBLE_EQ(cyc.factor(13), 0.75);
  EXPECT_EQ(cyc.factor(25), 1.0);

  // The model's KL weight follows on_train_step in training mode, and is beta in evaluation.
  VAEConfig c = small_config();
  c.beta = 2.0;
  c.warmup = {.kind = KlAnneal::linear, .steps = 4};
  VAE vae(c);
  Generator gen(7);
  Tensor x = Tensor::rand({8, 784}, gen);
  Tensor eps = Tensor::randn({8, 8}, gen);
  const double kl = kl_normal(vae.forward(x, eps).h).item();
  for (std::int64_t step : {0, 1, 2, 4, 9}) {
    vae.on_train_step(step);
    EXPECT_EQ(vae.step(), step);
    const double want = 2.0 * std::min(1.0, step / 4.0);
    EXPECT_DOUBLE_EQ(vae.kl_weight(), want);
    EXPECT_NEAR(vae.loss(vae.forward(x, eps), x).term("kl").item(), want * kl, 1e-5 * kl);
  }
  vae.on_train_step(1);
  vae.eval();
  EXPECT_EQ(vae.kl_weight(), 2.0);
  EXPECT_NEAR(vae.loss(vae.forward(x, eps), x).term("kl").item(), 2.0 * kl, 1e-5 * kl);
  EXPECT_EQ(vae.step(), 1);  // an evaluation loss is no training step
}

// The model counts its training steps itself (in memory, where the loss's kernel reads the
// weight): without on_train_step the warm-up moves, one step per training loss.
TEST(VAE, KlWarmupCountsItsOwnSteps) {
  VAEConfig c = small_config();
  c.beta = 3.0;
  c.warmup = {.kind = KlAnneal::cyclical, .steps = 4, .ratio = 0.5};
  VAE vae(c);
  Generator gen(9);
  Tensor x = Tensor::rand({8, 784}, gen);
  Tensor eps = Tensor::randn({8, 8}, gen);
  const double kl = kl_normal(vae.forward(x, eps).h).item();
  for (std::int64_t step = 0; step < 10; ++step) {
    EXPECT_EQ(vae.step(), step);
    const double want = 3.0 * c.warmup.factor(step);
    EXPECT_DOUBLE_EQ(vae.kl_weight(), want);
    EXPECT_NEAR(vae.loss(vae.forward(x, eps), x).term("kl").item(), want * kl, 1e-5 * kl + 1e-12)
        << "step " << step;
  }
  vae.on_train_step(2);  // back: the count in memory is set again
  EXPECT_NEAR(vae.loss(vae.forward(x, eps), x).term("kl").item(), 3.0 * kl, 1e-5 * kl);
  vae.on_train_step(5);
  EXPECT_NEAR(vae.loss(vae.forward(x, eps), x).term("kl").item(), 1.5 * kl, 1e-5 * kl);
}

TEST(VAE, FreeBitsFloorEachDimension) {
  VAE vae(small_config());
  Generator gen(8);
  Tensor x = Tensor::rand({32, 784}, gen);
  Tensor eps = Tensor::randn({32, 8}, gen);
  VAEOutput out = vae.forward(x, eps);
  const std::vector<double> per_dim = mean(kl_normal_terms(out.h), 0).to_vector<double>();
  // A floor between the smallest and the largest per-dimension KL, so both cases occur.
  std::vector<double> sorted = per_dim;
  std::sort(sorted.begin(), sorted.end());
  const double floor = 0.5 * (sorted[3] + sorted[4]);
  double want = 0;
  for (double v : per_dim) want += std::max(floor, v);

  VAEConfig c = small_config();
  c.free_bits = floor;
  VAE fb(c);  // same weights
  // A leaf h, so the gradient of the KL term reaches it.
  VAEOutput leaf = fb.forward(x, eps);
  leaf.h = leaf.h.detach().requires_grad_();
  Loss loss = fb.loss(leaf, x);
  EXPECT_NEAR(loss.term("kl").item(), want, 1e-5 * want);
  loss.term("kl").backward();
  const std::vector<float> g = values(leaf.h.grad());  // [32, 16]
  for (std::size_t j = 0; j < 8; ++j) {
    double gnorm = 0;
    for (std::size_t n = 0; n < 32; ++n)
      gnorm += std::fabs(g[n * 16 + j]) + std::fabs(g[n * 16 + 8 + j]);
    if (per_dim[j] < floor)
      EXPECT_EQ(gnorm, 0.0) << "dimension " << j << " is under the floor: no gradient";
    else
      EXPECT_GT(gnorm, 0.0) << "dimension " << j;
  }
  // With the floor above every dimension the term is Z * free_bits.
  c.free_bits = sorted.back() + 1;
  VAE high(c);
  EXPECT_NEAR(high.loss(high.forward(x, eps), x).term("kl").item(), 8 * c.free_bits, 1e-5);
}

TEST(VAE, RSamplesAverageTheReconstruction) {
  VAEConfig c = small_config();
  c.samples = 3;
  VAE vae(c);
  Generator gen(9);
  Tensor x = Tensor::rand({6, 784}, gen);
  VAEOutput out = vae.forward(x);
  EXPECT_EQ(out.z.shape(), Shape({18, 8}));
  EXPECT_EQ(out.params.shape(), Shape({18, 784}));
  // Sample r of input n is row r*6 + n: the mean NLL over the three [6, D] blocks.
  double want = 0;
  for (int r = 0; r < 3; ++r)
    want +=
        mean(bce_with_logits(vae.decode_params(out.z.rows(r * 6, 6)), x, Reduction::none)).item();
  Loss loss = vae.loss(out, x);
  EXPECT_NEAR(loss.term("recon").item(), want / 3, 1e-4);
  EXPECT_NEAR(loss.term("kl").item(), kl_normal(out.h).item(), 1e-5);
  // The three samples differ, the means they come from do not.
  EXPECT_NE(values(out.z.rows(0, 6)), values(out.z.rows(6, 6)));
}

// ---- noise -------------------------------------------------------------------------------------

TEST(VAE, ExplicitNoiseEqualsTheGeneratorsNoise) {
  VAEConfig c = small_config();
  c.samples = 2;
  VAE vae(c);
  Generator gen(10);
  Tensor x = Tensor::rand({5, 784}, gen);
  Generator copy = vae.generator();  // the same (seed, offset)
  Tensor eps = Tensor::randn({10, 8}, copy);
  VAEOutput drawn = vae.forward(x);
  VAEOutput given = vae.forward(x, eps);
  EXPECT_EQ(values(drawn.z), values(given.z));
  EXPECT_EQ(values(drawn.params), values(given.params));
  EXPECT_EQ(vae.generator().offset(), copy.offset());
  // The next forward draws new noise.
  EXPECT_NE(values(vae.forward(x).z), values(drawn.z));
}

TEST(VAE, EvaluationModeSamplesWithoutTouchingTheTrainingStream) {
  VAE vae(small_config());
  Generator gen(11);
  Tensor x = Tensor::rand({4, 784}, gen);
  const std::uint64_t offset = vae.generator().offset();
  vae.eval();
  VAEOutput a = vae.forward(x), b = vae.forward(x);
  EXPECT_EQ(vae.generator().offset(), offset);
  EXPECT_NE(values(a.z), values(b.z));    // still sampling
  EXPECT_EQ(values(a.mu), values(b.mu));  // around the same posterior
  EXPECT_EQ(values(vae.encode(x)), values(a.mu));
  vae.train();
  vae.forward(x);
  EXPECT_GT(vae.generator().offset(), offset);
}

TEST(VAE, SeededRunsRepeatExactly) {
  REQUIRE_FASHION_MNIST();
  const Tensor x = train_set().images.rows(0, 300);
  VAEConfig c = small_config();
  c.seed = 21;
  VAE a(c), b(c);
  const auto la = train(a, x, 1);
  const auto lb = train(b, x, 1);
  EXPECT_EQ(la, lb);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_EQ(values(pa[i].second), values(pb[i].second)) << pa[i].first;
  c.seed = 22;
  VAE other(c);
  EXPECT_NE(train(other, x, 1), la);
}

// ---- training ----------------------------------------------------------------------------------

TEST(VAE, LossFallsOnFashionMnist) {
  REQUIRE_FASHION_MNIST();
  VAE vae({.input = 784, .hidden = {128}, .latent = 8, .seed = 1});
  const Tensor test = test_set().images;
  auto held_out = [&] {
    vae.eval();
    NoGradGuard no_grad;
    const double v = vae.compute_loss(test).total.item();
    vae.train();
    return v;
  };
  const double before = held_out();
  const auto losses = train(vae, train_set().images, 4);
  const double after = held_out();
  EXPECT_LT(after, 0.75 * before) << "held-out -ELBO " << before << " -> " << after;
  EXPECT_LT(losses.back(), 0.75 * losses.front());
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
}

TEST(VAE, BetaVAEWithWarmupAndFreeBitsTrains) {
  REQUIRE_FASHION_MNIST();
  BetaVAE vae({.input = 784,
               .hidden = {64},
               .latent = 8,
               .beta = 4.0,
               .warmup = {.kind = KlAnneal::linear, .steps = 20},
               .free_bits = 0.1,
               .seed = 2});
  const auto losses = train(vae, train_set().images, 3);
  EXPECT_EQ(vae.step(), 30);  // the step the next training loss would use
  EXPECT_EQ(vae.kl_weight(), 4.0);
  EXPECT_LT(losses.back(), losses.front());
  // Free bits: the KL term is at least beta * Z * free_bits.
  vae.eval();
  EXPECT_GE(vae.compute_loss(test_set().images).term("kl").item(), 4.0 * 8 * 0.1 - 1e-4);
}

// ---- errors ------------------------------------------------------------------------------------

TEST(VAE, ConfigErrorsNameTheField) {
  auto msg = [](VAEConfig c) { return error_of([&] { VAE v(c); }); };
  VAEConfig c = small_config();
  c.beta = -1;
  EXPECT_NE(msg(c).find("[vae] beta"), std::string::npos) << msg(c);
  c = small_config();
  c.samples = 0;
  EXPECT_NE(msg(c).find("[vae] samples must be at least 1, got 0"), std::string::npos) << msg(c);
  c = small_config();
  c.latent = 0;
  EXPECT_NE(msg(c).find("[vae] latent"), std::string::npos) << msg(c);
  c = small_config();
  c.input = 0;
  EXPECT_NE(msg(c).find("[vae] input"), std::string::npos) << msg(c);
  c = small_config();
  c.hidden = {64, 0};
  EXPECT_NE(msg(c).find("[vae] hidden[1]"), std::string::npos) << msg(c);
  c = small_config();
  c.free_bits = -0.5;
  EXPECT_NE(msg(c).find("[vae] free_bits"), std::string::npos) << msg(c);
  c = small_config();
  c.warmup = {.kind = KlAnneal::linear, .steps = 0};
  EXPECT_NE(msg(c).find("[vae] warmup.steps"), std::string::npos) << msg(c);
  c = small_config();
  c.warmup = {.kind = KlAnneal::cyclical, .steps = 10, .ratio = 0};
  EXPECT_NE(msg(c).find("[vae] warmup.ratio"), std::string::npos) << msg(c);
  c = small_config();
  c.likelihood = LikelihoodConfig{.kind = Likelihood::gaussian, .sigma = 0};
  EXPECT_NE(msg(c).find("[vae] likelihood"), std::string::npos) << msg(c);
}

TEST(VAE, InputErrorsNameTheModelAndShapes) {
  VAE vae(small_config());
  Generator gen(12);
  Tensor wrong = Tensor::rand({4, 783}, gen);
  Tensor x = Tensor::rand({4, 784}, gen);
  const std::string m = error_of([&] { vae.forward(wrong); });
  EXPECT_NE(m.find("[vae]"), std::string::npos) << m;
  EXPECT_NE(m.find("784"), std::string::npos) << m;
  EXPECT_NE(m.find("(4, 783)"), std::string::npos) << m;
  EXPECT_NE(error_of([&] { vae.encode(wrong); }).find("[vae]"), std::string::npos);
  EXPECT_NE(error_of([&] { vae.compute_loss(wrong); }).find("[vae]"), std::string::npos);
  EXPECT_NE(error_of([&] {
              vae.decode_params(Tensor::rand({4, 7}, gen));
            }).find("[vae] decode"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              vae.forward(x, Tensor::randn({6, 8}, gen));
            }).find("[vae] forward: eps"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              vae.forward(x, Tensor::randn({4, 7}, gen));
            }).find("[vae] forward: eps"),
            std::string::npos);
  // An output that belongs to another batch.
  VAEOutput out = vae.forward(x);
  EXPECT_NE(error_of([&] {
              vae.loss(out, Tensor::rand({3, 784}, gen));
            }).find("[vae] loss"),
            std::string::npos);
}

}  // namespace
}  // namespace latent::models
