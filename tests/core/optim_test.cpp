// optim: SGD, Adam, AdamW against hand-computed steps, state export/import, gradient clipping,
// and a small end-to-end fit. Expected numbers were computed in Python from the update formulas
// in float64.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/latent.h"
#include "kernels/optim.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

using Vec = std::vector<double>;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

Tensor param(const Vec& v, DType dt = DType::f64) {
  return Tensor::from_data(v, {static_cast<std::int64_t>(v.size())},
                           {.dtype = dt, .requires_grad = true});
}

void give_grad(const Tensor& p, const Vec& g) {
  p.set_grad(Tensor::from_data(g, p.shape(), {.dtype = p.dtype()}));
}

void expect_values(const Tensor& t, const Vec& want, double tol, const std::string& what) {
  const Vec got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol) << what << " element " << i;
}

Tensor state_entry(const optim::NamedTensors& st, const std::string& name) {
  for (const auto& [n, t] : st)
    if (n == name) return t;
  return Tensor();
}

const Vec kP0{1.0, -2.0, 0.5};
const Vec kG1{0.1, -0.3, 2.0};
const Vec kG2{-0.2, 0.4, 1.0};

// ---- Adam / AdamW ---------------------------------------------------------------------------

TEST(Adam, TwoStepsMatchHandComputedValues) {
  auto p = param(kP0);
  optim::Adam opt({p}, {.lr = 0.1});
  give_grad(p, kG1);
  opt.step();
  expect_values(p, {0.900000009999999, -1.9000000033333333, 0.4000000005}, 1e-13, "step 1");
  give_grad(p, kG2);
  opt.step();
  expect_values(p, {0.9366103603884888, -1.9193510436996908, 0.30678203720851044}, 1e-13, "step 2");
  const auto st = opt.state();
  expect_values(state_entry(st, "adam.m.0"), {-0.011, 0.013, 0.28}, 1e-15, "m");
  expect_values(state_entry(st, "adam.v.0"), {4.999e-05, 0.00024991, 0.004996}, 1e-15, "v");
  EXPECT_EQ(state_entry(st, "adam.step").item(), 2.0);
  EXPECT_EQ(state_entry(st, "adam.step.0").item(), 2.0);
  EXPECT_EQ(opt.step_count(), 2);
}

TEST(Adam, Float32AgreesWithTheFloat64Values) {
  auto p = param(kP0, DType::f32);
  optim::Adam opt({p}, {.lr = 0.1f});
  give_grad(p, kG1);
  opt.step();
  give_grad(p, kG2);
  opt.step();
  EXPECT_EQ(p.dtype(), DType::f32);
  expect_values(p, {0.9366103603884888, -1.9193510436996908, 0.30678203720851044}, 2e-6, "f32");
}

TEST(Adam, L2WeightDecayIsAddedToTheGradient) {
  auto p = param(kP0);
  optim::Adam opt({p}, {.lr = 0.1, .weight_decay = 0.1});
  give_grad(p, kG1);
  opt.step();
  expect_values(p, {0.9000000049999998, -1.900000002, 0.4000000004878049}, 1e-13, "step 1");
  give_grad(p, kG2);
  opt.step();
  expect_values(p, {0.877170382467154, -1.867054116906693, 0.306570104544592}, 1e-13, "step 2");
}

TEST(AdamW, DecoupledDecayDiffersFromAdam) {
  auto p = param(kP0);
  optim::AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.1});
  EXPECT_EQ(opt.name(), "adamw");
  give_grad(p, kG1);
  opt.step();
  expect_values(p, {0.890000009999999, -1.8800000033333333, 0.3950000005}, 1e-13, "step 1");
  give_grad(p, kG2);
  opt.step();
  expect_values(p, {0.9177103602884887, -1.8805510436663575, 0.2978320372035104}, 1e-13, "step 2");
  // The moments see the raw gradient (unlike Adam's L2 form).
  expect_values(state_entry(opt.state(), "adamw.m.0"), {-0.011, 0.013, 0.28}, 1e-15, "m");
  EXPECT_DOUBLE_EQ(optim::AdamW({param(kP0)}).options().weight_decay, 0.01);

  // Without decay, AdamW is Adam exactly.
  auto a = param(kP0), b = param(kP0);
  optim::Adam adam({a}, {.lr = 0.05});
  optim::AdamW adamw({b}, {.lr = 0.05, .weight_decay = 0});
  for (const Vec& g : {kG1, kG2}) {
    give_grad(a, g);
    give_grad(b, g);
    adam.step();
    adamw.step();
  }
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
}

TEST(Adam, OptionValidation) {
  auto p = param(kP0);
  EXPECT_TRUE(contains(error_of([&] { optim::Adam({p}, {.lr = -1}); }), "[adam] lr"));
  const std::string b1 = error_of([&] { optim::Adam({p}, {.beta1 = 1.0}); });
  EXPECT_TRUE(contains(b1, "[adam] beta1") && contains(b1, "[0, 1)")) << b1;
  EXPECT_TRUE(contains(error_of([&] { optim::Adam({p}, {.beta2 = -0.1}); }), "beta2"));
  EXPECT_TRUE(contains(error_of([&] { optim::Adam({p}, {.eps = 0}); }), "eps"));
  EXPECT_TRUE(
      contains(error_of([&] { optim::AdamW({p}, {.weight_decay = -1}); }), "[adamw] weight_decay"));
  EXPECT_TRUE(contains(error_of([&] { optim::Adam({p}, {.lr = std::nan("")}); }), "lr"));
  optim::Adam opt({p});
  opt.set_lr(0.5);
  EXPECT_EQ(opt.lr(), 0.5);
  EXPECT_THROW(opt.set_lr(-0.1), Error);
  EXPECT_EQ(opt.lr(), 0.5);
}

// ---- SGD ------------------------------------------------------------------------------------

const Vec kS0{1.0, -2.0};
const Vec kS1{0.5, 1.0};
const Vec kS2{-1.0, 0.25};

TEST(SGD, PlainStepWithWeightDecay) {
  auto p = param(kS0);
  optim::SGD opt({p}, {.lr = 0.1, .weight_decay = 0.01});
  give_grad(p, kS1);
  opt.step();
  expect_values(p, {0.949, -2.098}, 1e-15, "step 1");
  give_grad(p, kS2);
  opt.step();
  expect_values(p, {1.048051, -2.120902}, 1e-15, "step 2");
  EXPECT_EQ(opt.state().size(), 2u);  // no momentum buffer: just the step counts
}

TEST(SGD, MomentumWithDampeningTwoSteps) {
  auto p = param(kS0);
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
  give_grad(p, kS1);
  opt.step();  // the buffer starts as the gradient itself (no dampening on the first step)
  expect_values(p, {0.95, -2.1}, 1e-15, "step 1");
  expect_values(state_entry(opt.state(), "sgd.momentum.0"), kS1, 0, "buffer 1");
  give_grad(p, kS2);
  opt.step();
  expect_values(p, {0.995, -2.2125}, 1e-15, "step 2");
  expect_values(state_entry(opt.state(), "sgd.momentum.0"), {-0.45, 1.125}, 1e-15, "buffer 2");
}

TEST(SGD, NesterovTwoSteps) {
  auto p = param(kS0);
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  give_grad(p, kS1);
  opt.step();
  expect_values(p, {0.905, -2.19}, 1e-15, "step 1");
  give_grad(p, kS2);
  opt.step();
  expect_values(p, {1.0545, -2.3185}, 1e-15, "step 2");

  auto q = param(kS0);
  optim::SGD wd({q}, {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
  give_grad(q, kS1);
  wd.step();
  expect_values(q, {0.9031, -2.1862}, 1e-15, "wd step 1");
  give_grad(q, kS2);
  wd.step();
  expect_values(q, {1.05007411, -2.30892622}, 1e-14, "wd step 2");
}

TEST(SGD, OptionValidation) {
  auto p = param(kS0);
  const std::string e = error_of([&] { optim::SGD({p}, {.lr = 0.1, .nesterov = true}); });
  EXPECT_TRUE(contains(e, "[sgd] nesterov") && contains(e, "momentum=0")) << e;
  EXPECT_THROW(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .nesterov = true}),
               Error);
  EXPECT_THROW(optim::SGD({p}, {.lr = 0.1, .momentum = -0.5}), Error);
  EXPECT_THROW(optim::SGD({p}, {.lr = -0.1}), Error);
}

// ---- common machinery -----------------------------------------------------------------------

TEST(Optimizer, SkipsParametersWithoutGradient) {
  auto a = param(kP0), b = param({3.0, 4.0});
  optim::Adam opt({a, b}, {.lr = 0.1});
  give_grad(a, kG1);
  opt.step();
  EXPECT_EQ(b.to_vector<double>(), (Vec{3.0, 4.0}));
  EXPECT_FALSE(state_entry(opt.state(), "adam.m.1").defined());
  EXPECT_FALSE(state_entry(opt.state(), "adam.step.1").defined());
  // b's first update, at the optimizer's second step, is bias-corrected as a first update:
  // about lr * sign(g).
  give_grad(b, {1.0, -1.0});
  opt.step();
  expect_values(b, {2.9, 4.1}, 1e-7, "late parameter");
  EXPECT_EQ(state_entry(opt.state(), "adam.step.1").item(), 1.0);
  EXPECT_EQ(opt.step_count(), 2);
}

TEST(Optimizer, ZeroGrad) {
  auto p = param(kS0);
  optim::SGD opt({p}, {.lr = 0.1});
  give_grad(p, kS1);
  opt.zero_grad();
  EXPECT_EQ(p.grad().to_vector<double>(), (Vec{0.0, 0.0}));
  opt.zero_grad(/*set_to_none=*/true);
  EXPECT_FALSE(p.grad().defined());
  opt.step();  // nothing to do
  EXPECT_EQ(p.to_vector<double>(), kS0);
}

TEST(Optimizer, ConstructionErrors) {
  EXPECT_TRUE(contains(error_of([] { optim::Adam(std::vector<Tensor>{}); }), "empty"));
  auto p = param(kS0);
  const std::string dup = error_of([&] { optim::SGD({p, p}); });
  EXPECT_TRUE(contains(dup, "parameter 1 is the same tensor as parameter 0")) << dup;
  const std::string leaf = error_of([&] { optim::SGD({exp(p)}); });
  EXPECT_TRUE(contains(leaf, "not a leaf") && contains(leaf, "exp")) << leaf;
  EXPECT_THROW(optim::SGD({Tensor()}), Error);
}

TEST(Optimizer, StepBumpsTheParameterVersion) {
  auto p = param(kS0);
  optim::SGD opt({p}, {.lr = 0.1});
  auto y = sum(square(p));  // saves p for backward
  give_grad(p, kS1);
  opt.step();
  const std::string e = error_of([&] { y.backward(); });
  EXPECT_TRUE(contains(e, "modified in place")) << e;
}

TEST(Optimizer, StateRoundTripReproducesTheNextStepExactly) {
  for (int kind = 0; kind < 3; ++kind) {
    auto make = [&](std::vector<Tensor> ps) -> std::unique_ptr<optim::Optimizer> {
      if (kind == 0) return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.1});
      if (kind == 1) return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions{.lr = 0.1});
      return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    };
    auto a0 = param(kP0, DType::f32), a1 = param({0.25, 0.75}, DType::f32);
    auto opt = make({a0, a1});
    give_grad(a0, kG1);
    give_grad(a1, {0.5, -0.5});
    opt->step();
    give_grad(a0, kG2);
    opt->step();  // a1 keeps its old gradient: updated twice too
    optim::NamedTensors saved;
    for (const auto& [n, t] : opt->state()) saved.emplace_back(n, t.clone());

    // A fresh optimizer over copies of the parameters, restored from the saved state.
    auto b0 = param(a0.to_vector<double>(), DType::f32);
    auto b1 = param(a1.to_vector<double>(), DType::f32);
    auto restored = make({b0, b1});
    restored->load_state(saved);
    EXPECT_EQ(restored->step_count(), 2);
    for (auto* o : {opt.get(), restored.get()}) {
      const auto& ps = o->parameters();
      give_grad(ps[0], {0.3, 0.3, -0.7});
      give_grad(ps[1], {-1.0, 2.0});
      o->step();
    }
    EXPECT_EQ(a0.to_vector<float>(), b0.to_vector<float>()) << opt->name();
    EXPECT_EQ(a1.to_vector<float>(), b1.to_vector<float>()) << opt->name();
    // The restored state is the optimizer's own copy.
    for (const auto& [n, t] : saved)
      EXPECT_NE(state_entry(restored->state(), n).impl()->storage, t.impl()->storage);
  }
}

TEST(Optimizer, LoadStateErrorsLeaveTheStateUnchanged) {
  auto p = param(kP0), q = param({1.0, 2.0});
  optim::Adam opt({p, q}, {.lr = 0.1});
  give_grad(p, kG1);
  opt.step();
  const auto good = opt.state();
  auto with = [&](const std::string& name, Tensor t) {
    optim::NamedTensors s;
    // Valid entries with other values, so that a partial commit would show.
    for (const auto& [n, v] : good) s.emplace_back(n, v.clone().mul_(2.0));
    s.emplace_back(name, t);
    return s;
  };
  auto try_load = [&](const optim::NamedTensors& s) {
    return error_of([&] { opt.load_state(s); });
  };
  std::string e = try_load(with("sgd.momentum.0", Tensor::zeros({3}, {.dtype = DType::f64})));
  EXPECT_TRUE(contains(e, "[adam.load_state]") && contains(e, "'sgd.momentum.0'") &&
              contains(e, "not adam state"))
      << e;
  e = try_load(with("adam.m.5", Tensor::zeros({3})));
  EXPECT_TRUE(contains(e, "parameter 5") && contains(e, "2 parameters")) << e;
  e = try_load(with("adam.v.1", Tensor::zeros({3})));
  EXPECT_TRUE(contains(e, "(3)") && contains(e, "(2)")) << e;
  e = try_load(with("adam.q.0", Tensor::zeros({3})));
  EXPECT_TRUE(contains(e, "unknown entry 'adam.q.0'") && contains(e, "m, v")) << e;
  e = try_load(with("adam.step", Tensor::scalar(1.5)));
  EXPECT_TRUE(contains(e, "appears twice")) << e;
  e = try_load({{"adam.m.0", Tensor::zeros({3})}});
  EXPECT_TRUE(contains(e, "'adam.step'") && contains(e, "missing")) << e;
  e = try_load({{"adam.step", Tensor::scalar(2.5)}});
  EXPECT_TRUE(contains(e, "whole number")) << e;
  e = try_load({{"adam.step", Tensor::scalar(1)}, {"adam.m.1", Tensor::zeros({2})}});
  EXPECT_TRUE(contains(e, "without a positive 'adam.step.1'")) << e;
  // Nothing above changed the optimizer.
  const auto now = opt.state();
  ASSERT_EQ(now.size(), good.size());
  for (std::size_t i = 0; i < now.size(); ++i) {
    EXPECT_EQ(now[i].first, good[i].first);
    EXPECT_EQ(now[i].second.to_vector<double>(), good[i].second.to_vector<double>());
  }
  // An empty state with a step count resets the moments.
  opt.load_state({{"adam.step", Tensor::scalar(0)}});
  EXPECT_EQ(opt.state().size(), 1u);
}

TEST(Optimizer, FollowsAModuleConvertedAfterConstruction) {
  Generator gen(3);
  nn::Linear lin(3, 2, {}, gen);
  optim::Adam opt(lin.parameters(), {.lr = 0.01});
  auto x = Tensor::rand({4, 3}, gen);
  sum(lin.forward(x)).backward();
  opt.step();  // float32 moments
  lin.to(DType::f64);
  EXPECT_EQ(opt.parameters()[0].dtype(), DType::f64);
  opt.zero_grad();
  sum(lin.forward(x.to(DType::f64))).backward();
  opt.step();  // the moments follow the parameters
  EXPECT_EQ(state_entry(opt.state(), "adam.m.0").dtype(), DType::f64);
  EXPECT_EQ(state_entry(opt.state(), "adam.step.0").item(), 2.0);
}

// ---- clipping -------------------------------------------------------------------------------

TEST(ClipGradNorm, ScalesOnlyAboveTheThreshold) {
  auto a = param({0, 0}), b = param({0}), c = param({5});
  give_grad(a, {3.0, 4.0});
  give_grad(b, {12.0});  // c has no gradient: skipped
  EXPECT_DOUBLE_EQ(optim::clip_grad_norm({a, b, c}, 20.0), 13.0);
  EXPECT_EQ(a.grad().to_vector<double>(), (Vec{3.0, 4.0}));  // below: unchanged
  const double norm = optim::clip_grad_norm({a, b, c}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double s = 6.5 / (13.0 + 1e-6);
  expect_values(a.grad(), {3.0 * s, 4.0 * s}, 1e-15, "a");
  expect_values(b.grad(), {12.0 * s}, 1e-15, "b");
  EXPECT_NEAR(optim::grad_norm({a, b}), 6.5, 1e-6);
  EXPECT_FALSE(c.grad().defined());
  EXPECT_THROW(optim::clip_grad_norm({a}, -1.0), Error);
}

TEST(ClipGradNorm, NonFiniteNormIsReturnedAndNothingIsScaled) {
  auto a = param({0, 0}), b = param({0});
  give_grad(a, {3.0, std::numeric_limits<double>::infinity()});
  give_grad(b, {12.0});
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm({a, b}, 1.0)));
  EXPECT_EQ(b.grad().to_vector<double>(), (Vec{12.0}));
  give_grad(a, {std::nan(""), 1.0});
  EXPECT_TRUE(std::isnan(optim::clip_grad_norm({a, b}, 1.0)));
  EXPECT_EQ(b.grad().to_vector<double>(), (Vec{12.0}));
}

TEST(ClipGradNorm, Float32GradientsAndLargeTensors) {
  // Large enough to take the chunked path; the sum is exact in double for these values.
  const std::int64_t n = 100003;
  auto p = Tensor::zeros({n}, {.requires_grad = true});
  p.set_grad(Tensor::full({n}, 0.5));
  EXPECT_DOUBLE_EQ(optim::grad_norm({p}), std::sqrt(0.25 * double(n)));
  std::vector<float> x(1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) - 3.0f;
  double ref = 0;
  for (float v : x) ref += double(v) * v;
  EXPECT_EQ(kernels::cpu::sum_squares<float>(x.data(), 1000), ref);
  EXPECT_EQ(kernels::cpu::sum_squares<float>(x.data(), 0), 0.0);
}

// ---- end to end -----------------------------------------------------------------------------

TEST(Training, MlpWithAdamFitsATinyRegression) {
  Generator gen(0);
  const std::int64_t n = 64;
  auto x = Tensor::rand({n, 2}, gen, {}, -1.0, 1.0);
  // y = sin(2 x0) + x0 x1, computed on the host.
  const auto xv = x.to_vector<float>();
  std::vector<float> yv(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    yv[i] = std::sin(2.0f * xv[2 * i]) + xv[2 * i] * xv[2 * i + 1];
  auto y = Tensor::from_data(yv, {n, 1});

  nn::MLP mlp({.sizes = {2, 32, 32, 1}, .activation = Act::tanh}, gen);
  optim::Adam opt(mlp.parameters(), {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    auto loss = mse(mlp.forward(x), y);
    if (step == 0) first = loss.item();
    last = loss.item();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, first / 10) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace latent
