// The plain autoencoder on Fashion-MNIST subsets: the loss falls, the linear AE reaches PCA's
// test reconstruction error (PCA by a Jacobi eigen-solver written here), seeded runs repeat
// exactly, and every config error names the model and the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "models/autoencoder.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

using testing::error_of;
using testing::have_fashion_mnist;
using testing::images;
using testing::train;

// Mean squared error per element between two [N, D] tensors, in double.
double mse_of(const Tensor& a, const Tensor& b) {
  const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += (va[i] - vb[i]) * (va[i] - vb[i]);
  return s / static_cast<double>(va.size());
}

// ---- PCA support: a cyclic Jacobi eigen-solver for symmetric matrices ---------------------------

// A row-major n x n matrix of doubles.
struct Matrix {
  int n = 0;
  std::vector<double> v;
  explicit Matrix(int size) : n(size), v(size * size, 0.0) {}
  double& operator()(int r, int c) { return v[r * n + c]; }
};

// Eigen-decomposition of a symmetric matrix: eigenvalues in descending order and the matching
// eigenvectors as the columns of `vectors`. Each rotation zeroes one off-diagonal pair (Jacobi,
// 1846); sweeps repeat until the off-diagonal mass is negligible. Quadratically convergent and
// accurate to rounding in double, which is all PCA needs.
void jacobi_eigen(Matrix a, std::vector<double>& values, Matrix& vectors) {
  const int n = a.n;
  Matrix v(n);
  for (int i = 0; i < n; ++i) v(i, i) = 1.0;
  double total = 0;
  for (double x : a.v) total += x * x;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += a(p, q) * a(p, q);
    if (off <= 1e-26 * total) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = a(p, q);
        if (std::fabs(apq) < 1e-300) continue;
        // The rotation angle that makes the new (p, q) entry zero; the smaller root of
        // t^2 + 2 theta t - 1 = 0 keeps the rotation below 45 degrees (stable).
        const double theta = (a(q, q) - a(p, p)) / (2.0 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1.0 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; ++k) {  // A J (columns p, q)
          const double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // J^T A (rows p, q)
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {  // V J
          const double vkp = v(k, p), vkq = v(k, q);
          v(k, p) = c * vkp - s * vkq;
          v(k, q) = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int i, int j) { return a(i, i) > a(j, j); });
  values.assign(n, 0.0);
  vectors = Matrix(n);
  for (int k = 0; k < n; ++k) {
    const int src = order[k];
    values[k] = a(src, src);
    for (int r = 0; r < n; ++r) vectors(r, k) = v(r, src);
  }
}

// 28 x 28 images -> 14 x 14 by averaging 2 x 2 blocks: [N, 784] -> [N, 196], so that the
// eigen-solve stays small.
Tensor downsample(const Tensor& x) {
  const std::int64_t n = x.dim(0);
  const std::vector<float> v = x.to_vector<float>();
  std::vector<float> out(n * 196);
  for (std::int64_t i = 0; i < n; ++i)
    for (int r = 0; r < 14; ++r)
      for (int c = 0; c < 14; ++c) {
        const auto px = [&](int dr, int dc) { return v[i * 784 + (2 * r + dr) * 28 + 2 * c + dc]; };
        out[i * 196 + r * 14 + c] = 0.25f * (px(0, 0) + px(0, 1) + px(1, 0) + px(1, 1));
      }
  return Tensor::from_data(std::span<const float>(out), {n, 196});
}

// PCA fitted on `train` (the centred covariance's top z eigenvectors); the mean squared error
// per element of reconstructing `test` from its projection on them.
double pca_test_mse(const Tensor& train, const Tensor& test, int z) {
  const int d = static_cast<int>(train.dim(1));
  const int n = static_cast<int>(train.dim(0));
  const std::vector<double> xv = train.to_vector<double>();
  std::vector<double> mu(d, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < d; ++j) mu[j] += xv[i * d + j] / n;
  Matrix cov(d);
  std::vector<double> row(d);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) row[j] = xv[i * d + j] - mu[j];
    for (int j = 0; j < d; ++j)
      for (int k = j; k < d; ++k) cov(j, k) += row[j] * row[k] / n;
  }
  for (int j = 0; j < d; ++j)
    for (int k = 0; k < j; ++k) cov(j, k) = cov(k, j);
  std::vector<double> values;
  Matrix u(d);
  jacobi_eigen(cov, values, u);

  const std::vector<double> tv = test.to_vector<double>();
  const int m = static_cast<int>(test.dim(0));
  double err = 0;
  std::vector<double> proj(z);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < d; ++j) row[j] = tv[i * d + j] - mu[j];
    for (int k = 0; k < z; ++k) {
      double s = 0;
      for (int j = 0; j < d; ++j) s += u(j, k) * row[j];
      proj[k] = s;
    }
    for (int j = 0; j < d; ++j) {
      double r = 0;
      for (int k = 0; k < z; ++k) r += u(j, k) * proj[k];
      err += (row[j] - r) * (row[j] - r);
    }
  }
  return err / (double(m) * d);
}

TEST(PcaSupport, JacobiSolvesASymmetricMatrix) {
  // A random symmetric 6 x 6 matrix: A v_k = lambda_k v_k, orthonormal vectors, descending
  // eigenvalues summing to the trace.
  const int n = 6;
  Generator gen(3);
  const std::vector<double> r =
      Tensor::randn({n, n}, gen, {.dtype = DType::f64}).to_vector<double>();
  Matrix a(n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) a(i, j) = r[i * n + j] + r[j * n + i];
  std::vector<double> values;
  Matrix u(n);
  jacobi_eigen(a, values, u);
  double trace = 0, sum = 0;
  for (int k = 0; k < n; ++k) {
    trace += a(k, k);
    sum += values[k];
    if (k > 0) {
      EXPECT_GE(values[k - 1], values[k]);
    }
    for (int i = 0; i < n; ++i) {
      double av = 0, dot = 0;
      for (int j = 0; j < n; ++j) {
        av += a(i, j) * u(j, k);
        dot += u(j, i) * u(j, k);
      }
      EXPECT_NEAR(av, values[k] * u(i, k), 1e-12);
      EXPECT_NEAR(dot, i == k ? 1.0 : 0.0, 1e-12);
    }
  }
  EXPECT_NEAR(trace, sum, 1e-12);
}

// ---- the model -------------------------------------------------------------------------------

TEST(AE, ShapesNamesAndSubmodules) {
  AE ae({.input = 20,
         .latent = 4,
         .encoder = {.hidden = {8}},
         .decoder = {.hidden = {8}},
         .likelihood = {.kind = Likelihood::gaussian_learned}});
  EXPECT_EQ(ae.name(), "AE");
  EXPECT_EQ(ae.input_dim(), 20);
  EXPECT_EQ(ae.latent_dim(), 4);
  EXPECT_FALSE(ae.is_linear());
  Generator gen(1);
  Tensor x = Tensor::rand({5, 20}, gen);
  AEOutput out = ae.forward(x);
  EXPECT_EQ(out.code.shape(), Shape({5, 4}));
  EXPECT_EQ(out.params.shape(), Shape({5, 40}));  // means | log-variances
  EXPECT_EQ(ae.reconstruct(x).shape(), Shape({5, 20}));
  EXPECT_EQ(ae.encode(x).to_vector<float>(), out.code.to_vector<float>());
  EXPECT_NO_THROW(ae.parameter("encoder.layers.0.weight"));
  EXPECT_NO_THROW(ae.parameter("decoder.layers.1.bias"));
  EXPECT_EQ(ae.parameter("decoder.layers.1.weight").shape(), Shape({40, 8}));
  Loss l = ae.loss(out, x);
  ASSERT_EQ(l.terms.size(), 1u);
  EXPECT_EQ(l.terms[0].first, "recon");
  // The reconstruction term is the likelihood's NLL averaged over the batch (another kernel path:
  // within float rounding, 1e-6 relative).
  const double ref = mean(nll(ae.likelihood(), out.params, x)).item();
  EXPECT_NEAR(l.total.item(), ref, 1e-6 * std::fabs(ref));

  AE lin(AEConfig::linear(20, 4));
  EXPECT_TRUE(lin.is_linear());
  EXPECT_EQ(lin.encoder().num_layers(), 1u);
  EXPECT_EQ(lin.decoder().num_layers(), 1u);
  EXPECT_EQ(lin.likelihood().kind, Likelihood::gaussian);
  AE lin_hidden({.input = 20,
                 .latent = 4,
                 .encoder = {.hidden = {8}, .activation = Act::identity},
                 .decoder = {.hidden = {8}, .activation = Act::identity}});
  EXPECT_TRUE(lin_hidden.is_linear());
}

TEST(AE, ConfigErrorsNameTheModelAndTheField) {
  auto err = [](const AEConfig& c) { return error_of([&] { AE ae(c); }); };
  std::string e = err({.input = 784, .latent = 800});
  EXPECT_NE(e.find("[AE]"), std::string::npos) << e;
  EXPECT_NE(e.find("latent (800) exceeds input (784)"), std::string::npos) << e;
  EXPECT_NE(e.find("undercomplete"), std::string::npos) << e;
  EXPECT_NO_THROW(AE({.input = 10,
                      .latent = 12,
                      .encoder = {.hidden = {}},
                      .decoder = {.hidden = {}},
                      .undercomplete = false}));
  e = err({.input = 0});
  EXPECT_NE(e.find("input must be positive, got 0"), std::string::npos) << e;
  e = err({.latent = -3});
  EXPECT_NE(e.find("latent must be positive, got -3"), std::string::npos) << e;
  e = err({.encoder = {.hidden = {64, 0}}});
  EXPECT_NE(e.find("encoder.hidden"), std::string::npos) << e;
  e = err({.decoder = {.hidden = {-1}}});
  EXPECT_NE(e.find("decoder.hidden"), std::string::npos) << e;
  e = err({.likelihood = {.kind = Likelihood::gaussian, .sigma = 0.0}});
  EXPECT_NE(e.find("[AE] likelihood"), std::string::npos) << e;
  EXPECT_NE(e.find("sigma"), std::string::npos) << e;
  e = err({.likelihood = {.kind = Likelihood::categorical, .levels = 1}});
  EXPECT_NE(e.find("levels"), std::string::npos) << e;

  AE ae({.input = 20, .latent = 4, .encoder = {.hidden = {8}}, .decoder = {.hidden = {8}}});
  e = error_of([&] { ae.forward(Tensor::zeros({3, 21})); });
  EXPECT_NE(e.find("[AE]"), std::string::npos) << e;
  EXPECT_NE(e.find("[N, 20]"), std::string::npos) << e;
  EXPECT_NE(e.find("(3, 21)"), std::string::npos) << e;
  e = error_of([&] { ae.decode_params(Tensor::zeros({3, 5})); });
  EXPECT_NE(e.find("[N, 4]"), std::string::npos) << e;
  e = error_of([&] { ae.loss(ae.forward(Tensor::zeros({3, 20})), Tensor::zeros({3, 19})); });
  EXPECT_NE(e.find("(3, 19)"), std::string::npos) << e;
}

TEST(AE, LossFallsOnFashionMnist) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor train_x = images(Split::train, 1000);
  const Tensor test_x = images(Split::test, 500);
  AE ae({.input = 784,
         .latent = 16,
         .encoder = {.hidden = {64}},
         .decoder = {.hidden = {64}},
         .likelihood = {.kind = Likelihood::bernoulli},
         .seed = 3});
  ae.eval();
  const double before = [&] {
    NoGradGuard ng;
    return ae.compute_loss(test_x).total.item();
  }();
  const std::vector<double> losses = train(ae, train_x, 300, 100, 3e-3);
  ae.eval();
  NoGradGuard ng;
  const Loss after = ae.compute_loss(test_x);
  // 784 pixels at ~0.69 nats each before training; a 16-d code gets well below.
  EXPECT_GT(before, 500.0);
  EXPECT_LT(after.total.item(), 0.6 * before);
  EXPECT_LT(std::accumulate(losses.end() - 20, losses.end(), 0.0),
            0.7 * std::accumulate(losses.begin(), losses.begin() + 20, 0.0));
  // One term, and it is the total.
  double sum = 0;
  for (const auto& [name, value] : after.values())
    if (name != "total") sum += value;
  EXPECT_EQ(sum, after.total.item());
}

TEST(AE, SeededRunsRepeatExactly) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor x = images(Split::train, 256);
  const AEConfig c{.input = 784,
                   .latent = 8,
                   .encoder = {.hidden = {32}},
                   .decoder = {.hidden = {32}},
                   .likelihood = {.kind = Likelihood::bernoulli},
                   .seed = 42};
  AE a(c), b(c);
  const std::vector<double> la = train(a, x, 20, 64, 1e-3);
  const std::vector<double> lb = train(b, x, 20, 64, 1e-3);
  EXPECT_EQ(la, lb);  // bit-identical
  AE other({.input = 784,
            .latent = 8,
            .encoder = {.hidden = {32}},
            .decoder = {.hidden = {32}},
            .likelihood = {.kind = Likelihood::bernoulli},
            .seed = 43});
  EXPECT_NE(train(other, x, 20, 64, 1e-3), la);  // the seed matters
}

TEST(AE, LinearAEReachesPcaTestError) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "no Fashion-MNIST in " << data::fashion_mnist_dir();
  const Tensor train_x = downsample(images(Split::train, 2000));
  const Tensor test_x = downsample(images(Split::test, 1000));
  constexpr int kZ = 10;
  const double pca = pca_test_mse(train_x, test_x, kZ);

  AE ae(AEConfig::linear(196, kZ, 1.0, 7));
  ASSERT_TRUE(ae.is_linear());
  // Adam on mini-batches of 100 (cycling through the subset) with a cosine-decayed learning
  // rate: the linear AE's loss is smooth but ill-conditioned, many cheap steps beat few full-batch
  // ones, and the decay removes the mini-batch jitter at the end.
  constexpr double kLr = 1e-2;
  constexpr int kSteps = 2000;
  constexpr std::int64_t kBatch = 100;
  optim::Adam opt(ae.parameters(), {.lr = kLr});
  for (int step = 0; step < kSteps; ++step) {
    opt.set_lr(kLr * 0.5 * (1 + std::cos(std::numbers::pi * step / kSteps)) + 1e-5);
    Loss l = ae.compute_loss(train_x.rows((step % (2000 / kBatch)) * kBatch, kBatch));
    opt.zero_grad();
    l.total.backward();
    opt.step();
  }
  ae.eval();
  NoGradGuard ng;
  const double ae_mse = mse_of(ae.reconstruct(test_x), test_x);
  std::cout << "PCA test MSE " << pca << ", linear AE " << ae_mse << "\n";
  EXPECT_LE(ae_mse, 1.02 * pca);
  // Sanity: both well below the data's variance around the mean image.
  EXPECT_GT(ae_mse, 0.5 * pca);
}

}  // namespace
}  // namespace latent::models
