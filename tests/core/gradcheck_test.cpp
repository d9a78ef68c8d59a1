// Every differentiable op of the case table against central differences in float64, and a
// negative control proving the check catches a wrong backward.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "op_cases.h"
#include "support/gradcheck.h"

namespace latent::testing {
namespace {

class GradCheck : public ::testing::TestWithParam<std::size_t> {};

TEST_P(GradCheck, MatchesCentralDifferences) {
  const OpCase& c = op_cases()[GetParam()];
  if (!c.differentiable) GTEST_SKIP() << c.name << " is not differentiable";
  auto inputs = make_inputs(c, c.grad_n, DType::f64, Device::cpu(), 2024, true);
  const GradCheckResult r = gradcheck(c.fn, inputs, c.grad_atol, c.grad_rtol);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.first_failure << " (max abs err " << r.max_abs_err
                    << ")";
}

std::string case_name(const ::testing::TestParamInfo<std::size_t>& info) {
  std::string s;
  for (char ch : op_cases()[info.param].name)
    s += ch == '/' ? std::string("__")
                   : std::string(1, std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
  return s;
}

INSTANTIATE_TEST_SUITE_P(OpCases, GradCheck, ::testing::Range<std::size_t>(0, op_cases().size()),
                         case_name);

// A backward kernel stores into a gradient nothing wrote yet in the pass and adds to one that
// holds something: the op applied twice to the same inputs gives exactly twice the gradient of
// one application (the second backward adds where the first stored).
class AddsToEarlierGradients : public ::testing::TestWithParam<std::size_t> {};

TEST_P(AddsToEarlierGradients, TwoUsesGiveTwiceTheGradient) {
  const OpCase& c = op_cases()[GetParam()];
  if (!c.differentiable) GTEST_SKIP() << c.name << " is not differentiable";
  auto inputs = make_inputs(c, c.grad_n, DType::f64, Device::cpu(), 2025, true);
  Generator gen(3);
  const Tensor y0 = c.fn(inputs);
  const Tensor w = Tensor::rand(y0.shape(), gen, {.dtype = DType::f64});
  auto grads = [&](int uses) {
    for (const Tensor& t : inputs) t.zero_grad();
    Tensor loss;
    for (int u = 0; u < uses; ++u) {
      const Tensor term = sum(mul(c.fn(inputs), w));
      loss = loss.defined() ? add(loss, term) : term;
    }
    loss.backward();
    std::vector<std::vector<double>> g;
    for (const Tensor& t : inputs)
      g.push_back(t.grad().defined() ? t.grad().to_vector<double>() : std::vector<double>());
    return g;
  };
  const auto once = grads(1);
  const auto twice = grads(2);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ASSERT_EQ(once[i].size(), twice[i].size()) << c.name << " input " << i;
    for (std::size_t k = 0; k < once[i].size(); ++k)
      EXPECT_NEAR(twice[i][k], 2 * once[i][k], 1e-12 * (1 + std::abs(once[i][k])))
          << c.name << " input " << i << " element " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(OpCases, AddsToEarlierGradients,
                         ::testing::Range<std::size_t>(0, op_cases().size()), case_name);

TEST(OpCaseTable, NamesAreUniqueAndShapesValid) {
  std::set<std::string> names;
  for (const OpCase& c : op_cases()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
    auto inputs = make_inputs(c, 3, DType::f32, Device::cpu(), 1, false);
    Tensor out;
    EXPECT_NO_THROW(out = c.fn(inputs)) << c.name;
  }
}

// y = 3x with a backward that claims 2: the check must fail.
Tensor wrong_triple(const Tensor& x) {
  Tensor y = mul(x.detach(), 3.0);
  autograd::record("wrong_triple", y, {&x},
                   [](const Tensor& dy, autograd::GradSink& g) { g.accumulate(0, mul(dy, 2.0)); });
  return y;
}

TEST(GradCheckControl, WrongBackwardFails) {
  Generator gen(3);
  Tensor x = Tensor::randn({3, 4}, gen, {.dtype = DType::f64, .requires_grad = true});
  auto r =
      gradcheck([](const std::vector<Tensor>& in) { return wrong_triple(in[0]); }, {x}, 1e-6, 1e-5);
  EXPECT_FALSE(r.ok);
  EXPECT_GE(r.max_abs_err, 0.4);  // |2 - 3| * w with w in [0.5, 1.5]
}

TEST(GradCheckControl, CorrectBackwardPasses) {
  Generator gen(3);
  Tensor x = Tensor::randn({3, 4}, gen, {.dtype = DType::f64, .requires_grad = true});
  auto r =
      gradcheck([](const std::vector<Tensor>& in) { return mul(in[0], 3.0); }, {x}, 1e-6, 1e-5);
  EXPECT_TRUE(r.ok) << r.first_failure;
}

}  // namespace
}  // namespace latent::testing
