// Every differentiable op of the case table against central differences in float64, and a
// negative control proving the check catches a wrong backward.
#include <gtest/gtest.h>

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
