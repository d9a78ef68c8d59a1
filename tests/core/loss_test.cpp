// Losses: hand-computed values (python3, written-out formulas) for every op and reduction,
// extreme logits, the Gaussian NLL constant, gradients, reduction identities on a large input that
// takes the multi-threaded path, and the error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

constexpr TensorOptions kF64{.dtype = DType::f64};

Tensor f64(std::vector<double> v, const Shape& s, bool grad = false) {
  return Tensor::from_data(std::span<const double>(v), s,
                           {.dtype = DType::f64, .requires_grad = grad});
}

Tensor f32(std::vector<float> v, const Shape& s, bool grad = false) {
  return Tensor::from_data(std::span<const float>(v), s,
                           {.dtype = DType::f32, .requires_grad = grad});
}

void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

std::vector<double> neg(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
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

// ---- bce_with_logits -------------------------------------------------------------------------

// Row 0: ordinary logits with soft targets; row 1: +-100, where the naive form overflows.
const std::vector<double> kBceX = {0.5, -1.0, 2.0, 0.0, 100, -100, 100, -100};
const std::vector<double> kBceY = {1, 0, 0.25, 0.5, 1, 0, 0, 1};

TEST(BceWithLogits, EveryReductionHandComputed) {
  Tensor x = f64(kBceX, {2, 4});
  Tensor y = f64(kBceY, {2, 4});
  Tensor none = bce_with_logits(x, y, Reduction::none);
  EXPECT_EQ(none.shape(), Shape({2}));
  expect_near_all(none.to_vector<double>(), {3.1074138633012476, 200.0}, 1e-13);
  EXPECT_NEAR(bce_with_logits(x, y, Reduction::sum).item(), 203.10741386330125, 1e-12);
  EXPECT_NEAR(bce_with_logits(x, y, Reduction::batch_mean).item(), 101.55370693165062, 1e-12);
  EXPECT_NEAR(bce_with_logits(x, y).item(), 101.55370693165062, 1e-12);  // the default
  EXPECT_NEAR(bce_with_logits(x, y, Reduction::mean).item(), 25.388426732912656, 1e-13);
  EXPECT_EQ(bce_with_logits(x, y, Reduction::mean).shape(), Shape{});
}

TEST(BceWithLogits, ExtremeLogitsAreFiniteAndExact) {
  // Right answers at +-100: log1p(e^-100) = 3.720075976020836e-44; wrong ones cost exactly 100.
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = f64({100, -100, 100, -100}, {4}).to(dt);
    Tensor y = f64({1, 0, 0, 1}, {4}).to(dt);
    const std::vector<double> v = bce_with_logits(x, y, Reduction::none).to_vector<double>();
    // In float32, 3.7e-44 is a denormal: a few units of 1.4e-45 off at most.
    const double tol = dt == DType::f64 ? 1e-58 : 5e-45;
    EXPECT_NEAR(v[0], 3.720075976020836e-44, tol);
    EXPECT_NEAR(v[1], 3.720075976020836e-44, tol);
    EXPECT_EQ(v[2], 100.0);  // + 3.7e-44, far below half an ulp of 100
    EXPECT_EQ(v[3], 100.0);
  }
  Tensor x = f64({100, -100, 100, -100}, {4}, true);
  Tensor y = f64({1, 0, 0, 1}, {4});
  bce_with_logits(x, y, Reduction::sum).backward();
  // sigmoid(x) - y: 0 (1 - 3.7e-44 rounds to 1), 3.7e-44, 1, -1.
  expect_near_all(x.grad().to_vector<double>(), {0.0, 3.7200759760208356e-44, 1.0, -1.0}, 1e-58);
}

TEST(BceWithLogits, GradientsOfBothInputs) {
  Tensor x = f64(kBceX, {2, 4}, true);
  Tensor y = f64(kBceY, {2, 4}, true);
  bce_with_logits(x, y).backward();  // batch_mean: factor 1/2
  const std::vector<double> dx = x.grad().to_vector<double>();
  expect_near_all({dx.begin(), dx.begin() + 4},
                  {-0.1887703343990727, 0.13447071068499755, 0.31539853898894116, 0.0}, 1e-15);
  // d/dy = -x.
  expect_near_all(y.grad().to_vector<double>(), {-0.25, 0.5, -1.0, 0.0, -50, 50, -50, 50}, 0.0);
}

TEST(BceWithLogits, ExactTargetsGiveZeroLossAtConfidentLogits) {
  // y = sigmoid(x) minimizes the loss; its gradient vanishes there.
  Tensor x = f64({0.0, 1.0}, {1, 2}, true);
  Tensor y = f64({0.5, 1.0 / (1.0 + std::exp(-1.0))}, {1, 2});
  bce_with_logits(x, y, Reduction::sum).backward();
  expect_near_all(x.grad().to_vector<double>(), {0.0, 0.0}, 1e-16);
}

// ---- mse -------------------------------------------------------------------------------------

TEST(Mse, EveryReductionHandComputed) {
  Tensor p = f64({1, 2, 3, 4}, {2, 2});
  Tensor t = f64({0, 2, 5, 1}, {2, 2});  // squared errors 1, 0, 4, 9
  expect_near_all(mse(p, t, Reduction::none).to_vector<double>(), {1.0, 13.0}, 0.0);
  EXPECT_EQ(mse(p, t, Reduction::sum).item(), 14.0);
  EXPECT_EQ(mse(p, t, Reduction::batch_mean).item(), 7.0);
  EXPECT_EQ(mse(p, t).item(), 3.5);  // the default is the mean over elements
}

TEST(Mse, GradientsOfBothInputs) {
  Tensor p = f64({1, 2, 3, 4}, {2, 2}, true);
  Tensor t = f64({0, 2, 5, 1}, {2, 2}, true);
  mse(p, t).backward();  // 2 (p - t) / 4
  expect_near_all(p.grad().to_vector<double>(), {0.5, 0.0, -1.0, 1.5}, 0.0);
  expect_near_all(t.grad().to_vector<double>(), {-0.5, 0.0, 1.0, -1.5}, 0.0);
}

TEST(Mse, NoneScalesEachSampleByItsGradient) {
  Tensor p = f64({1, 2, 3, 4}, {2, 2}, true);
  Tensor t = f64({0, 2, 5, 1}, {2, 2});
  mse(p, t, Reduction::none).backward(f64({2.0, -3.0}, {2}));
  expect_near_all(p.grad().to_vector<double>(), {4.0, 0.0, 12.0, -18.0}, 0.0);
}

TEST(Mse, SameTensorOnBothSidesHasZeroLossAndGradient) {
  Tensor p = f64({1, -2, 3}, {3}, true);
  Tensor l = mse(p, p, Reduction::sum);
  EXPECT_EQ(l.item(), 0.0);
  l.backward();
  expect_near_all(p.grad().to_vector<double>(), {0, 0, 0}, 0.0);
}

TEST(Mse, GradientsAccumulateAcrossBackwardPasses) {
  Tensor p = f64({1, 2}, {1, 2}, true);
  Tensor t = f64({0, 0}, {1, 2});
  mse(p, t, Reduction::sum).backward();
  mse(p, t, Reduction::sum).backward();
  expect_near_all(p.grad().to_vector<double>(), {4.0, 8.0}, 0.0);
}

TEST(Mse, ModifiedInPlaceAfterForwardIsReported) {
  Tensor p = f64({1, 2}, {1, 2}, true);
  Tensor t = f64({0, 0}, {1, 2});
  Tensor l = mse(p, t);
  t.fill_(1.0);
  EXPECT_THROW(l.backward(), Error);
}

// ---- gaussian_nll ----------------------------------------------------------------------------

const std::vector<double> kMu = {0.0, 1.0, -0.5, 2.0, 0.5, 0.0};
const std::vector<double> kT = {0.5, 1.0, 0.5, 1.0, -0.5, 0.25};

TEST(GaussianNll, StandardNormalAtItsMeanIsTheConstant) {
  // -log N(0; 0, 1) = 0.5 log(2 pi), per element: the values are true NLLs in nats.
  Tensor z = Tensor::zeros({2, 3}, kF64);
  const double c = 0.9189385332046727;
  expect_near_all(gaussian_nll(z, z, z, Reduction::none).to_vector<double>(), {3 * c, 3 * c},
                  1e-15);
  EXPECT_NEAR(gaussian_nll(z, Tensor::scalar(0.0, kF64), z, Reduction::mean).item(), c, 1e-15);
  // Float32 agrees.
  Tensor zf = Tensor::zeros({1, 1});
  EXPECT_NEAR(gaussian_nll(zf, zf, zf, Reduction::sum).item(), c, 1e-7);
}

TEST(GaussianNll, FullLogvarValuesAndGradients) {
  Tensor mu = f64(kMu, {2, 3}, true);
  Tensor lv = f64({0.0, -1.0, 0.5, 1.0, 0.2, -0.3}, {2, 3}, true);
  Tensor t = f64(kT, {2, 3}, true);
  expect_near_all(gaussian_nll(mu, lv, t, Reduction::none).to_vector<double>(),
                  {2.9350809294703346, 3.8423037844754804}, 1e-14);
  Tensor l = gaussian_nll(mu, lv, t);  // batch_mean
  EXPECT_NEAR(l.item(), 3.3886923569729075, 1e-14);
  l.backward();
  const std::vector<double> dmu = {-0.25,
                                   0.0,
                                   -0.3032653298563167,
                                   0.18393972058572117,
                                   0.4093653765389909,
                                   -0.1687323509470004};
  expect_near_all(mu.grad().to_vector<double>(), dmu, 1e-15);
  expect_near_all(t.grad().to_vector<double>(), neg(dmu), 1e-15);
  expect_near_all(lv.grad().to_vector<double>(),
                  {0.1875, 0.25, 0.09836733507184164, 0.15803013970713942, 0.045317311730504545,
                   0.22890845613162494},
                  1e-15);
}

TEST(GaussianNll, RowSharedLogvarSumsItsGradientOverSamples) {
  Tensor mu = f64(kMu, {2, 3}, true);
  Tensor lv = f64({0.3, -0.7, 1.2}, {3}, true);
  Tensor t = f64(kT, {2, 3});
  expect_near_all(gaussian_nll(mu, lv, t, Reduction::none).to_vector<double>(),
                  {3.4000149831553337, 4.543513382812371}, 1e-14);
  Tensor l = gaussian_nll(mu, lv, t);
  EXPECT_NEAR(l.item(), 3.9717641829838524, 1e-14);
  l.backward();
  expect_near_all(mu.grad().to_vector<double>(),
                  {-0.18520455517042947, 0.0, -0.15059710595610107, 0.37040911034085894,
                   1.0068763537352383, -0.03764927648902527},
                  1e-15);
  expect_near_all(lv.grad().to_vector<double>(),
                  {0.26849430603696317, -0.003438176867619158, 0.41999528746082126}, 1e-15);
}

TEST(GaussianNll, ScalarLogvarIsAFixedSigma) {
  Tensor mu = f64(kMu, {2, 3}, true);
  Tensor t = f64(kT, {2, 3});
  for (const Shape& s : {Shape{}, Shape{1}}) {
    Tensor lv = f64({0.4}, s, true);
    Tensor l = gaussian_nll(mu, lv, t);
    EXPECT_NEAR(l.item(), 3.9119243877372814, 1e-14) << s.str();
    l.backward();
    EXPECT_EQ(lv.grad().shape(), s);
    EXPECT_NEAR(lv.grad().item(), 0.9448912118767362, 1e-14) << s.str();
  }
  expect_near_all(mu.grad().to_vector<double>(),
                  {2 * -0.16758001150890983, 0.0, 2 * -0.33516002301781966, 2 * 0.33516002301781966,
                   2 * 0.33516002301781966, 2 * -0.08379000575445492},
                  1e-15);  // two backward passes accumulated
}

TEST(GaussianNll, RowSharedLogvarMatchesTheExpandedFullLogvar) {
  // A [D] logvar must act like the same row repeated for every sample, on the threaded path too.
  Generator gen(7);
  const std::int64_t n = 300, d = 130;
  Tensor mu = Tensor::randn({n, d}, gen, kF64);
  Tensor t = Tensor::randn({n, d}, gen, kF64);
  Tensor row = Tensor::rand({d}, gen, kF64, -1, 1);
  std::vector<double> rv = row.to_vector<double>(), full;
  for (std::int64_t i = 0; i < n; ++i) full.insert(full.end(), rv.begin(), rv.end());
  Tensor lv_full = f64(full, {n, d}, true);
  row.requires_grad_(true);
  Tensor a = gaussian_nll(mu, row, t, Reduction::sum);
  Tensor b = gaussian_nll(mu, lv_full, t, Reduction::sum);
  EXPECT_NEAR(a.item(), b.item(), 1e-9 * std::fabs(b.item()));
  a.backward();
  b.backward();
  const std::vector<double> gf = lv_full.grad().to_vector<double>();
  const std::vector<double> gr = row.grad().to_vector<double>();
  for (std::int64_t j = 0; j < d; ++j) {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += gf[static_cast<std::size_t>(i * d + j)];
    EXPECT_NEAR(gr[static_cast<std::size_t>(j)], s, 1e-10) << "column " << j;
  }
}

// ---- log_softmax -----------------------------------------------------------------------------

TEST(LogSoftmax, ValuesStableAndGradient) {
  Tensor x = f64({1, 2, 3, 1000, 1000, 1000}, {2, 3}, true);
  Tensor y = log_softmax(x);
  expect_near_all(y.to_vector<double>(),
                  {-2.4076059644443806, -1.4076059644443806, -0.4076059644443806,
                   -1.0986122886681098, -1.0986122886681098, -1.0986122886681098},
                  1e-12);
  y.backward(f64({1, 0, 0, 0, 0, 0}, {2, 3}));
  expect_near_all(x.grad().to_vector<double>(),
                  {0.9099694268296196, -0.24472847105479759, -0.6652409557748217, 0, 0, 0}, 1e-15);
  // Float32 at large logits: no overflow.
  Tensor xf = f32({-80.f, 0.f, 80.f}, {1, 3});
  const std::vector<float> yf = log_softmax(xf).to_vector<float>();
  EXPECT_FLOAT_EQ(yf[2], 0.0f);
  EXPECT_FLOAT_EQ(yf[1], -80.0f);
  EXPECT_FLOAT_EQ(yf[0], -160.0f);
}

// A NaN anywhere in a row makes the whole row NaN, wherever it stands and whatever infinity the
// row holds (a max that skipped it would give +inf or -inf instead).
TEST(LogSoftmax, ANaNMakesItsRowNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = Tensor::from_data(
      std::vector<float>{nan, inf, 1.0f, 1.0f, nan, inf, inf, 1.0f, nan, 1.0f, 2.0f, 3.0f}, {4, 3});
  const std::vector<float> y = log_softmax(x).to_vector<float>();
  for (int i = 0; i < 9; ++i) EXPECT_TRUE(std::isnan(y[static_cast<std::size_t>(i)])) << i;
  for (int i = 9; i < 12; ++i) EXPECT_TRUE(std::isfinite(y[static_cast<std::size_t>(i)])) << i;
  // The categorical likelihood's logsumexp alike.
  const Tensor logits = Tensor::from_data(std::vector<float>{1.0f, nan, inf}, {1, 3});
  EXPECT_TRUE(std::isnan(categorical_nll(logits, Tensor::zeros({1, 1}), 3, Reduction::sum).item()));
}

TEST(LogSoftmax, Errors) {
  const std::string e = error_of([] { log_softmax(Tensor::zeros({2, 3, 4})); });
  EXPECT_NE(e.find("[log_softmax]"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 3, 4)"), std::string::npos) << e;
}

// ---- cross_entropy ---------------------------------------------------------------------------

const std::vector<double> kCeX = {1, 2, 3, 0, 0, 0, -1, 0.5, 0};

TEST(CrossEntropy, EveryReductionHandComputed) {
  Tensor x = f64(kCeX, {3, 3});
  Tensor t = f64({2, 0, 1}, {3});
  expect_near_all(cross_entropy(x, t, Reduction::none).to_vector<double>(),
                  {0.4076059644443806, 1.0986122886681098, 0.6041306053367284}, 1e-15);
  EXPECT_NEAR(cross_entropy(x, t, Reduction::sum).item(), 2.1103488584492185, 1e-15);
  EXPECT_NEAR(cross_entropy(x, t).item(), 0.7034496194830728, 1e-15);
  // Per-sample values are the rows: mean divides by M, like batch_mean.
  EXPECT_NEAR(cross_entropy(x, t, Reduction::mean).item(), 0.7034496194830728, 1e-15);
}

TEST(CrossEntropy, GradientIsSoftmaxMinusOneHot) {
  Tensor x = f64(kCeX, {3, 3}, true);
  Tensor t = f64({2, 0, 1}, {3}, true);  // asks for a gradient, gets none
  cross_entropy(x, t).backward();
  expect_near_all(x.grad().to_vector<double>(),
                  {0.030010191056793478, 0.08157615701826586, -0.11158634807505945,
                   -0.22222222222222224, 0.1111111111111111, 0.1111111111111111,
                   0.040650550769909616, -0.1511502042446068, 0.11049965347469716},
                  1e-15);
  EXPECT_FALSE(t.grad().defined());
}

TEST(CrossEntropy, ExtremeLogits) {
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = f64({100, -100, 100, -100}, {2, 2}).to(dt);
    Tensor t = f64({1, 0}, {2}).to(dt);
    const std::vector<double> v = cross_entropy(x, t, Reduction::none).to_vector<double>();
    EXPECT_EQ(v[0], 200.0);
    EXPECT_EQ(v[1], 0.0);
  }
}

TEST(CrossEntropy, BadTargetsNameTheIndexAndValue) {
  Tensor x = Tensor::zeros({3, 4});
  auto err = [&](std::vector<float> t) { return error_of([&] { cross_entropy(x, f32(t, {3})); }); };
  std::string e = err({0, 2.5f, 1});
  EXPECT_NE(e.find("[cross_entropy]"), std::string::npos) << e;
  EXPECT_NE(e.find("target[1] = 2.5"), std::string::npos) << e;
  EXPECT_NE(e.find("[0, 4)"), std::string::npos) << e;
  EXPECT_NE(err({0, 1, 4}).find("target[2] = 4"), std::string::npos);
  EXPECT_NE(err({-1, 1, 2}).find("target[0] = -1"), std::string::npos);
  EXPECT_NE(err({0, std::numeric_limits<float>::quiet_NaN(), 2}).find("target[1] = nan"),
            std::string::npos);
  EXPECT_EQ(err({3, 0, 1}), "(no error)");
}

TEST(CrossEntropy, ShapeErrors) {
  std::string e = error_of([] { cross_entropy(Tensor::zeros({3, 4}), Tensor::zeros({2})); });
  EXPECT_NE(e.find("[cross_entropy]"), std::string::npos) << e;
  EXPECT_NE(e.find("(3, 4)"), std::string::npos) << e;
  EXPECT_NE(e.find("(2)"), std::string::npos) << e;
  e = error_of([] { cross_entropy(Tensor::zeros({3, 4}), Tensor::zeros({3, 1})); });
  EXPECT_NE(e.find("(3, 1)"), std::string::npos) << e;
  e = error_of([] { cross_entropy(Tensor::zeros({12}), Tensor::zeros({12})); });
  EXPECT_NE(e.find("2-D"), std::string::npos) << e;
}

// ---- reductions, shared rules, errors ---------------------------------------------------------

TEST(LossReductions, AgreeWithEachOtherOnTheThreadedPath) {
  // 300 x 128 elements: large enough for the multi-threaded loops. The reductions must agree
  // with the per-sample values summed here in double, in float32 as in float64.
  Generator gen(11);
  const std::int64_t n = 300, d = 128;
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = Tensor::randn({n, d}, gen, {.dtype = dt});
    Tensor y = Tensor::rand({n, d}, gen, {.dtype = dt});
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    for (auto loss :
         {+[](const Tensor&a, const Tensor&b, Reduction r) { return bce_with_logits(a, b, r); },
          +[](const Tensor&a, const Tensor&b, Reduction r) { return mse(a, b, r); },
          +[](const Tensor&a, const Tensor&b, Reduction r) {
            return gaussian_nll(a, Tensor::scalar(0.3, a.options()), b, r);
          }}) {
      double s = 0;
      for (double v : loss(x, y, Reduction::none).to_vector<double>()) s += v;
      EXPECT_NEAR(loss(x, y, Reduction::sum).item(), s, tol * std::fabs(s));
      EXPECT_NEAR(loss(x, y, Reduction::batch_mean).item(), s / n, tol * std::fabs(s / n));
      EXPECT_NEAR(loss(x, y, Reduction::mean).item(), s / (n * d), tol * std::fabs(s / (n * d)));
    }
  }
}

TEST(LossReductions, RepeatableBitForBit) {
  Generator gen(5);
  Tensor x = Tensor::randn({257, 200}, gen);
  Tensor y = Tensor::rand({257, 200}, gen);
  const double a = bce_with_logits(x, y, Reduction::sum).item();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bce_with_logits(x, y, Reduction::sum).item(), a);
}

TEST(LossReductions, EmptyBatch) {
  Tensor e = Tensor::zeros({0, 3});
  EXPECT_EQ(mse(e, e, Reduction::none).shape(), Shape({0}));
  EXPECT_EQ(cross_entropy(e, Tensor::zeros({0}), Reduction::none).shape(), Shape({0}));
  EXPECT_EQ(log_softmax(e).shape(), Shape({0, 3}));
  // The sum over no samples is 0; a mean over them is undefined.
  EXPECT_EQ(mse(e, e, Reduction::sum).item(), 0.0);
  EXPECT_EQ(cross_entropy(e, Tensor::zeros({0}), Reduction::sum).item(), 0.0);
  for (Reduction r : {Reduction::batch_mean, Reduction::mean}) {
    const std::string m = error_of([&] { mse(e, e, r); });
    EXPECT_NE(m.find("[mse] "), std::string::npos) << m;
    EXPECT_NE(m.find("(0, 3)"), std::string::npos) << m;
    EXPECT_THROW(bce_with_logits(e, e, r), Error);
    EXPECT_THROW(gaussian_nll(e, e, e, r), Error);
    EXPECT_THROW(cross_entropy(e, Tensor::zeros({0}), r), Error);
  }
  // Rows without elements: their sums are 0, but a mean over nothing is undefined.
  Tensor z = Tensor::zeros({2, 0});
  EXPECT_EQ(mse(z, z, Reduction::batch_mean).item(), 0.0);
  EXPECT_NE(error_of([&] { mse(z, z, Reduction::mean); }).find("zero elements"), std::string::npos);
}

TEST(LossErrors, ShapesDevicesAndDtypes) {
  std::string e = error_of([] { mse(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})); });
  EXPECT_NE(e.find("[mse]"), std::string::npos) << e;
  EXPECT_NE(e.find("(2, 3)"), std::string::npos) << e;
  EXPECT_NE(e.find("(3, 2)"), std::string::npos) << e;
  e = error_of([] { bce_with_logits(Tensor::zeros({4, 5}), Tensor::zeros({4, 4})); });
  EXPECT_NE(e.find("[bce_with_logits]"), std::string::npos) << e;
  EXPECT_NE(e.find("(4, 5) vs (4, 4)"), std::string::npos) << e;
  e = error_of([] { mse(Tensor::zeros({2}), Tensor::zeros({2}, kF64)); });
  EXPECT_NE(e.find("[mse] dtypes differ"), std::string::npos) << e;
  e = error_of([] { mse(Tensor::scalar(1.0), Tensor::scalar(1.0)); });
  EXPECT_NE(e.find("batch dimension"), std::string::npos) << e;
  EXPECT_THROW(mse(Tensor(), Tensor::zeros({2})), Error);
}

TEST(LossErrors, GaussianNllLogvarShape) {
  Tensor m = Tensor::zeros({2, 4});
  for (const Shape& bad : {Shape{3}, Shape{2}, Shape{2, 1}, Shape{1, 4}, Shape{4, 2}}) {
    const std::string e = error_of([&] { gaussian_nll(m, Tensor::zeros(bad), m); });
    EXPECT_NE(e.find("[gaussian_nll] logvar"), std::string::npos) << e;
    EXPECT_NE(e.find(bad.str()), std::string::npos) << e;
    EXPECT_NE(e.find("(2, 4)"), std::string::npos) << e;
  }
  const std::string e = error_of([&] { gaussian_nll(m, m, Tensor::zeros({2, 5})); });
  EXPECT_NE(e.find("(2, 4) vs (2, 5)"), std::string::npos) << e;
}

TEST(LossGraph, NamesAndNoGrad) {
  Tensor x = f64({0.5, 1.0}, {1, 2}, true);
  Tensor t = f64({0.0, 1.0}, {1, 2});
  EXPECT_EQ(mse(x, t).grad_fn_name(), "mse");
  EXPECT_EQ(bce_with_logits(x, t).grad_fn_name(), "bce_with_logits");
  EXPECT_EQ(gaussian_nll(x, t, t).grad_fn_name(), "gaussian_nll");
  EXPECT_EQ(log_softmax(x).grad_fn_name(), "log_softmax");
  EXPECT_EQ(cross_entropy(x, f64({1}, {1})).grad_fn_name(), "cross_entropy");
  NoGradGuard ng;
  EXPECT_FALSE(mse(x, t).requires_grad());
}

// A value outside [0, 1] has no level: the loss and that row of the gradient are NaN, never
// leftover memory.
TEST(CategoricalNll, AValueWithoutALevelIsNaNInTheLossAndItsGradient) {
  const Tensor logits = Tensor::zeros({2, 2 * 3}).requires_grad_();
  const Tensor x = Tensor::from_data(std::vector<float>{0.0f, 1.5f, 0.5f, 1.0f}, {2, 2});
  const Tensor loss = categorical_nll(logits, x, 3, Reduction::batch_mean);
  EXPECT_TRUE(std::isnan(loss.item()));
  loss.backward();
  const std::vector<float> g = logits.grad().to_vector<float>();
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(std::isnan(g[static_cast<std::size_t>(3 + c)])) << c;
  for (int c : {0, 1, 2, 6, 7, 8, 9, 10, 11}) EXPECT_TRUE(std::isfinite(g[c])) << c;
}

}  // namespace
}  // namespace latent
