// Autograd mechanics: scalar and explicit-gradient backward, accumulation, fan-out, reuse, tied
// weights, detach, no_grad, the graph freed after backward, deep chains, in-place detection.
#include <gtest/gtest.h>

#include <cmath>

#include "core/dispatch.h"
#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

Tensor vec(std::vector<double> v, bool grad = true) {
  const auto n = static_cast<std::int64_t>(v.size());
  return Tensor::from_data(v, {n}, {.dtype = DType::f64, .requires_grad = grad});
}

std::vector<double> grad_of(const Tensor& t) {
  return t.grad().to_vector<double>();
}

TEST(Autograd, ScalarBackward) {
  auto x = vec({2.0});
  auto y = mul(x, x);  // x^2, the same tensor twice
  y.backward();
  EXPECT_EQ(grad_of(x), std::vector<double>{4.0});
}

TEST(Autograd, ExplicitUpstreamGradient) {
  auto x = vec({1.0, 2.0, 3.0});
  auto y = mul(x, 3.0);
  y.backward(vec({1.0, 10.0, 100.0}, false));
  EXPECT_EQ(grad_of(x), (std::vector<double>{3, 30, 300}));
}

TEST(Autograd, NonScalarWithoutGradientIsAnError) {
  auto x = vec({1.0, 2.0});
  auto y = mul(x, 2.0);
  const std::string msg = error_of([&] { y.backward(); });
  EXPECT_NE(msg.find("(2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[backward]"), std::string::npos) << msg;
  EXPECT_THROW(y.backward(vec({1.0, 2.0, 3.0}, false)), Error);  // wrong gradient shape
}

TEST(Autograd, BackwardOnTensorWithoutGradIsAnError) {
  auto x = vec({1.0}, false);
  EXPECT_THROW(exp(x).backward(), Error);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  auto x = vec({1.0, -1.0});
  mul(x, 2.0).backward(vec({1, 1}, false));
  mul(x, 5.0).backward(vec({1, 1}, false));
  EXPECT_EQ(grad_of(x), (std::vector<double>{7, 7}));
  x.zero_grad();
  EXPECT_EQ(grad_of(x), (std::vector<double>{0, 0}));
}

TEST(Autograd, FanOutSumsContributions) {
  // y = exp(x) * x + x: dy/dx = exp(x) * (x + 1) + 1
  auto x = vec({0.5});
  auto e = exp(x);
  auto y = add(mul(e, x), x);
  y.backward();
  EXPECT_NEAR(grad_of(x)[0], std::exp(0.5) * 1.5 + 1.0, 1e-12);
}

TEST(Autograd, DiamondGraph) {
  // a = 2x; b = a*a; c = a+3; y = b*c  ->  dy/dx = 2*(2a*c + b)
  auto x = vec({1.5});
  auto a = mul(x, 2.0);
  auto y = mul(mul(a, a), add(a, 3.0));
  y.backward();
  const double av = 3.0;
  EXPECT_NEAR(grad_of(x)[0], 2.0 * (2 * av * (av + 3.0) + av * av), 1e-12);
}

TEST(Autograd, TiedWeightsAccumulate) {
  // The same leaf used in two places of a model: gradients add up.
  auto w = vec({2.0});
  auto x1 = vec({3.0}, false), x2 = vec({5.0}, false);
  auto y = add(mul(w, x1), mul(w, x2));
  y.backward();
  EXPECT_EQ(grad_of(w), std::vector<double>{8.0});
}

TEST(Autograd, DetachCutsTheGraph) {
  auto x = vec({2.0});
  auto y = mul(mul(x, 3.0).detach(), x);  // only the second factor carries gradient
  y.backward();
  EXPECT_EQ(grad_of(x), std::vector<double>{6.0});
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  auto x = vec({2.0});
  Tensor y;
  {
    NoGradGuard ng;
    EXPECT_FALSE(grad_enabled());
    y = mul(x, 3.0);
    { NoGradGuard nested; }
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_TRUE(y.is_leaf());
}

TEST(Autograd, LeavesAndNonLeaves) {
  auto x = vec({1.0});
  auto y = exp(x);
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(y.is_leaf());
  EXPECT_EQ(y.grad_fn_name(), "exp");
  EXPECT_THROW(y.requires_grad_(), Error);
}

TEST(Autograd, GraphIsFreedAfterBackward) {
  auto x = vec({1.0, 2.0});
  auto y = exp(x);  // saves x and y
  const long before = x.impl()->storage.use_count();
  auto s = mul(y, 2.0);
  s.backward(vec({1, 1}, false));
  EXPECT_LT(x.impl()->storage.use_count(), before + 1);
  // A second pass through the freed graph is a clear error naming the op.
  const std::string msg = error_of([&] { s.backward(vec({1, 1}, false)); });
  EXPECT_NE(msg.find("already freed"), std::string::npos) << msg;
  // Using a tensor of the freed graph in a new computation and going back through it, too.
  auto t = mul(y, 5.0);
  EXPECT_NE(error_of([&] { t.backward(vec({1, 1}, false)); }).find("'exp'"), std::string::npos);
  // Detached, it is a constant again.
  auto u = mul(y.detach(), x);
  u.backward(vec({1, 1}, false));
}

TEST(Autograd, SavedTensorModifiedInPlaceIsDetected) {
  auto x = vec({1.0, 2.0});
  auto y = exp(x);
  auto z = mul(y, y);
  {
    NoGradGuard ng;
    y.mul_(2.0);  // y was saved by mul
  }
  const std::string msg = error_of([&] { z.backward(vec({1, 1}, false)); });
  EXPECT_NE(msg.find("modified in place"), std::string::npos) << msg;
}

TEST(Autograd, DeepChainHasNoRecursion) {
  // 100k nodes: a recursive walk or destructor would overflow the stack.
  auto x = vec({1.0});
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-6);
  y.backward();
  EXPECT_EQ(grad_of(x), std::vector<double>{1.0});
  Tensor z = x;
  for (int i = 0; i < 100000; ++i) z = add(z, 1e-6);
  z = Tensor();  // dropped without backward: destroyed iteratively
  SUCCEED();
}

// An empty batch plus a bias broadcasts to the empty batch, either way round, and the bias gets a
// gradient of zeros.
TEST(Autograd, EmptyBatchPlusBiasGivesTheBiasZeros) {
  for (const bool bias_first : {false, true}) {
    const Tensor x = Tensor::zeros({0, 5}).requires_grad_();
    const Tensor b = Tensor::ones({5}).requires_grad_();
    const Tensor y = bias_first ? add(b, x) : add(x, b);
    EXPECT_EQ(y.shape(), (Shape{0, 5}));
    sum(y).backward();
    ASSERT_TRUE(b.grad().defined()) << bias_first;
    EXPECT_EQ(b.grad().to_vector<float>(), std::vector<float>(5, 0.0f)) << bias_first;
    EXPECT_EQ(x.grad().shape(), (Shape{0, 5}));
  }
  // Shapes that fit neither way are still refused.
  EXPECT_NE(error_of([] {
              (void)add(Tensor::zeros({0, 5}), Tensor::zeros({4}));
            }).find("shapes cannot be broadcast: (0, 5) and (4)"),
            std::string::npos);
}

TEST(Autograd, GradientOfLeafWithoutPathStaysUndefined) {
  auto x = vec({1.0});
  auto unused = vec({1.0});
  exp(x).backward();
  EXPECT_FALSE(unused.grad().defined());
}

TEST(Autograd, BackwardFromLeaf) {
  auto x = vec({1.0, 2.0});
  x.backward(vec({3, 4}, false));
  EXPECT_EQ(grad_of(x), (std::vector<double>{3, 4}));
}

// zero_grad() runs no kernel; the gradient reads as zero, and the next backward overwrites it.
TEST(Autograd, ZeroGradMarksInsteadOfFilling) {
  Generator gen(3);
  const Tensor x = Tensor::randn({6, 4}, gen);
  const Tensor w = Tensor::randn({3, 4}, gen).requires_grad_();
  sum(dense(x, w, Tensor())).backward();
  const std::vector<float> first = w.grad().to_vector<float>();
  const std::int64_t before = dispatch::kernel_counts().calls;
  w.zero_grad();
  EXPECT_EQ(dispatch::kernel_counts().calls, before);
  sum(dense(x, w, Tensor())).backward();  // overwrites: the same gradient, not twice it
  EXPECT_EQ(w.grad().to_vector<float>(), first);
  w.zero_grad();
  for (float v : w.grad().to_vector<float>()) EXPECT_EQ(v, 0.0f);
  // Without zero_grad gradients still add up.
  sum(dense(x, w, Tensor())).backward();
  sum(dense(x, w, Tensor())).backward();
  const std::vector<float> twice = w.grad().to_vector<float>();
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2 * first[i]);
}

// Gradients handed over without a copy (the unit seed, a loss's stored gradient) are never
// written by a later contribution: the next pass starts from 1 again.
TEST(Autograd, HandedOverGradientsAreNotWrittenInto) {
  auto x = vec({0.5, -1.0});
  auto t = vec({1.0, 0.0}, false);
  for (int pass = 0; pass < 3; ++pass) {
    x.zero_grad();
    const Tensor l = bce_with_logits(x, t, Reduction::sum);
    add(l, l).backward();  // two contributions to l's gradient: the second adds to a copy
    const std::vector<double> g = grad_of(x);
    EXPECT_NEAR(g[0], 2 * (1 / (1 + std::exp(-0.5)) - 1), 1e-12) << pass;
    EXPECT_NEAR(g[1], 2 * (1 / (1 + std::exp(1.0))), 1e-12) << pass;
  }
  const Tensor l = bce_with_logits(x, t, Reduction::sum);
  x.zero_grad();
  l.backward();
  EXPECT_NEAR(grad_of(x)[0], 1 / (1 + std::exp(-0.5)) - 1, 1e-12);
}

}  // namespace
}  // namespace latent
