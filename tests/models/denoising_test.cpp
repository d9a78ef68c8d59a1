// The noise ops (Gaussian, masking, salt-and-pepper, Bernoulli and categorical draws) and the
// denoising autoencoder: corruption only in training mode, injectable corrupted inputs, the loss
// against the clean input, a falling loss on Fashion-MNIST, a DAE that restores masked test
// images better than a plain AE of the same size, seeded repeatability, and config errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "models/autoencoder.h"
#include "models/denoising.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using testing::error_of;
using testing::have_fashion_mnist;
using testing::images;
using testing::train;

double mse_of(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += (va[i] - vb[i]) * (va[i] - vb[i]);
  return s / static_cast<double>(va.size());
}

double fraction_equal(const std::vector<float>& v, float value) {
  double c = 0;
  for (float a : v) c += a == value;
  return c / static_cast<double>(v.size());
}

// ---- noise ops ---------------------------------------------------------------------------------

TEST(NoiseOps, GaussianNoiseIsXPlusSigmaTimesTheGeneratorsNormals) {
  Generator g1(9), g2(9);
  Tensor x = Tensor::rand({7, 13}, g1);  // advances g1; keep g2 in step
  Tensor::rand({7, 13}, g2);
  Tensor y = gaussian_noise(x, 0.3, g1);
  Tensor want = x + Tensor::randn({7, 13}, g2, {}, 0.0, 0.3);
  // The same normals (the kernel may fuse the multiply-add, so equal up to one rounding).
  const std::vector<float> yv = y.to_vector<float>(), wv = want.to_vector<float>();
  for (std::size_t i = 0; i < yv.size(); ++i) EXPECT_NEAR(yv[i], wv[i], 1e-6) << i;
  EXPECT_EQ(g1.offset(), g2.offset());
  // Statistics of the noise on a large tensor.
  Generator g(4);
  const std::vector<double> e =
      (gaussian_noise(Tensor::zeros({400, 250}, {.dtype = DType::f64}), 2.0, g))
          .to_vector<double>();
  double m = 0, s = 0;
  for (double v : e) m += v / e.size();
  for (double v : e) s += (v - m) * (v - m) / e.size();
  EXPECT_NEAR(m, 0.0, 0.03);
  EXPECT_NEAR(std::sqrt(s), 2.0, 0.02);
  // sigma 0 is the identity (but still advances the stream, so later draws do not depend on it).
  Generator g0(1);
  EXPECT_EQ(gaussian_noise(x, 0.0, g0).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(g0.offset(), 23u);  // 91 numbers: ceil(91 / 4) Philox blocks
}

TEST(NoiseOps, GaussianNoiseGradientIsTheIdentity) {
  Generator g(2);
  Tensor x = Tensor::rand({3, 5}, g, {.dtype = DType::f64});
  x.requires_grad_();
  Tensor w = Tensor::randn({3, 5}, g, {.dtype = DType::f64});
  sum(gaussian_noise(x, 0.7, g) * w).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), w.to_vector<double>());
}

TEST(NoiseOps, MaskingZeroesAFractionPAndPassesGradientsOfKeptEntries) {
  Generator g(5);
  Tensor x = Tensor::ones({200, 500});
  const std::vector<float> y = masking_noise(x, 0.3, g).to_vector<float>();
  EXPECT_NEAR(fraction_equal(y, 0.0f), 0.3, 0.005);
  EXPECT_NEAR(fraction_equal(y, 1.0f), 0.7, 0.005);
  // p = 0 keeps everything, p = 1 zeroes everything.
  EXPECT_EQ(masking_noise(x, 0.0, g).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(fraction_equal(masking_noise(x, 1.0, g).to_vector<float>(), 0.0f), 1.0);

  // Gradient: dy where kept (regenerated from the counters), 0 where masked.
  Generator ga(8), gb(8);
  Tensor xs = Tensor::rand({6, 9}, ga, {.dtype = DType::f64}, 0.5, 1.5);  // no zeros of its own
  Tensor::rand({6, 9}, gb, {.dtype = DType::f64});
  xs.requires_grad_();
  Tensor dy = Tensor::randn({6, 9}, ga, {.dtype = DType::f64});
  Tensor::randn({6, 9}, gb, {.dtype = DType::f64});
  Tensor ys = masking_noise(xs, 0.5, ga);
  ys.backward(dy);
  const std::vector<double> yv = ys.to_vector<double>(), xv = xs.to_vector<double>(),
                            gv = xs.grad().to_vector<double>(), dv = dy.to_vector<double>();
  int kept = 0;
  for (std::size_t i = 0; i < yv.size(); ++i) {
    if (yv[i] == 0.0) {
      EXPECT_EQ(gv[i], 0.0) << i;
    } else {
      ++kept;
      EXPECT_EQ(yv[i], xv[i]) << i;
      EXPECT_EQ(gv[i], dv[i]) << i;
    }
  }
  EXPECT_GT(kept, 10);
  EXPECT_LT(kept, 44);
  // Same seed, same mask.
  EXPECT_EQ(masking_noise(xs.detach(), 0.5, gb).to_vector<double>(), yv);
}

TEST(NoiseOps, SaltAndPepperSetsHalfToZeroHalfToOne) {
  Generator g(6);
  Tensor x = Tensor::full({300, 400}, 0.5);
  const std::vector<float> y = salt_and_pepper(x, 0.4, g).to_vector<float>();
  EXPECT_NEAR(fraction_equal(y, 0.0f), 0.2, 0.005);
  EXPECT_NEAR(fraction_equal(y, 1.0f), 0.2, 0.005);
  EXPECT_NEAR(fraction_equal(y, 0.5f), 0.6, 0.005);
  EXPECT_EQ(salt_and_pepper(x, 0.0, g).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(fraction_equal(salt_and_pepper(x, 1.0, g).to_vector<float>(), 0.5f), 0.0);

  Tensor xs = Tensor::full({4, 50}, 0.5, {.dtype = DType::f64, .requires_grad = true});
  Tensor ys = salt_and_pepper(xs, 0.5, g);
  sum(ys).backward();
  const std::vector<double> yv = ys.to_vector<double>(), gv = xs.grad().to_vector<double>();
  for (std::size_t i = 0; i < yv.size(); ++i) EXPECT_EQ(gv[i], yv[i] == 0.5 ? 1.0 : 0.0) << i;
}

TEST(NoiseOps, BernoulliAndCategoricalDraws) {
  Generator g(12);
  std::vector<float> p(3 * 20000);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = i % 3 == 0 ? 0.0f : i % 3 == 1 ? 1.0f : 0.3f;
  const std::vector<float> b =
      bernoulli(Tensor::from_data(std::span<const float>(p), {20000, 3}), g).to_vector<float>();
  double c[3] = {0, 0, 0};
  for (std::size_t i = 0; i < b.size(); ++i) {
    ASSERT_TRUE(b[i] == 0.0f || b[i] == 1.0f);
    c[i % 3] += b[i];
  }
  EXPECT_EQ(c[0], 0.0);
  EXPECT_EQ(c[1], 20000.0);
  EXPECT_NEAR(c[2] / 20000, 0.3, 0.012);

  // Unnormalized rows (weights 1 : 2 : 0 : 1) -> frequencies 1/4, 1/2, 0, 1/4.
  std::vector<double> w;
  for (int i = 0; i < 20000; ++i) w.insert(w.end(), {1.0, 2.0, 0.0, 1.0});
  const std::vector<double> k =
      categorical(Tensor::from_data(std::span<const double>(w), {20000, 4}, {.dtype = DType::f64}),
                  g)
          .to_vector<double>();
  ASSERT_EQ(k.size(), 20000u);
  double f[4] = {0, 0, 0, 0};
  for (double v : k) f[static_cast<int>(v)] += 1.0 / 20000;
  EXPECT_NEAR(f[0], 0.25, 0.01);
  EXPECT_NEAR(f[1], 0.5, 0.012);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[3], 0.25, 0.01);
}

TEST(NoiseOps, ErrorsNameTheOpAndTheValue) {
  Generator g(0);
  Tensor x = Tensor::zeros({2, 2});
  std::string e = error_of([&] { masking_noise(x, 1.5, g); });
  EXPECT_NE(e.find("[masking_noise] p must lie in [0, 1], got 1.5"), std::string::npos) << e;
  e = error_of([&] { masking_noise(x, -0.1, g); });
  EXPECT_NE(e.find("-0.1"), std::string::npos) << e;
  e = error_of([&] { masking_noise(x, std::nan(""), g); });
  EXPECT_NE(e.find("[masking_noise]"), std::string::npos) << e;
  e = error_of([&] { salt_and_pepper(x, 2.0, g); });
  EXPECT_NE(e.find("[salt_and_pepper] p must lie in [0, 1], got 2"), std::string::npos) << e;
  e = error_of([&] { gaussian_noise(x, -1.0, g); });
  EXPECT_NE(e.find("[gaussian_noise] sigma"), std::string::npos) << e;
  EXPECT_NE(e.find("-1"), std::string::npos) << e;
  e = error_of([&] { bernoulli(Tensor::full({2}, 1.5), g); });
  EXPECT_NE(e.find("[bernoulli]"), std::string::npos) << e;
  EXPECT_NE(e.find("1.5"), std::string::npos) << e;
  e = error_of([&] { categorical(Tensor::zeros({2, 3}), g); });
  EXPECT_NE(e.find("[categorical] row 0"), std::string::npos) << e;
  e = error_of([&] { categorical(Tensor::full({2, 3}, -1.0), g); });
  EXPECT_NE(e.find("-1"), std::string::npos) << e;
  e = error_of([&] { categorical(Tensor::zeros({6}), g); });
  EXPECT_NE(e.find("[categorical]"), std::string::npos) << e;
  e = error_of([&] { masking_noise(Tensor(), 0.5, g); });
  EXPECT_NE(e.find("[masking_noise]"), std::string::npos) << e;
  EXPECT_EQ(g.offset(), 0u);  // failed calls draw nothing
}

// ---- the model ---------------------------------------------------------------------------------

DenoisingAEConfig small(Corruption kind, std::uint64_t seed = 0) {
  return {.input = 20,
          .latent = 4,
          .encoder = {.hidden = {8}},
          .decoder = {.hidden = {8}},
          .corruption = {.kind = kind, .p = 0.5, .sigma = 0.2},
          .seed = seed};
}

TEST(DenoisingAE, CorruptsOnlyInTrainingModeAndComparesWithTheCleanInput) {
  Generator g(3);
  Tensor x = Tensor::rand({6, 20}, g);
  for (Corruption kind : {Corruption::gaussian, Corruption::masking, Corruption::salt_and_pepper}) {
    DenoisingAE dae(small(kind));
    EXPECT_EQ(dae.name(), "DenoisingAE");
    // Training mode: the encoder sees a corrupted copy, drawn from the model's generator.
    const std::uint64_t before = dae.generator().offset();
    DenoisingAEOutput out = dae.forward(x);
    EXPECT_GT(dae.generator().offset(), before) << corruption_name(kind);
    EXPECT_NE(out.input.to_vector<float>(), x.to_vector<float>()) << corruption_name(kind);
    // The loss compares the reconstruction of the corrupted input with the CLEAN x.
    const Loss l = dae.loss(out, x);
    EXPECT_NEAR(l.total.item(), mean(nll(dae.likelihood(), out.params, x)).item(), 1e-6);
    EXPECT_EQ(l.term("recon").item(), l.total.item());
    // Injected corruption: exactly that input is encoded.
    DenoisingAEOutput inj = dae.forward(x, out.input);
    EXPECT_EQ(inj.params.to_vector<float>(), out.params.to_vector<float>());

    // Eval mode: no noise, no draws, deterministic.
    dae.eval();
    const std::uint64_t at_eval = dae.generator().offset();
    DenoisingAEOutput e1 = dae.forward(x), e2 = dae.forward(x);
    EXPECT_EQ(e1.input.to_vector<float>(), x.to_vector<float>());
    EXPECT_EQ(e1.params.to_vector<float>(), e2.params.to_vector<float>());
    EXPECT_EQ(dae.compute_loss(x).total.item(), dae.compute_loss(x).total.item());
    EXPECT_EQ(dae.generator().offset(), at_eval);
    EXPECT_EQ(e1.params.to_vector<float>(), dae.decode_params(dae.encode(x)).to_vector<float>());
    // corrupt() applies the noise whatever the mode.
    EXPECT_NE(dae.corrupt(x).to_vector<float>(), x.to_vector<float>());
  }
}

TEST(DenoisingAE, ConfigErrorsNameTheModelAndTheField) {
  auto err = [](DenoisingAEConfig c) { return error_of([&] { DenoisingAE m(c); }); };
  DenoisingAEConfig c = small(Corruption::masking);
  c.corruption.p = 1.2;
  std::string e = err(c);
  EXPECT_NE(e.find("[DenoisingAE] corruption.p must lie in [0, 1], got 1.2"), std::string::npos)
      << e;
  c.corruption = {.kind = Corruption::salt_and_pepper, .p = -0.5};
  e = err(c);
  EXPECT_NE(e.find("corruption.p"), std::string::npos) << e;
  EXPECT_NE(e.find("salt_and_pepper"), std::string::npos) << e;
  c.corruption = {.kind = Corruption::gaussian, .sigma = -0.1};
  e = err(c);
  EXPECT_NE(e.find("[DenoisingAE] corruption.sigma must be finite and >= 0, got -0.1"),
            std::string::npos)
      << e;
  c = small(Corruption::masking);
  c.latent = 21;
  e = err(c);
  EXPECT_NE(e.find("[DenoisingAE] latent (21) exceeds input (20)"), std::string::npos) << e;
  c.undercomplete = false;
  EXPECT_NO_THROW(DenoisingAE{c});
  c = small(Corruption::masking);
  c.likelihood.levels = 1;
  c.likelihood.kind = Likelihood::categorical;
  EXPECT_NE(err(c).find("[DenoisingAE] likelihood"), std::string::npos);

  DenoisingAE dae(small(Corruption::masking));
  e = error_of([&] { dae.forward(Tensor::zeros({2, 20}), Tensor::zeros({3, 20})); });
  EXPECT_NE(e.find("(3, 20)"), std::string::npos) << e;
  e = error_of([&] { dae.forward(Tensor::zeros({2, 7})); });
  EXPECT_NE(e.find("[DenoisingAE]"), std::string::npos) << e;
  EXPECT_NE(e.find("[N, 20]"), std::string::npos) << e;
}

TEST(DenoisingAE, LossFallsAndBeatsAPlainAEOnMaskedInputs) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor train_x = images(Split::train, 1000);
  const Tensor test_x = images(Split::test, 500);
  constexpr int kSteps = 300;
  const MLPSpec net{.hidden = {64}};
  DenoisingAE dae({.input = 784,
                   .latent = 32,
                   .encoder = net,
                   .decoder = net,
                   .corruption = {.kind = Corruption::masking, .p = 0.5},
                   .seed = 1});
  AE ae({.input = 784,
         .latent = 32,
         .encoder = net,
         .decoder = net,
         .likelihood = {.kind = Likelihood::bernoulli},
         .seed = 1});
  const std::vector<double> losses = train(dae, train_x, kSteps, 100, 3e-3);
  train(ae, train_x, kSteps, 100, 3e-3);
  EXPECT_LT(std::accumulate(losses.end() - 20, losses.end(), 0.0),
            0.75 * std::accumulate(losses.begin(), losses.begin() + 20, 0.0));

  // Half of every test image masked out; both models restore it, compared with the clean image.
  Generator noise(99);
  const Tensor masked = masking_noise(test_x, 0.5, noise);
  dae.eval();
  ae.eval();
  NoGradGuard ng;
  const double dae_mse = mse_of(dae.reconstruct(masked), test_x);
  const double ae_mse = mse_of(ae.reconstruct(masked), test_x);
  const double masked_mse = mse_of(masked, test_x);
  std::cout << "MSE to the clean test images: masked input " << masked_mse << ", AE " << ae_mse
            << ", DAE " << dae_mse << "\n";
  EXPECT_LT(dae_mse, 0.8 * ae_mse);
  EXPECT_LT(dae_mse, 0.5 * masked_mse);
  // In eval mode the DAE's loss on clean test data is deterministic and finite.
  EXPECT_TRUE(std::isfinite(dae.compute_loss(test_x).total.item()));
}

TEST(DenoisingAE, SeededRunsRepeatExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor x = images(Split::train, 256);
  for (Corruption kind : {Corruption::gaussian, Corruption::masking, Corruption::salt_and_pepper}) {
    const DenoisingAEConfig c{.input = 784,
                              .latent = 8,
                              .encoder = {.hidden = {32}},
                              .decoder = {.hidden = {32}},
                              .corruption = {.kind = kind, .p = 0.3, .sigma = 0.3},
                              .seed = 5};
    DenoisingAE a(c), b(c);
    const std::vector<double> la = train(a, x, 12, 64, 1e-3);
    EXPECT_EQ(la, train(b, x, 12, 64, 1e-3)) << corruption_name(kind);  // noise included
    DenoisingAEConfig c2 = c;
    c2.seed = 6;
    DenoisingAE other(c2);
    EXPECT_NE(train(other, x, 12, 64, 1e-3), la) << corruption_name(kind);
  }
}

// The corruption kernels move the generator's offset themselves: by as much as a draw of their
// size, and the next draw starts there.
TEST(NoiseOps, CorruptionMovesTheGeneratorLikeADraw) {
  Generator data_gen(1);
  const Tensor x = Tensor::rand({7, 9}, data_gen);
  for (int kind = 0; kind < 3; ++kind) {
    Generator a(5), b(5);
    a.take(3);
    b.take(3);
    if (kind == 0) (void)masking_noise(x, 0.3, a);
    if (kind == 1) (void)salt_and_pepper(x, 0.2, a);
    if (kind == 2) (void)gaussian_noise(x, 0.5, a);
    b.take(63);
    EXPECT_EQ(a.offset(), b.offset()) << kind;
  }
}

}  // namespace
}  // namespace latent::models
