// Generation: prior samples, interpolation and traversal shapes and values, for the VAE and for
// any Autoencoder; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/latent.h"
#include "models/generate.h"
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

void expect_rows_near(const Tensor& a, std::int64_t row, const Tensor& b, double tol) {
  const auto av = a.rows(row, 1).to_vector<float>();
  const auto bv = b.to_vector<float>();
  ASSERT_EQ(av.size(), bv.size());
  for (std::size_t i = 0; i < av.size(); ++i) ASSERT_NEAR(av[i], bv[i], tol) << "row " << row;
}

// The smallest autoencoder there is: a linear encoder and a linear decoder with a Gaussian
// likelihood, to show that interpolate and traverse need nothing but the Autoencoder interface.
class TinyAE : public Autoencoder {
 public:
  TinyAE() : Autoencoder(1) {
    enc_ = register_module("enc", std::make_shared<nn::Linear>(6, 2, nn::LinearOptions{}, gen_));
    dec_ = register_module("dec", std::make_shared<nn::Linear>(2, 6, nn::LinearOptions{}, gen_));
  }
  std::string name() const override { return "tiny"; }
  std::int64_t input_dim() const override { return 6; }
  std::int64_t latent_dim() const override { return 2; }
  const LikelihoodConfig& likelihood() const override { return lik_; }
  Tensor encode(const Tensor& x) override { return enc_->forward(x); }
  Tensor decode_params(const Tensor& z) override { return dec_->forward(z); }
  Loss compute_loss(const Tensor& x) override {
    Tensor t = mse(decode(encode(x)), x);
    return {t, {{"recon", t}}};
  }

 private:
  LikelihoodConfig lik_{.kind = Likelihood::gaussian};
  std::shared_ptr<nn::Linear> enc_, dec_;
};

TEST(Generate, SampleShapesAndValues) {
  VAE vae({.input = 784, .hidden = {32}, .latent = 4, .seed = 1});
  const Tensor means = sample(vae, 10);
  EXPECT_EQ(means.shape(), Shape({10, 784}));
  EXPECT_FALSE(means.requires_grad());
  for (float v : means.to_vector<float>()) ASSERT_TRUE(v > 0 && v < 1);  // Bernoulli means
  const Tensor draws = sample(vae, 3, {.draw = true});
  EXPECT_EQ(draws.shape(), Shape({3, 784}));
  for (float v : draws.to_vector<float>()) ASSERT_TRUE(v == 0 || v == 1);
  // A given generator makes it repeatable; the model's mode is left as it was.
  Generator g1(5), g2(5);
  EXPECT_EQ(sample(vae, 4, {.generator = &g1}).to_vector<float>(),
            sample(vae, 4, {.generator = &g2}).to_vector<float>());
  EXPECT_TRUE(vae.is_training());
  // The member is the same function.
  EXPECT_EQ(vae.sample(2).shape(), Shape({2, 784}));
  // z comes from N(0, I): with the generator's draws, the rows are decode(z).
  Generator g3(6), g4(6);
  const Tensor z = Tensor::randn({4, 4}, g3);
  NoGradGuard no_grad;
  const Tensor want = vae.decode(z);
  const Tensor got = sample(vae, 4, {.generator = &g4});
  for (std::int64_t r = 0; r < 4; ++r) expect_rows_near(got, r, want.rows(r, 1), 1e-6);
}

TEST(Generate, InterpolationEndsAtBothReconstructions) {
  REQUIRE_FASHION_MNIST();
  const Tensor x = data::fashion_mnist(Split::test, {.limit = 2}).images;
  VAE vae({.input = 784, .hidden = {32}, .latent = 4, .seed = 2});
  const Tensor a = x.rows(0, 1), b = x.rows(1, 1).reshape({784});  // [1, D] and [D] both work
  const Tensor path = interpolate(vae, a, b, 7);
  EXPECT_EQ(path.shape(), Shape({7, 784}));
  NoGradGuard no_grad;
  vae.eval();
  expect_rows_near(path, 0, vae.reconstruct(a), 1e-6);
  expect_rows_near(path, 6, vae.reconstruct(b.reshape({1, 784})), 1e-6);
  // The middle is the decoded mean of the two codes.
  const Tensor mid = vae.decode(mul(add(vae.encode(a), vae.encode(b.reshape({1, 784}))), 0.5));
  expect_rows_near(path, 3, mid, 1e-5);
  EXPECT_NE(path.rows(0, 1).to_vector<float>(), path.rows(6, 1).to_vector<float>());
  EXPECT_EQ(interpolate(vae, a, b, 2).shape(), Shape({2, 784}));
}

TEST(Generate, AnyAutoencoderInterpolatesAndTraverses) {
  TinyAE ae;
  Generator gen(3);
  const Tensor a = Tensor::rand({6}, gen), b = Tensor::rand({6}, gen);
  const Tensor path = interpolate(ae, a, b, 5);
  EXPECT_EQ(path.shape(), Shape({5, 6}));
  NoGradGuard no_grad;
  expect_rows_near(path, 0, ae.reconstruct(a.reshape({1, 6})), 1e-6);
  expect_rows_near(path, 4, ae.reconstruct(b.reshape({1, 6})), 1e-6);
  // Linear decoder: the path is a straight line, equally spaced.
  const auto p = path.to_vector<float>();
  for (int j = 0; j < 6; ++j) EXPECT_NEAR(p[2 * 6 + j], 0.5 * (p[j] + p[4 * 6 + j]), 1e-5);
  EXPECT_EQ(traverse(ae, a, 1, {-1.0, 0.0, 1.0}).shape(), Shape({3, 6}));
}

TEST(Generate, TraversalSweepsOneDimension) {
  VAE vae({.input = 50, .hidden = {16}, .latent = 3, .seed = 4});
  Generator gen(4);
  const Tensor x = Tensor::rand({1, 50}, gen);
  const std::vector<double> values = linspace(-2, 2, 5);
  ASSERT_EQ(values.size(), 5u);
  EXPECT_EQ(values.front(), -2.0);
  EXPECT_EQ(values[2], 0.0);
  EXPECT_EQ(values.back(), 2.0);
  const Tensor t = traverse(vae, x, 2, values);
  EXPECT_EQ(t.shape(), Shape({5, 50}));
  NoGradGuard no_grad;
  const auto code = vae.encode(x).to_vector<float>();
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::vector<float> z = code;
    z[2] = static_cast<float>(values[i]);
    expect_rows_near(t, static_cast<std::int64_t>(i),
                     vae.decode(Tensor::from_data(std::span<const float>(z), {1, 3})), 1e-6);
  }
  // Holding the dimension at its own value gives the reconstruction.
  const Tensor same = traverse(vae, x, 0, {static_cast<double>(code[0])});
  expect_rows_near(same, 0, vae.reconstruct(x), 1e-6);
}

TEST(Generate, Errors) {
  VAE vae({.input = 10, .hidden = {4}, .latent = 2});
  Generator gen(5);
  const Tensor a = Tensor::rand({10}, gen);
  auto has = [](const std::string& m, const std::string& part) {
    return m.find(part) != std::string::npos;
  };
  std::string m = error_of([&] { sample(vae, 0); });
  EXPECT_TRUE(has(m, "[generate] sample: n must be at least 1, got 0")) << m;
  m = error_of([&] { interpolate(vae, a, a, 1); });
  EXPECT_TRUE(has(m, "[generate] interpolate: steps must be at least 2")) << m;
  m = error_of([&] { interpolate(vae, Tensor::rand({2, 10}, gen), a, 3); });
  EXPECT_TRUE(has(m, "one input")) << m;
  EXPECT_TRUE(has(m, "(2, 10)")) << m;
  m = error_of([&] { interpolate(vae, a, Tensor::rand({11}, gen), 3); });
  EXPECT_TRUE(has(m, "b must be one input")) << m;
  m = error_of([&] { traverse(vae, a, 2, {0.0}); });
  EXPECT_TRUE(has(m, "[generate] traverse: dim must be in [0, 2)")) << m;
  m = error_of([&] { traverse(vae, a, -1, {0.0}); });
  EXPECT_TRUE(has(m, "dim must be in")) << m;
  m = error_of([&] { traverse(vae, a, 0, {}); });
  EXPECT_TRUE(has(m, "no values")) << m;
  m = error_of([&] { linspace(0, 1, 1); });
  EXPECT_TRUE(has(m, "count must be at least 2")) << m;
}

}  // namespace
}  // namespace latent::models
