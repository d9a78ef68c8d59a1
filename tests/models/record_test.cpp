// Record once, replay many, on the CPU (dispatch::Plan): a recorded region replays its kernel calls
// on the same memory and gives, bit for bit, what running the region again gives; work that
// cannot be replayed is refused while recording; and a host value baked into a recorded call
// makes the replay differ from the eager run (the negative control of the replay tests).
#include <gtest/gtest.h>

#include <vector>

#include "core/dispatch.h"
#include "core/latent.h"
#include "models/autoencoder.h"

namespace latent {
namespace {

std::vector<std::vector<float>> snapshot(const std::vector<Tensor>& params) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : params) out.push_back(p.to_vector<float>());
  return out;
}

models::AE small_ae() {
  return models::AE({.input = 24,
                     .latent = 4,
                     .encoder = {.hidden = {16}},
                     .decoder = {.hidden = {16}},
                     .likelihood = {.kind = models::Likelihood::bernoulli},
                     .seed = 3});
}

// Eight batches of 16 rows in [0, 1].
std::vector<Tensor> batches() {
  Generator gen(9);
  std::vector<Tensor> out;
  for (int i = 0; i < 8; ++i) out.push_back(Tensor::rand({16, 24}, gen));
  return out;
}

TEST(Record, ReplayRecomputesFromWhatTheInputsHoldNow) {
  Generator gen(1);
  const Tensor x = Tensor::randn({6, 5}, gen);
  const Tensor w = Tensor::randn({3, 5}, gen);
  const Tensor b = Tensor::randn({3}, gen);
  dispatch::Plan plan;
  Tensor out;
  {
    dispatch::Recorder rec(plan);
    out = sum(dense(x, w, b, {.act = kernels::Act::tanh}), 0);
  }
  EXPECT_EQ(plan.size(), 2u);
  const Tensor x2 = Tensor::randn({6, 5}, gen);
  Tensor input = x;  // the recorded calls read x's memory: write the new values there
  input.copy_(x2);
  const auto before = dispatch::kernel_counts().calls;
  plan.replay();
  EXPECT_EQ(dispatch::kernel_counts().calls - before, 2);
  EXPECT_EQ(out.to_vector<float>(),
            sum(dense(x2, w, b, {.act = kernels::Act::tanh}), 0).to_vector<float>());
}

TEST(Record, RefusesWhatCannotBeReplayed) {
  Generator gen(2);
  const Tensor x = Tensor::randn({4, 3}, gen);
  dispatch::Plan plan;
  {
    dispatch::Recorder rec(plan);
    const Tensor s = sum(x);
    EXPECT_THROW(s.item(), Error);                        // a value read on the host
    EXPECT_THROW(s.to_vector<float>(), Error);            // likewise
    EXPECT_THROW(x.to(DType::f64), Error);                // a conversion through the host
    EXPECT_THROW(dispatch::Recorder again(plan), Error);  // one recording at a time
  }
  EXPECT_FALSE(dispatch::recording());
}

// Trains `steps` steps; with `replay` the second step is recorded and the later ones replay it,
// each after the next batch is written into the step's input buffer (the first, eager, creates the
// gradients and the optimizer state). before_step(opt, i) runs on the host before step i.
// Returns the parameters.
template <class Opt, class Hook>
std::vector<std::vector<float>> train(bool replay, int steps, Opt make_opt, Hook before_step) {
  models::AE ae = small_ae();
  ae.train();
  auto opt = make_opt(ae.parameters());
  const std::vector<Tensor> data = batches();
  Tensor input = Tensor::empty({16, 24});
  auto step = [&] {
    const Tensor loss = ae.compute_loss(input).total;
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  dispatch::Plan plan;
  for (int i = 0; i < steps; ++i) {
    input.copy_(data[static_cast<std::size_t>(i) % data.size()]);
    before_step(opt, i);
    if (!replay || i == 0) {
      step();
    } else if (i == 1) {
      dispatch::Recorder rec(plan);
      step();
    } else {
      plan.replay();
    }
  }
  return snapshot(ae.parameters());
}

template <class Opt>
std::vector<std::vector<float>> train(bool replay, int steps, Opt make_opt) {
  return train(replay, steps, make_opt, [](auto&, int) {});
}

// SGD at a constant learning rate reads nothing from the host that changes between steps: 50
// replayed steps give the very bits of 50 eager ones.
TEST(Record, ReplayedTrainingStepsEqualEagerOnesBitForBit) {
  auto sgd = [](std::vector<Tensor> p) { return optim::SGD(std::move(p), {.lr = 0.05}); };
  const auto eager = train(false, 50, sgd);
  const auto replayed = train(true, 50, sgd);
  EXPECT_EQ(eager, replayed);
  // ... and the steps did move the parameters.
  EXPECT_NE(eager, train(false, 2, sgd));
}

// Adam with a learning-rate schedule: the step count, the scheduled rate and the bias corrections
// 1 - beta^t are computed in the step's first kernel from memory, so replays equal eager steps.
TEST(Record, AdamWithAScheduleReplaysBitForBit) {
  auto adam = [](std::vector<Tensor> p) {
    optim::Adam opt(std::move(p), {.lr = 1e-2});
    optim::LrSchedule::cosine(1e-2, 40, 1e-4).with_warmup(5).attach(opt, 0);
    return opt;
  };
  const auto eager = train(false, 50, adam);
  EXPECT_EQ(eager, train(true, 50, adam));
  EXPECT_NE(eager, train(false, 2, adam));
}

// Negative control: a learning rate set on the host between steps (set_lr, as LrSchedule::apply
// does) is a value of the recorded step's arguments, so a replay repeats the recorded one and
// drifts from the eager run. The replay tests above must be able to see such a baked value.
TEST(Record, AHostValueBakedIntoTheStepMakesTheReplayDiffer) {
  auto adam = [](std::vector<Tensor> p) { return optim::Adam(std::move(p), {.lr = 1e-2}); };
  // A host value, different at every step.
  auto decay = [](optim::Adam& opt, int i) { opt.set_lr(1e-2 / (1 + i)); };
  EXPECT_NE(train(false, 20, adam, decay), train(true, 20, adam, decay));
}

}  // namespace
}  // namespace latent
