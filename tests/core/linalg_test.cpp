// matmul and the fused dense layer: hand-computed values and gradients, agreement with the same
// layer composed from element-wise ops, the error messages, and autograd behaviour (gradient
// accumulation, partial requires_grad, in-place detection, no-grad mode, empty batches).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/gradcheck.h"

namespace latent {
namespace {

using kernels::Act;
using kernels::ActParams;
constexpr TensorOptions kF64 = {.dtype = DType::f64};
constexpr double kInf = std::numeric_limits<double>::infinity();

Tensor f64(std::vector<double> v, const Shape& s, bool grad = false) {
  return Tensor::from_data(std::span<const double>(v), s,
                           {.dtype = DType::f64, .requires_grad = grad});
}

void expect_near_all(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  const auto got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// Runs fn and returns the latent::Error message ("" when nothing was thrown).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- matmul ------------------------------------------------------------------------------------

// A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12]: A B = [58 64; 139 154]. With dy = [1 2; 3 4]:
// dA = dy B^T = [23 29 35; 53 67 81], dB = A^T dy = [13 18; 17 24; 21 30].
TEST(Matmul, HandComputedAllTransposes) {
  const std::vector<double> a = {1, 2, 3, 4, 5, 6}, at = {1, 4, 2, 5, 3, 6};
  const std::vector<double> b = {7, 8, 9, 10, 11, 12}, bt = {7, 9, 11, 8, 10, 12};
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    SCOPED_TRACE(t);
    Tensor A = ta ? f64(at, {3, 2}, true) : f64(a, {2, 3}, true);
    Tensor B = tb ? f64(bt, {2, 3}, true) : f64(b, {3, 2}, true);
    Tensor y = matmul(A, B, ta, tb);
    EXPECT_EQ(y.shape(), Shape({2, 2}));
    expect_near_all(y, {58, 64, 139, 154});
    EXPECT_EQ(y.grad_fn_name(), "matmul");
    y.backward(f64({1, 2, 3, 4}, {2, 2}));
    expect_near_all(A.grad(), ta ? std::vector<double>{23, 53, 29, 67, 35, 81}
                                 : std::vector<double>{23, 29, 35, 53, 67, 81});
    expect_near_all(B.grad(), tb ? std::vector<double>{13, 17, 21, 18, 24, 30}
                                 : std::vector<double>{13, 18, 17, 24, 21, 30});
  }
}

TEST(Matmul, Float32MatchesFloat64OnBlockedSizes) {
  Generator gen(7);
  Tensor a = Tensor::randn({70, 300}, gen, kF64);
  Tensor b = Tensor::randn({90, 300}, gen, kF64);
  const auto want = matmul(a, b, false, true).to_vector<double>();
  const auto got = matmul(a.to(DType::f32), b.to(DType::f32), false, true).to_vector<double>();
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3) << i;
}

TEST(Matmul, ZeroInnerDimensionGivesZeros) {
  Tensor y = matmul(Tensor::zeros({2, 0}), Tensor::zeros({0, 3}));
  EXPECT_EQ(y.shape(), Shape({2, 3}));
  for (float v : y.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Matmul, OnlyOneOperandNeedsGrad) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor b = f64({7, 8, 9, 10, 11, 12}, {3, 2});
  matmul(a, b).backward(f64({1, 2, 3, 4}, {2, 2}));
  expect_near_all(a.grad(), {23, 29, 35, 53, 67, 81});
  EXPECT_FALSE(b.grad().defined());
}

TEST(Matmul, TiedOperandsAccumulateBothGradients) {
  // y = A^T A with one tensor in both places: its gradient is the sum of both paths.
  Generator gen(3);
  std::vector<Tensor> in = {Tensor::randn({4, 3}, gen, kF64).requires_grad_()};
  auto r = testing::gradcheck(
      [](const std::vector<Tensor>& v) { return matmul(v[0], v[0], true, false); }, in, 1e-6, 1e-5);
  EXPECT_TRUE(r.ok) << r.first_failure;
}

TEST(Matmul, ErrorsNameOpAndShapes) {
  EXPECT_EQ(error_of([] {
              matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 2}));
            }),
            "[matmul] inner dimensions differ: (2, 3) x (2, 2)");
  EXPECT_EQ(error_of([] {
              matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}), false, true);
            }),
            "[matmul] inner dimensions differ: (2, 3) x (3, 2)^T");
  EXPECT_EQ(error_of([] {
              matmul(Tensor::zeros({3}), Tensor::zeros({3, 2}));
            }),
            "[matmul] a must be 2-D, got (3)");
  EXPECT_EQ(error_of([] {
              matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2, 1}));
            }),
            "[matmul] b must be 2-D, got (3, 2, 1)");
  const std::string dtypes = error_of([] {
    matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, kF64));
  });
  EXPECT_NE(dtypes.find("[matmul]"), std::string::npos) << dtypes;
  EXPECT_NE(dtypes.find("float64"), std::string::npos) << dtypes;
  EXPECT_NE(error_of([] {
              matmul(Tensor(), Tensor::zeros({3, 2}));
            }).find("[matmul]"),
            std::string::npos);
}

// ---- dense -------------------------------------------------------------------------------------

// x = [1 -1; 0.5 2], w = [1 0; 0 1; 1 1], b = [0.5 -1 0.25]:
// pre = [1.5 -2 0.25; 1 1 2.75], relu(pre) = [1.5 0 0.25; 1 1 2.75]. With dy = 1:
// dpre = [1 0 1; 1 1 1], db = [2 1 2], dx = dpre w = [2 1; 2 2], dw = dpre^T x = [1.5 1; 0.5 2;
// 1.5 1].
TEST(Dense, HandComputedRelu) {
  Tensor x = f64({1, -1, 0.5, 2}, {2, 2}, true);
  Tensor w = f64({1, 0, 0, 1, 1, 1}, {3, 2}, true);
  Tensor b = f64({0.5, -1, 0.25}, {3}, true);
  Tensor y = dense(x, w, b, {Act::relu, 0.0f});
  EXPECT_EQ(y.shape(), Shape({2, 3}));
  EXPECT_EQ(y.grad_fn_name(), "dense");
  expect_near_all(y, {1.5, 0, 0.25, 1, 1, 2.75});
  y.backward(Tensor::ones({2, 3}, kF64));
  expect_near_all(b.grad(), {2, 1, 2});
  expect_near_all(x.grad(), {2, 1, 2, 2});
  expect_near_all(w.grad(), {1.5, 1, 0.5, 2, 1.5, 1});
}

// x = [1 2], w = [0.5 -0.25; 1 1], b = [0.1 -3]: pre = [0.1 0], y = sigmoid(pre) =
// [0.52497918747894 0.5], dpre = y (1 - y) = [0.24937604019289197 0.25] (dy = 1).
TEST(Dense, HandComputedSigmoid) {
  Tensor x = f64({1, 2}, {1, 2}, true);
  Tensor w = f64({0.5, -0.25, 1, 1}, {2, 2}, true);
  Tensor b = f64({0.1, -3}, {2}, true);
  Tensor y = dense(x, w, b, {Act::sigmoid, 0.0f});
  expect_near_all(y, {0.52497918747894, 0.5});
  y.backward(Tensor::ones({1, 2}, kF64));
  expect_near_all(b.grad(), {0.24937604019289197, 0.25});
  expect_near_all(x.grad(), {0.374688020096446, 0.187655989951777});
  expect_near_all(w.grad(), {0.24937604019289197, 0.49875208038578395, 0.25, 0.5});
}

TEST(Dense, HandComputedGelu) {
  // gelu(1.5) = 1.5 * Phi(1.5)
  Tensor y = dense(f64({1}, {1, 1}), f64({1}, {1, 1}), f64({0.5}, {1}), {Act::gelu, 0.0f});
  expect_near_all(y, {1.399789198096713});
}

// The activations written with element-wise ops only, so the fused forward and backward can
// be checked against an independent graph.
Tensor composed_act(const Tensor& z, ActParams p) {
  const double a = p.alpha;
  switch (p.act) {
    case Act::identity:
      return z;
    case Act::relu:
      return clamp(z, 0, kInf);
    case Act::leaky_relu:
      return clamp(z, 0, kInf) + clamp(z, -kInf, 0) * a;
    case Act::elu:
      return clamp(z, 0, kInf) + (exp(clamp(z, -kInf, 0)) - 1.0) * a;
    case Act::sigmoid:
      return 1.0 / (exp(-z) + 1.0);
    case Act::tanh:
      return 1.0 - 2.0 / (exp(z * 2.0) + 1.0);
    case Act::softplus:
      return log(exp(z) + 1.0);
    case Act::gelu:
      break;
  }
  ADD_FAILURE() << "no composed form";
  return z;
}

TEST(Dense, MatchesComposedOpsForwardAndBackward) {
  const ActParams acts[] = {{Act::identity, 0}, {Act::relu, 0},    {Act::leaky_relu, 0.1f},
                            {Act::elu, 1.0f},   {Act::sigmoid, 0}, {Act::tanh, 0},
                            {Act::softplus, 0}, {Act::elu, -0.5f}, {Act::leaky_relu, -0.3f}};
  for (const ActParams& p : acts) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE("act " + std::to_string(static_cast<int>(p.act)) + " alpha " +
                   std::to_string(p.alpha) + (with_bias ? " bias" : " no bias"));
      Generator gen(11);
      Tensor x1 = Tensor::randn({6, 4}, gen, kF64).requires_grad_();
      Tensor w1 = Tensor::randn({5, 4}, gen, kF64).requires_grad_();
      Tensor b1 = with_bias ? Tensor::randn({5}, gen, kF64).requires_grad_() : Tensor();
      Tensor dy = Tensor::randn({6, 5}, gen, kF64);
      Tensor x2 = x1.detach().clone().requires_grad_();
      Tensor w2 = w1.detach().clone().requires_grad_();
      Tensor b2 = with_bias ? b1.detach().clone().requires_grad_() : Tensor();

      Tensor y1 = dense(x1, w1, b1, p);
      Tensor z = matmul(x2, w2, false, true);
      Tensor y2 = composed_act(with_bias ? z + b2 : z, p);
      expect_near_all(y1, y2.to_vector<double>());
      y1.backward(dy);
      y2.backward(dy);
      expect_near_all(x1.grad(), x2.grad().to_vector<double>());
      expect_near_all(w1.grad(), w2.grad().to_vector<double>());
      if (with_bias) expect_near_all(b1.grad(), b2.grad().to_vector<double>());
    }
  }
}

TEST(Dense, GradientsAccumulateAcrossTwoBackwardCalls) {
  Generator gen(5);
  Tensor x = Tensor::randn({3, 4}, gen, kF64).requires_grad_();
  Tensor w = Tensor::randn({2, 4}, gen, kF64).requires_grad_();
  Tensor b = Tensor::randn({2}, gen, kF64).requires_grad_();
  Tensor dy = Tensor::randn({3, 2}, gen, kF64);
  const ActParams p = {Act::tanh, 0};
  dense(x, w, b, p).backward(dy);
  const auto gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>(),
             gb = b.grad().to_vector<double>();
  dense(x, w, b, p).backward(dy);
  auto twice = [](std::vector<double> v) {
    for (double& e : v) e *= 2;
    return v;
  };
  expect_near_all(x.grad(), twice(gx));
  expect_near_all(w.grad(), twice(gw));
  expect_near_all(b.grad(), twice(gb));
}

TEST(Dense, OnlyBiasNeedsGrad) {
  // db = column sums of dy * act'(pre); here relu' = [1 0 1; 1 1 1] (see HandComputedRelu).
  Tensor x = f64({1, -1, 0.5, 2}, {2, 2});
  Tensor w = f64({1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = f64({0.5, -1, 0.25}, {3}, true);
  dense(x, w, b, {Act::relu, 0.0f}).backward(f64({1, 2, 3, 4, 5, 6}, {2, 3}));
  expect_near_all(b.grad(), {5, 5, 9});
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(Dense, NegativeAlphaKeepsThePreActivation) {
  for (ActParams p : {ActParams{Act::leaky_relu, -0.5f}, ActParams{Act::elu, -0.5f}}) {
    Generator gen(9);
    std::vector<Tensor> in = {Tensor::randn({3, 4}, gen, kF64).requires_grad_(),
                              Tensor::randn({5, 4}, gen, kF64).requires_grad_(),
                              Tensor::randn({5}, gen, kF64).requires_grad_()};
    auto r = testing::gradcheck(
        [p](const std::vector<Tensor>& v) { return dense(v[0], v[1], v[2], p); }, in, 1e-6, 1e-5);
    EXPECT_TRUE(r.ok) << "act " << static_cast<int>(p.act) << ": " << r.first_failure;
  }
}

TEST(Dense, OutputModifiedInPlaceIsDetected) {
  Tensor x = f64({1, 2}, {1, 2}, true);
  Tensor y = dense(x, f64({1, 1}, {1, 2}), Tensor(), {Act::sigmoid, 0.0f});
  {
    NoGradGuard ng;
    y.mul_(2.0);
  }
  const std::string msg = error_of([&] { y.backward(Tensor::ones({1, 1}, kF64)); });
  EXPECT_NE(msg.find("dense"), std::string::npos) << msg;
}

TEST(Dense, NoGradModeRecordsNothing) {
  Tensor x = f64({1, 2}, {1, 2}, true);
  NoGradGuard ng;
  Tensor y = dense(x, f64({1, 1}, {1, 2}), Tensor(), {Act::gelu, 0.0f});
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn_name(), "");
}

TEST(Dense, EmptyBatch) {
  Tensor x = Tensor::zeros({0, 3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor w = Tensor::ones({2, 3}, {.dtype = DType::f64, .requires_grad = true});
  Tensor b = Tensor::ones({2}, {.dtype = DType::f64, .requires_grad = true});
  Tensor y = dense(x, w, b, {Act::relu, 0.0f});
  EXPECT_EQ(y.shape(), Shape({0, 2}));
  y.backward(Tensor::zeros({0, 2}, kF64));
  expect_near_all(w.grad(), {0, 0, 0, 0, 0, 0});
  expect_near_all(b.grad(), {0, 0});
}

TEST(Dense, ZeroInputSizeGivesActivatedBias) {
  Tensor y = dense(Tensor::zeros({2, 0}, kF64), Tensor::zeros({3, 0}, kF64), f64({-1, 0.5, 2}, {3}),
                   {Act::relu, 0.0f});
  expect_near_all(y, {0, 0.5, 2, 0, 0.5, 2});
}

TEST(Dense, ErrorsNameOpAndShapes) {
  EXPECT_EQ(error_of([] {
              dense(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}), Tensor());
            }),
            "[dense] input sizes differ: x (2, 3) vs w (4, 5) (x is [N, D], w is [H, D])");
  EXPECT_EQ(error_of([] {
              dense(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3}));
            }),
            "[dense] bias must be [H] = (4) for w (4, 3), got (3)");
  EXPECT_EQ(error_of([] {
              dense(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({1, 4}));
            }),
            "[dense] bias must be [H] = (4) for w (4, 3), got (1, 4)");
  EXPECT_EQ(error_of([] {
              dense(Tensor::zeros({2, 3, 1}), Tensor::zeros({4, 3}), Tensor());
            }),
            "[dense] x must be 2-D, got (2, 3, 1)");
  EXPECT_EQ(
      error_of([] {
        dense(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor(), {static_cast<Act>(42), 0.0f});
      }),
      "[dense] unknown activation code 42");
  const std::string dtypes = error_of([] {
    dense(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({4}, kF64));
  });
  EXPECT_NE(dtypes.find("[dense]"), std::string::npos) << dtypes;
  EXPECT_NE(dtypes.find("float64"), std::string::npos) << dtypes;
}

TEST(Dense, Float32MatchesFloat64) {
  Generator gen(13);
  Tensor x = Tensor::randn({64, 100}, gen, kF64);
  Tensor w = Tensor::randn({50, 100}, gen, kF64) * 0.1;
  Tensor b = Tensor::randn({50}, gen, kF64);
  const auto want = dense(x, w, b, {Act::gelu, 0.0f}).to_vector<double>();
  const auto got = dense(x.to(DType::f32), w.to(DType::f32), b.to(DType::f32), {Act::gelu, 0.0f})
                       .to_vector<double>();
  for (std::size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-4) << i;
}

}  // namespace
}  // namespace latent
