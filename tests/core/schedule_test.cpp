// Learning-rate schedules and add_scaled's ramps against values computed by hand from their
// formulas.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

using optim::LrSchedule;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(LrSchedule, ConstantNeverChanges) {
  const LrSchedule s = LrSchedule::constant(0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(1), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(1000000), 0.1);
  EXPECT_EQ(s.kind(), LrSchedule::Kind::constant);
}

TEST(LrSchedule, StepDecayDropsEveryNSteps) {
  const LrSchedule s = LrSchedule::step_decay(0.1, 3, 0.5);
  const double want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
  for (int i = 0; i < 10; ++i) EXPECT_DOUBLE_EQ(s.lr_at(i), want[i]) << "step " << i;
}

TEST(LrSchedule, ExponentialMultipliesEveryStep) {
  const LrSchedule s = LrSchedule::exponential(1.0, 0.9);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(1), 0.9);
  EXPECT_NEAR(s.lr_at(2), 0.81, 1e-15);
  EXPECT_NEAR(s.lr_at(10), 0.3486784401, 1e-12);
}

TEST(LrSchedule, CosineAnnealsToTheFloorAndStaysThere) {
  const LrSchedule s = LrSchedule::cosine(1.0, 4);
  // (1 + cos(pi s / 4)) / 2 for s = 0..4: 1, (1 + 1/sqrt 2)/2, 1/2, (1 - 1/sqrt 2)/2, 0.
  EXPECT_DOUBLE_EQ(s.lr_at(0), 1.0);
  EXPECT_NEAR(s.lr_at(1), 0.8535533905932737, 1e-15);
  EXPECT_NEAR(s.lr_at(2), 0.5, 1e-15);
  EXPECT_NEAR(s.lr_at(3), 0.1464466094067262, 1e-15);
  EXPECT_NEAR(s.lr_at(4), 0.0, 1e-15);
  EXPECT_NEAR(s.lr_at(100), 0.0, 1e-15);

  const LrSchedule f = LrSchedule::cosine(0.1, 2, 0.02);
  EXPECT_DOUBLE_EQ(f.lr_at(0), 0.1);
  EXPECT_NEAR(f.lr_at(1), 0.06, 1e-15);  // 0.02 + 0.08 * (1 + cos(pi/2)) / 2
  EXPECT_NEAR(f.lr_at(2), 0.02, 1e-15);
  EXPECT_NEAR(f.lr_at(7), 0.02, 1e-15);
}

TEST(LrSchedule, WarmupRisesLinearlyFromZero) {
  const LrSchedule s = LrSchedule::constant(0.2).with_warmup(4);
  const double want[] = {0.0, 0.05, 0.1, 0.15, 0.2, 0.2};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(s.lr_at(i), want[i], 1e-15) << "step " << i;
  EXPECT_EQ(s.warmup_steps(), 4);
}

TEST(LrSchedule, WarmupComposesWithEveryBase) {
  // From half of base(0), then the base counts from the end of the warm-up.
  const LrSchedule d = LrSchedule::step_decay(0.1, 2, 0.5).with_warmup(2, 0.5);
  const double want[] = {0.05, 0.075, 0.1, 0.1, 0.05, 0.05, 0.025};
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(d.lr_at(i), want[i], 1e-15) << "step " << i;

  const LrSchedule c = LrSchedule::cosine(1.0, 4).with_warmup(2);
  EXPECT_NEAR(c.lr_at(0), 0.0, 1e-15);
  EXPECT_NEAR(c.lr_at(1), 0.5, 1e-15);
  EXPECT_NEAR(c.lr_at(2), 1.0, 1e-15);
  EXPECT_NEAR(c.lr_at(3), 0.8535533905932737, 1e-15);
  EXPECT_NEAR(c.lr_at(6), 0.0, 1e-15);

  const LrSchedule e = LrSchedule::exponential(2.0, 0.5).with_warmup(1);
  EXPECT_NEAR(e.lr_at(0), 0.0, 1e-15);
  EXPECT_NEAR(e.lr_at(1), 2.0, 1e-15);
  EXPECT_NEAR(e.lr_at(3), 0.5, 1e-15);

  // A zero-step warm-up changes nothing.
  const LrSchedule z = LrSchedule::exponential(2.0, 0.5).with_warmup(0);
  EXPECT_NEAR(z.lr_at(0), 2.0, 1e-15);
  EXPECT_NEAR(z.lr_at(1), 1.0, 1e-15);
}

TEST(LrSchedule, ApplySetsTheOptimizersLearningRate) {
  Tensor p = Tensor::zeros({3}, {.requires_grad = true});
  optim::SGD opt({p}, {.lr = 1.0});
  const LrSchedule s = LrSchedule::step_decay(0.4, 1, 0.5);
  s.apply(opt, 0);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.4);
  s.apply(opt, 2);
  EXPECT_DOUBLE_EQ(opt.lr(), 0.1);
}

TEST(LrSchedule, DescribeNamesTheScheduleAndItsArguments) {
  const std::string d = LrSchedule::cosine(0.5, 100, 0.01).with_warmup(10).describe();
  EXPECT_TRUE(contains(d, "cosine")) << d;
  EXPECT_TRUE(contains(d, "total=100")) << d;
  EXPECT_TRUE(contains(d, "warmup(10")) << d;
}

TEST(LrSchedule, BadArgumentsAreClearErrors) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(contains(error_of([] { LrSchedule::constant(-1e-3); }), "[lr_schedule] lr must"));
  EXPECT_TRUE(contains(error_of([&] { LrSchedule::constant(nan); }), "lr must"));
  EXPECT_TRUE(contains(error_of([&] { LrSchedule::exponential(inf, 0.5); }), "lr must"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::step_decay(0.1, 0, 0.5); }), "every"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::step_decay(0.1, 2, 0.0); }), "gamma"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::step_decay(0.1, 2, 1.5); }), "gamma"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::exponential(0.1, -0.5); }), "gamma"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::cosine(0.1, 0); }), "total_steps"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::cosine(0.1, 10, 0.2); }), "floor"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::cosine(0.1, 10, -0.1); }), "floor"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::constant(0.1).with_warmup(-1); }), "warm-up"));
  EXPECT_TRUE(
      contains(error_of([] { LrSchedule::constant(0.1).with_warmup(5, 1.5); }), "start_factor"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::constant(0.1).with_warmup(5).with_warmup(5); }),
                       "already has a warm-up"));
  EXPECT_TRUE(contains(error_of([] { LrSchedule::constant(0.1).lr_at(-1); }), "step must"));
}

// add_scaled with a ramp: the kernel computes w from the count in memory, writes it, and counts
// the step; the ramps' factors as the formulas give them.
TEST(Ramp, AddScaledCountsItsSteps) {
  using kernels::Ramp;
  using kernels::RampKind;
  const Ramp lin{.kind = RampKind::linear, .steps = 4};
  EXPECT_EQ(kernels::ramp_factor(lin, -2), 0.0);
  EXPECT_EQ(kernels::ramp_factor(lin, 1), 0.25);
  EXPECT_EQ(kernels::ramp_factor(lin, 9), 1.0);
  const Ramp cyc{.kind = RampKind::cyclical, .steps = 10, .ratio = 0.4};
  EXPECT_EQ(kernels::ramp_factor(cyc, 10), 0.0);
  EXPECT_DOUBLE_EQ(kernels::ramp_factor(cyc, 13), 0.75);
  EXPECT_EQ(kernels::ramp_factor(cyc, 19), 1.0);
  EXPECT_EQ(kernels::ramp_factor(Ramp{}, 5), 1.0);

  const Tensor a = Tensor::full({}, 1.0), b = Tensor::full({}, 2.0);
  Tensor step = Tensor::zeros({2});
  const Ramp ramp{.kind = RampKind::linear, .steps = 4, .scale = 3.0};
  for (int s = 0; s < 6; ++s) {
    const ScaledSum out = add_scaled(a, b, ramp, step);
    const double want = 3.0 * std::min(1.0, s / 4.0);
    EXPECT_DOUBLE_EQ(out.weight.item(), want) << s;
    EXPECT_DOUBLE_EQ(out.scaled.item(), 2.0 * want) << s;
    EXPECT_DOUBLE_EQ(out.sum.item(), 1.0 + 2.0 * want) << s;
    std::int64_t count = 0;
    std::memcpy(&count, step.raw_data(), sizeof count);
    EXPECT_EQ(count, s + 1);
  }
  EXPECT_TRUE(
      contains(error_of([&] { add_scaled(a, b, ramp, Tensor::zeros({1})); }), "needs 8 bytes"));
  EXPECT_TRUE(contains(
      error_of([&] { add_scaled(a, b, Ramp{.kind = RampKind::linear, .steps = 0}, step); }),
      "steps >= 1"));
}

}  // namespace
}  // namespace latent
