// Reductions: hand-computed sums, means and log-sum-exps (expected values from python3), their
// gradients, stability at extreme values, double accumulation, empty inputs and error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

constexpr double kInf = std::numeric_limits<double>::infinity();

void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
}

Tensor mat(const std::vector<double>& v, std::int64_t rows, std::int64_t cols,
           DType dt = DType::f64) {
  return Tensor::from_data(std::span<const double>(v), {rows, cols}, {.dtype = dt});
}

void expect_values(const Tensor& t, const Shape& shape, const std::vector<double>& want,
                   double tol = 1e-14) {
  EXPECT_EQ(t.shape(), shape);
  const auto got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << "element " << i;
}

// x = [[1, 2, 3], [4, 5, 6]]
Tensor x23(bool grad = false) {
  Tensor x = mat({1, 2, 3, 4, 5, 6}, 2, 3);
  if (grad) x.requires_grad_();
  return x;
}

TEST(Reduce, SumAndMeanOfAllElements) {
  expect_values(sum(x23()), Shape{}, {21});
  expect_values(mean(x23()), Shape{}, {3.5});
  Tensor x3 = Tensor::ones({2, 3, 4});
  expect_values(sum(x3), Shape{}, {24});
  expect_values(mean(x3.mul_(2.0)), Shape{}, {2});
  expect_values(sum(Tensor::scalar(-4.0)), Shape{}, {-4});

  Tensor x = x23(true);
  mean(x).backward();
  expect_values(x.grad(), Shape{2, 3}, std::vector<double>(6, 1.0 / 6));
  Tensor y = x23(true);
  sum(y).backward(Tensor::scalar(2.5, {.dtype = DType::f64}));
  expect_values(y.grad(), Shape{2, 3}, std::vector<double>(6, 2.5));
}

TEST(Reduce, SumAndMeanAlongDims) {
  expect_values(sum(x23(), 0), Shape{3}, {5, 7, 9});
  expect_values(sum(x23(), 1), Shape{2}, {6, 15});
  expect_values(sum(x23(), -1), Shape{2}, {6, 15});
  expect_values(sum(x23(), -2), Shape{3}, {5, 7, 9});
  expect_values(sum(x23(), 0, true), Shape{1, 3}, {5, 7, 9});
  expect_values(sum(x23(), 1, true), Shape{2, 1}, {6, 15});
  expect_values(mean(x23(), 0), Shape{3}, {2.5, 3.5, 4.5});
  expect_values(mean(x23(), 1), Shape{2}, {2, 5});
  expect_values(mean(x23(), -1, true), Shape{2, 1}, {2, 5});
  expect_values(mean(x23(), 0, true), Shape{1, 3}, {2.5, 3.5, 4.5});
  // float32 too.
  expect_values(sum(mat({1, 2, 3, 4, 5, 6}, 2, 3, DType::f32), 0), Shape{3}, {5, 7, 9});
}

TEST(Reduce, DimBackwardBroadcastsBack) {
  Tensor a = x23(true);
  sum(a, 0).backward(Tensor::from_data(std::vector<double>{1, 2, 3}, {3}, {.dtype = DType::f64}));
  expect_values(a.grad(), Shape{2, 3}, {1, 2, 3, 1, 2, 3});

  Tensor b = x23(true);
  mean(b, 1, true).backward(mat({3, 6}, 2, 1));
  expect_values(b.grad(), Shape{2, 3}, {1, 1, 1, 2, 2, 2});

  Tensor c = x23(true);
  mean(c, 0).backward(Tensor::from_data(std::vector<double>{2, 4, 6}, {3}, {.dtype = DType::f64}));
  expect_values(c.grad(), Shape{2, 3}, {1, 2, 3, 1, 2, 3});

  // Centering a row by its mean: d/dx sum((x - mean(x))^2) = 2 (x - mean(x)), since the
  // centered row sums to zero.
  Tensor d = x23(true);
  sum(square(d - mean(d, 1, true))).backward();
  expect_values(d.grad(), Shape{2, 3}, {-2, 0, 2, -2, 0, 2});
}

// x = [[1, 2, 3], [-1, 0.5, 4]]; reference values from python3.
TEST(Reduce, LogSumExpValuesAndSoftmaxGradient) {
  const std::vector<double> v = {1, 2, 3, -1, 0.5, 4};
  expect_values(logsumexp(mat(v, 2, 3), 1), Shape{2}, {3.4076059644443806, 4.036269565124779});
  expect_values(logmeanexp(mat(v, 2, 3), 1), Shape{2}, {2.3089936757762706, 2.937657276456669});
  expect_values(logsumexp(mat(v, 2, 3), 0, true), Shape{1, 3},
                {1.1269280110429727, 2.2014132779827524, 4.313261687518223});
  expect_values(logmeanexp(mat(v, 2, 3), -2), Shape{3},
                {0.4337808304830274, 1.508266097422807, 3.620114506958277});
  expect_values(logsumexp(mat(v, 2, 3, DType::f32), -1, true), Shape{2, 1},
                {3.4076059644443806, 4.036269565124779}, 1e-6);

  // The gradient is the softmax along the reduced dimension, scaled by dout.
  Tensor x = mat(v, 2, 3).requires_grad_();
  logsumexp(x, 1).backward(
      Tensor::from_data(std::vector<double>{1, 2}, {2}, {.dtype = DType::f64}));
  expect_values(x.grad(), Shape{2, 3},
                {0.09003057317038043, 0.24472847105479759, 0.6652409557748217,
                 2 * 0.006497943315661942, 2 * 0.029121761537478412, 2 * 0.96438029514686});
  // logmeanexp differs by a constant: same gradient.
  Tensor y = mat(v, 2, 3).requires_grad_();
  logmeanexp(y, 0).backward(Tensor::ones({3}, {.dtype = DType::f64}));
  expect_values(y.grad(), Shape{2, 3},
                {0.8807970779778823, 0.8175744761936437, 0.2689414213699952, 0.11920292202211753,
                 0.18242552380635635, 0.731058578630005});
  // log(1 + 2 + 3) and its weights 1/6, 2/6, 3/6.
  Tensor z = mat({0, std::log(2.0), std::log(3.0)}, 1, 3).requires_grad_();
  Tensor l = logsumexp(z, 1);
  expect_values(l, Shape{1}, {1.791759469228055});
  l.backward();
  expect_values(z.grad(), Shape{1, 3}, {1.0 / 6, 2.0 / 6, 3.0 / 6});
}

TEST(Reduce, LogSumExpStableAtExtremes) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dt == DType::f32 ? "float32" : "float64");
    const double tol = dt == DType::f32 ? 1e-7 : 1e-15;
    // e^1000 overflows both types; the max-subtracted form does not.
    expect_values(logsumexp(mat({1000, 1000, -1000, -1000}, 2, 2, dt), 1), Shape{2},
                  {1000.6931471805599, -999.3068528194401}, tol);
    expect_values(logmeanexp(mat({1000, 1000, -1000, -1000}, 2, 2, dt), 1), Shape{2}, {1000, -1000},
                  tol);
    Tensor x = mat({1000, 0, -1000, -2000}, 2, 2, dt).requires_grad_();
    logsumexp(x, 0).backward(Tensor::ones({2}, {.dtype = dt}));
    expect_values(x.grad(), Shape{2, 2}, {1, 1, 0, 0}, tol);
  }
}

TEST(Reduce, LogSumExpNonFiniteRows) {
  // Row 0 all -inf: log(0) = -inf and a zero gradient, no NaN. Row 1: one -inf among finite.
  Tensor x = mat({-kInf, -kInf, -kInf, 0.0}, 2, 2).requires_grad_();
  Tensor l = logsumexp(x, 1);
  const auto lv = l.to_vector<double>();
  EXPECT_EQ(lv[0], -kInf);
  EXPECT_EQ(lv[1], 0.0);
  l.backward(Tensor::ones({2}, {.dtype = DType::f64}));
  const auto g = x.grad().to_vector<double>();
  EXPECT_EQ(g, (std::vector<double>{0, 0, 0, 1}));

  Tensor c = mat({-kInf, 1.0, -kInf, 1.0}, 2, 2).requires_grad_();
  Tensor lc = logmeanexp(c, 0);
  EXPECT_EQ(lc.to_vector<double>()[0], -kInf);
  EXPECT_NEAR(lc.to_vector<double>()[1], 1.0, 1e-15);
  lc.backward(Tensor::ones({2}, {.dtype = DType::f64}));
  for (double v : c.grad().to_vector<double>()) EXPECT_FALSE(std::isnan(v));

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto r = logsumexp(mat({kInf, 0.0, 1.0, nan, nan, 2.0}, 2, 3), 1).to_vector<double>();
  EXPECT_EQ(r[0], kInf);
  EXPECT_TRUE(std::isnan(r[1]));
  // The float32 path too.
  const auto r32 = logsumexp(mat({-kInf, -kInf}, 1, 2, DType::f32), 1).to_vector<double>();
  EXPECT_EQ(r32[0], -kInf);
}

// 2^24 is where float32 stops counting by ones: only a double accumulator gets these sums right.
TEST(Reduce, AccumulatesInDouble) {
  const std::int64_t n = 1001;
  std::vector<float> v(static_cast<std::size_t>(n), 1.0f);
  v[0] = 16777216.0f;
  Tensor col = Tensor::from_data(v, {n, 1});
  EXPECT_EQ(sum(col).item(), 16778216.0);
  EXPECT_EQ(sum(col, 0).item(), 16778216.0);
  EXPECT_EQ(sum(col.reshape({1, n}), 1).item(), 16778216.0);
  EXPECT_EQ(mean(col).item(), static_cast<double>(static_cast<float>(16778216.0 / 1001)));
}

// Big enough for the parallel paths; integer data makes every partial sum exact, so the result
// must match exactly whatever the association.
TEST(Reduce, LargeInputsExact) {
  const std::int64_t rows = 1201, cols = 301;
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 3.0f;
  Tensor x = Tensor::from_data(v, {rows, cols});
  double total = 0;
  for (float f : v) total += f;
  EXPECT_EQ(sum(x).item(), total);
  const auto by_col = sum(x, 0).to_vector<double>();
  const auto by_row = sum(x, 1).to_vector<double>();
  for (std::int64_t c = 0; c < cols; c += 13) {
    double s = 0;
    for (std::int64_t r = 0; r < rows; ++r) s += v[static_cast<std::size_t>(r * cols + c)];
    EXPECT_EQ(by_col[static_cast<std::size_t>(c)], s) << "column " << c;
  }
  for (std::int64_t r = 0; r < rows; r += 37) {
    double s = 0;
    for (std::int64_t c = 0; c < cols; ++c) s += v[static_cast<std::size_t>(r * cols + c)];
    EXPECT_EQ(by_row[static_cast<std::size_t>(r)], s) << "row " << r;
  }
  // A constant column block: logsumexp = value + log(count).
  Tensor k = Tensor::full({rows, cols}, 0.5);
  const auto l0 = logsumexp(k, 0).to_vector<double>();
  const auto l1 = logmeanexp(k, 1).to_vector<double>();
  EXPECT_NEAR(l0[300], 0.5 + std::log(static_cast<double>(rows)), 1e-6);
  EXPECT_NEAR(l1[1000], 0.5, 1e-6);
}

TEST(Reduce, EmptyInputs) {
  Tensor e = Tensor::zeros({0, 3}, {.dtype = DType::f64});
  EXPECT_EQ(sum(e).item(), 0.0);
  expect_values(sum(e, 0), Shape{3}, {0, 0, 0});
  EXPECT_EQ(sum(e, 1).shape(), (Shape{0}));
  EXPECT_EQ(mean(e, 1).shape(), (Shape{0}));  // zero rows, each of three elements
  const auto l = logsumexp(e, 0).to_vector<double>();
  for (double v : l) EXPECT_EQ(v, -kInf);

  expect_mentions(error_of([&] { mean(e); }), {"[mean]", "empty", "(0, 3)"});
  expect_mentions(error_of([&] { mean(e, 0); }), {"[mean]", "empty", "(0, 3)"});
  expect_mentions(error_of([&] { logmeanexp(e, -2); }), {"[logmeanexp]", "(0, 3)"});
}

TEST(Reduce, Errors) {
  Tensor x3 = Tensor::zeros({2, 3, 4});
  expect_mentions(error_of([&] { sum(x3, 0); }), {"[sum]", "2-D", "(2, 3, 4)"});
  expect_mentions(error_of([&] { mean(Tensor::zeros({5}), 0); }), {"[mean]", "2-D", "(5)"});
  expect_mentions(error_of([&] { logsumexp(x3, 1); }), {"[logsumexp]", "(2, 3, 4)"});
  expect_mentions(error_of([&] { sum(x23(), 2); }), {"[sum]", "dim 2", "(2, 3)"});
  expect_mentions(error_of([&] { logmeanexp(x23(), -3); }), {"[logmeanexp]", "dim -3"});
  expect_mentions(error_of([] { sum(Tensor()); }), {"[sum]"});
  expect_mentions(error_of([] { mean(Tensor(), 0); }), {"[mean]"});
}

TEST(Reduce, GraphNodeNames) {
  Tensor x = x23(true);
  EXPECT_EQ(sum(x).grad_fn_name(), "sum");
  EXPECT_EQ(mean(x, 1).grad_fn_name(), "mean");
  EXPECT_EQ(logmeanexp(x, 0).grad_fn_name(), "logmeanexp");
}

}  // namespace
}  // namespace latent
