// Activations and their derivatives: values computed independently (python3, math module),
// stability at large |x|, backward passes, name parsing, and error paths.
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

Tensor f64(const std::vector<double>& v) {
  return Tensor::from_data(std::span<const double>(v), {static_cast<std::int64_t>(v.size())},
                           {.dtype = DType::f64});
}
Tensor f32(const std::vector<float>& v) {
  return Tensor::from_data(std::span<const float>(v), {static_cast<std::int64_t>(v.size())});
}

void expect_all_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * std::max(1.0, std::fabs(want[i]))) << "element " << i;
}

const std::vector<double> kX = {-1.5, -0.5, 0.25, 2.0};

struct Expected {
  ActParams params;
  std::vector<double> f, g, h;  // act, act', act'' at kX
};

// act, act' and act'' at kX, from python3's math module.
std::vector<Expected> expected_values() {
  return {
      {{.act = Act::gelu},
       {-0.10021080190328713, -0.15426876936299344, 0.14967658142073093, 1.9544997361036416},
       {-0.12746919222997954, 0.13250487534383712, 0.695373354883636, 1.085231801078197},
       {-0.032379398916472936, 0.6161143218375241, 0.7491694763055206, -0.10798193302637613}},
      {{.act = Act::sigmoid},
       {0.18242552380635632, 0.37754066879814546, 0.5621765008857981, 0.8807970779778823},
       {0.14914645207033284, 0.23500371220159447, 0.24613408273759835, 0.10499358540350662},
       {0.09473021278475266, 0.05755679485232072, -0.03060751202671876, -0.07996250105615312}},
      {{.act = Act::tanh},
       {-0.9051482536448664, -0.46211715726000974, 0.24491866240370913, 0.9640275800758169},
       {0.18070663892364858, 0.7864477329659274, 0.940014848806378, 0.07065082485316443},
       {0.3271325972875479, 0.7268619813835873, -0.46045435881856595, -0.13621868742711296}},
      {{.act = Act::softplus},
       {0.2014132779827524, 0.4740769841801067, 0.8259394198788436, 2.1269280110429727},
       {0.18242552380635632, 0.37754066879814546, 0.5621765008857981, 0.8807970779778823},
       {0.14914645207033284, 0.23500371220159447, 0.24613408273759835, 0.10499358540350662}},
      {{.act = Act::elu, .alpha = 0.5f},
       {-0.3884349199257851, -0.1967346701436833, 0.25, 2.0},
       {0.11156508007421491, 0.3032653298563167, 1, 1},
       {0.11156508007421491, 0.3032653298563167, 0, 0}},
      {{.act = Act::relu}, {0, 0, 0.25, 2.0}, {0, 0, 1, 1}, {0, 0, 0, 0}},
      {{.act = Act::leaky_relu, .alpha = 0.25f},
       {-0.375, -0.125, 0.25, 2.0},
       {0.25, 0.25, 1, 1},
       {0, 0, 0, 0}},
      {{.act = Act::identity}, kX, {1, 1, 1, 1}, {0, 0, 0, 0}},
  };
}

TEST(Activation, ValuesAndDerivativesFloat64) {
  for (const Expected& e : expected_values()) {
    SCOPED_TRACE(act_name(e.params.act));
    expect_all_near(activation(f64(kX), e.params).to_vector<double>(), e.f, 1e-14);
    expect_all_near(activation_grad(f64(kX), e.params).to_vector<double>(), e.g, 1e-14);

    // Backward of activation: dy * act'(x); of activation_grad: dy * act''(x).
    const std::vector<double> dy = {1.0, -2.0, 0.5, 3.0};
    std::vector<double> want_g(4), want_h(4);
    for (std::size_t i = 0; i < 4; ++i) {
      want_g[i] = dy[i] * e.g[i];
      want_h[i] = dy[i] * e.h[i];
    }
    Tensor x = f64(kX).requires_grad_();
    activation(x, e.params).backward(f64(dy));
    expect_all_near(x.grad().to_vector<double>(), want_g, 1e-14);
    Tensor x2 = f64(kX).requires_grad_();
    activation_grad(x2, e.params).backward(f64(dy));
    expect_all_near(x2.grad().to_vector<double>(), want_h, 1e-14);
  }
}

TEST(Activation, ValuesFloat32) {
  const std::vector<float> x32(kX.begin(), kX.end());
  for (const Expected& e : expected_values()) {
    SCOPED_TRACE(act_name(e.params.act));
    Tensor y = activation(f32(x32), e.params);
    EXPECT_EQ(y.dtype(), DType::f32);
    expect_all_near(y.to_vector<double>(), e.f, 2e-6);
    expect_all_near(activation_grad(f32(x32), e.params).to_vector<double>(), e.g, 2e-6);
  }
}

TEST(Activation, NamedFunctions) {
  EXPECT_DOUBLE_EQ(gelu(f64({1.0})).item(), 0.8413447460685429);
  EXPECT_DOUBLE_EQ(elu(f64({-1.0})).item(), -0.6321205588285577);  // alpha = 1
  EXPECT_DOUBLE_EQ(elu(f64({-1.0}), 0.5).item(), 0.5 * -0.6321205588285577);
  EXPECT_DOUBLE_EQ(relu(f64({-3.0})).item(), 0.0);
  EXPECT_DOUBLE_EQ(relu(f64({3.0})).item(), 3.0);
  // The default slope 0.01 is held as a float parameter.
  EXPECT_NEAR(leaky_relu(f64({-2.0})).item(), -0.02, 1e-9);
  EXPECT_DOUBLE_EQ(leaky_relu(f64({-2.0}), 0.5).item(), -1.0);
  EXPECT_DOUBLE_EQ(sigmoid(f64({0.0})).item(), 0.5);
  EXPECT_DOUBLE_EQ(tanh(f64({0.5})).item(), 0.46211715726000974);
  EXPECT_DOUBLE_EQ(softplus(f64({0.0})).item(), 0.6931471805599453);
}

TEST(Activation, StableAtLargeInputs) {
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dt == DType::f32 ? "float32" : "float64");
    auto t = [&](double v) {
      return Tensor::from_data(std::span<const double>(&v, 1), {1}, {.dtype = dt});
    };
    const double tol = dt == DType::f32 ? 1e-6 : 1e-14;
    // softplus(-30) = log1p(e^-30), which a naive log(1 + e^x) rounds to 0.
    EXPECT_NEAR(softplus(t(-30)).item(), 9.357622968839737e-14, 9.4e-14 * tol);
    EXPECT_NEAR(softplus(t(30)).item(), 30.000000000000092, 30 * tol);
    EXPECT_EQ(softplus(t(1000)).item(), 1000.0);  // e^1000 overflows in the naive form
    EXPECT_EQ(softplus(t(-1000)).item(), 0.0);
    EXPECT_EQ(activation_grad(t(1000), {.act = Act::softplus}).item(), 1.0);
    // sigmoid(+-50): e^50 fits a float but e^100 does not; neither branch may overflow.
    EXPECT_EQ(sigmoid(t(50)).item(), 1.0);
    EXPECT_NEAR(sigmoid(t(-50)).item(), 1.9287498479639178e-22, 1.93e-22 * tol);
    for (double v : {-50.0, 50.0, -100.0, 100.0, -1000.0, 1000.0}) {
      for (Act a : {Act::gelu, Act::sigmoid, Act::tanh, Act::softplus, Act::elu}) {
        const ActParams p{.act = a, .alpha = 1.0f};
        EXPECT_TRUE(std::isfinite(activation(t(v), p).item())) << act_name(a) << " at " << v;
        EXPECT_TRUE(std::isfinite(activation_grad(t(v), p).item())) << act_name(a) << " at " << v;
        Tensor x = t(v).requires_grad_();
        activation_grad(x, p).backward();
        EXPECT_TRUE(std::isfinite(x.grad().item())) << act_name(a) << "'' at " << v;
      }
    }
    EXPECT_EQ(tanh(t(50)).item(), 1.0);
    EXPECT_EQ(tanh(t(-50)).item(), -1.0);
    EXPECT_EQ(activation_grad(t(50), {.act = Act::tanh}).item(), 0.0);
    EXPECT_NEAR(gelu(t(-10)).item(), 0.0, 1e-20);
    EXPECT_EQ(gelu(t(10)).item(), 10.0);
  }
}

// The deep contractive penalty differentiates through act': d/dx sum(act'(x)^2) = 2 act' act''.
TEST(Activation, GradientThroughDerivative) {
  Tensor x = f64({0.3}).requires_grad_();
  Tensor penalty = sum(square(activation_grad(x, {.act = Act::tanh})));
  penalty.backward();
  EXPECT_NEAR(x.grad().item(), -0.9758688882365896, 1e-14);
}

TEST(Activation, KeepsShapeAndHandlesEmpty) {
  Generator gen(7);
  Tensor x = Tensor::randn({2, 3, 4}, gen);
  Tensor y = gelu(x);
  EXPECT_EQ(y.shape(), x.shape());
  Tensor e = Tensor::zeros({0, 5});
  EXPECT_EQ(sigmoid(e).shape(), (Shape{0, 5}));
  EXPECT_EQ(activation_grad(e, {.act = Act::gelu}).shape(), (Shape{0, 5}));
}

// Above the parallel threshold every element still gets its own formula.
TEST(Activation, LargeTensorMatchesScalarFormula) {
  const std::int64_t n = 100003;
  std::vector<double> xv(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) xv[static_cast<std::size_t>(i)] = -8.0 + 16.0 * i / n;
  Tensor x = f64(xv).requires_grad_();
  Tensor y = sigmoid(x);
  y.backward(Tensor::ones({n}, {.dtype = DType::f64}));
  const auto yv = y.to_vector<double>();
  const auto gv = x.grad().to_vector<double>();
  for (std::int64_t i = 0; i < n; i += 997) {
    const double s = 1.0 / (1.0 + std::exp(-xv[static_cast<std::size_t>(i)]));
    EXPECT_NEAR(yv[static_cast<std::size_t>(i)], s, 1e-15);
    EXPECT_NEAR(gv[static_cast<std::size_t>(i)], s * (1 - s), 1e-15);
  }
}

TEST(Activation, GraphNodeNames) {
  Tensor x = f64({0.5, -0.5}).requires_grad_();
  EXPECT_EQ(relu(x).grad_fn_name(), "relu");
  EXPECT_EQ(leaky_relu(x).grad_fn_name(), "leaky_relu");
  EXPECT_EQ(activation_grad(x, {.act = Act::tanh}).grad_fn_name(), "tanh_grad");
  NoGradGuard ng;
  EXPECT_EQ(relu(x).grad_fn_name(), "");
}

TEST(Activation, ParseAndName) {
  for (Act a : {Act::identity, Act::relu, Act::leaky_relu, Act::elu, Act::gelu, Act::sigmoid,
                Act::tanh, Act::softplus})
    EXPECT_EQ(parse_act(act_name(a)), a);
  EXPECT_STREQ(act_name(Act::leaky_relu), "leaky_relu");
  EXPECT_EQ(parse_act("gelu"), Act::gelu);

  const std::string msg = error_of([] { parse_act("swish"); });
  EXPECT_NE(msg.find("[parse_act]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'swish'"), std::string::npos) << msg;
  for (const char* name :
       {"identity", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus"})
    EXPECT_NE(msg.find(name), std::string::npos) << msg;
  EXPECT_THROW(parse_act("ReLU"), Error);  // names are exact
  EXPECT_THROW(parse_act(""), Error);
}

TEST(Activation, Errors) {
  const std::string undefined = error_of([] { relu(Tensor()); });
  EXPECT_NE(undefined.find("[relu]"), std::string::npos) << undefined;
  EXPECT_THROW(activation_grad(Tensor(), {.act = Act::gelu}), Error);
  const std::string bad = error_of([] { activation(f64({1.0}), {.act = static_cast<Act>(42)}); });
  EXPECT_NE(bad.find("42"), std::string::npos) << bad;
  EXPECT_THROW(act_name(static_cast<Act>(-1)), Error);
}

}  // namespace
}  // namespace latent
