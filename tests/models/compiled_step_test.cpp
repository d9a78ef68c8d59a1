// models::CompiledStep in a loop of one's own: replayed steps equal eager ones bit for bit, a
// batch of another size runs eagerly, and a change the recorded step cannot see (set_lr) is
// picked up by recording again.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "core/backend.h"
#include "core/latent.h"
#include "models/compiled_step.h"
#include "models/vae.h"

namespace latent::models {
namespace {

VAE make_vae() {
  return VAE({.input = 20,
              .hidden = {12},
              .latent = 3,
              .warmup = {.kind = KlAnneal::linear, .steps = 8},
              .seed = 11});
}

// What run() does besides the steps.
struct Loop {
  bool tell_steps = true;       // call on_train_step (the VAE counts its steps without it)
  std::int64_t reseed_at = -1;  // reassign the model's generator before this step
  std::int64_t jump_at = -1;    // on_train_step(100) before this step (back the step after)
};

// 24 steps over batches of 16 rows, with a batch of 5 rows every 6th step and the learning rate
// halved at step 12. Returns the parameters and every step's loss.
std::pair<std::vector<std::vector<float>>, std::vector<double>> run(bool replay,
                                                                    std::int64_t* replayed,
                                                                    Loop loop = {}) {
  VAE vae = make_vae();
  optim::Adam opt(vae.parameters(), {.lr = 1e-2});
  CompiledStep step(vae, opt, {.grad_clip = 2.0, .replay = replay});
  Generator gen(4);
  std::vector<double> losses;
  for (std::int64_t s = 0; s < 24; ++s) {
    if (s == 12) opt.set_lr(5e-3);
    if (s == loop.reseed_at) vae.generator() = Generator(99);
    const Tensor x = Tensor::rand({s % 6 == 5 ? 5 : 16, 20}, gen);
    if (loop.tell_steps) vae.on_train_step(s);
    if (s == loop.jump_at) vae.on_train_step(100);
    losses.push_back(step(x).total.item());
  }
  std::vector<std::vector<float>> params;
  for (const Tensor& p : vae.parameters()) params.push_back(p.to_vector<float>());
  *replayed = step.replayed_steps();
  return {params, losses};
}

TEST(CompiledStep, ReplaysOwnLoopsBitForBit) {
  std::int64_t eager_replayed = 0, replayed = 0;
  const auto eager = run(false, &eager_replayed);
  const auto fast = run(true, &replayed);
  EXPECT_EQ(eager_replayed, 0);
  // Full batches: 20. Eager among them: the first (warm-up) and the first after set_lr; recorded:
  // the second and the second after set_lr.
  EXPECT_EQ(replayed, 20 - 4);
  EXPECT_EQ(eager.first, fast.first);
  EXPECT_EQ(eager.second, fast.second);
}

// A first batch smaller than the later ones (a first fit on a small set) does not keep the later,
// larger batches eager: the larger size is recorded and replayed, with an eager run's bits.
TEST(CompiledStep, ALargerBatchThanTheFirstIsRecordedAnew) {
  auto go = [](bool replay, std::int64_t* replayed) {
    VAE vae = make_vae();
    optim::Adam opt(vae.parameters(), {.lr = 1e-2});
    CompiledStep step(vae, opt, {.replay = replay});
    Generator gen(4);
    std::vector<double> losses;
    for (std::int64_t s = 0; s < 10; ++s)
      losses.push_back(step(Tensor::rand({s < 3 ? 5 : 16, 20}, gen)).total.item());
    *replayed = step.replayed_steps();
    std::vector<std::vector<float>> params;
    for (const Tensor& p : vae.parameters()) params.push_back(p.to_vector<float>());
    return std::make_pair(params, losses);
  };
  std::int64_t eager_replayed = 0, replayed = 0;
  const auto eager = go(false, &eager_replayed);
  const auto fast = go(true, &replayed);
  // 5 rows: warm-up, recorded, replayed; 16 rows (new shapes for the model): eager, recorded,
  // then 5 replays. Before, every 16-row step ran eagerly.
  EXPECT_EQ(replayed, 1 + 5);
  EXPECT_EQ(eager.first, fast.first);
  EXPECT_EQ(eager.second, fast.second);
}

// The KL warm-up's count lives in memory and moves with every step, replayed ones included: a
// loop that never tells the model its step, or one that jumps, gets what eager steps get.
TEST(CompiledStep, TheKlWarmupCountsReplayedSteps) {
  for (const Loop loop : {Loop{.tell_steps = false}, Loop{.jump_at = 3}}) {
    std::int64_t eager_replayed = 0, replayed = 0;
    const auto eager = run(false, &eager_replayed, loop);
    const auto fast = run(true, &replayed, loop);
    EXPECT_EQ(replayed, 20 - 4);
    EXPECT_EQ(eager.first, fast.first);
    EXPECT_EQ(eager.second, fast.second);
    // The same as telling every step (no jump), or not (a jump moves the weight to beta).
    std::int64_t told_replayed = 0;
    const auto told = run(true, &told_replayed);
    if (loop.jump_at < 0)
      EXPECT_EQ(told.second, fast.second);
    else
      EXPECT_NE(told.second, fast.second);
  }
}

// A generator reassigned between steps changes the seed the recorded step drew with and the
// memory of its offset: the step is recorded again, and the draws are the new generator's.
TEST(CompiledStep, AReassignedGeneratorIsRecordedAgain) {
  // While replaying (8), right after the first eager step (1) and right after the eager step
  // that follows set_lr (13).
  for (const std::int64_t at : {8, 1, 13}) {
    std::int64_t eager_replayed = 0, replayed = 0;
    const auto eager = run(false, &eager_replayed, {.reseed_at = at});
    const auto fast = run(true, &replayed, {.reseed_at = at});
    // One more eager step and recording than without the reseed, but where the reseed comes
    // before a recording anyway (1, 13): then one more eager step only.
    EXPECT_EQ(replayed, at == 8 ? 20 - 6 : 20 - 5) << at;
    EXPECT_EQ(eager.first, fast.first) << at;
    EXPECT_EQ(eager.second, fast.second) << at;
  }
}

// Two training losses before one backward (gradient accumulation): each keeps the KL weight of
// its own step, so the sum's gradient is the sum of the two steps' gradients.
TEST(CompiledStep, TwoLossesBeforeOneBackwardKeepTheirKlWeights) {
  VAE vae = make_vae();
  vae.train();
  Generator gen(8);
  const Tensor x = Tensor::rand({16, 20}, gen);
  const Tensor eps = Tensor::randn({16, 3}, gen);
  auto grads = [&](bool together) {
    vae.on_train_step(2);
    for (const Tensor& p : vae.parameters()) p.zero_grad();
    std::vector<std::vector<float>> g;
    if (together) {
      const Loss a = vae.loss(vae.forward(x, eps), x);
      const Loss b = vae.loss(vae.forward(x, eps), x);
      add(a.total, b.total).backward();
    } else {
      vae.loss(vae.forward(x, eps), x).total.backward();
      vae.loss(vae.forward(x, eps), x).total.backward();  // accumulates
    }
    for (const Tensor& p : vae.parameters()) g.push_back(p.grad().to_vector<float>());
    return g;
  };
  const auto apart = grads(false);
  const auto together = grads(true);
  ASSERT_EQ(apart.size(), together.size());
  for (std::size_t i = 0; i < apart.size(); ++i)
    for (std::size_t k = 0; k < apart[i].size(); ++k)
      EXPECT_NEAR(apart[i][k], together[i][k], 1e-5f * (1 + std::abs(apart[i][k]))) << i;
}

// A replayed step allocates nothing: every buffer it uses was kept from the recording.
TEST(CompiledStep, AReplayedStepAllocatesNothing) {
  VAE vae = make_vae();
  optim::Adam opt(vae.parameters(), {.lr = 1e-2});
  CompiledStep step(vae, opt, {.grad_clip = 1.0});
  Generator gen(5);
  const Tensor x = Tensor::rand({16, 20}, gen);
  for (std::int64_t s = 0; s < 6; ++s) {
    vae.on_train_step(s);
    const std::uint64_t before = backend::allocation_count();
    step(x);
    const std::uint64_t allocated = backend::allocation_count() - before;
    if (s < 2) {
      EXPECT_FALSE(step.replayed_last()) << "step " << s;  // eager, then recorded
      EXPECT_GT(allocated, 0u) << "step " << s;
    } else {
      EXPECT_TRUE(step.replayed_last()) << "step " << s;
      EXPECT_EQ(allocated, 0u) << "step " << s;
    }
  }
}

TEST(CompiledStep, BadInputIsAnError) {
  VAE vae = make_vae();
  optim::SGD opt(vae.parameters(), {.lr = 0.1});
  EXPECT_THROW(CompiledStep(vae, opt, {.grad_clip = -1.0}), Error);
  CompiledStep step(vae, opt);
  EXPECT_THROW(step(Tensor()), Error);
  EXPECT_THROW(step(Tensor::zeros({4})), Error);
}

// Batches drawn inside the step from a source in memory: replays draw the next rows themselves
// and give the bits of eager steps (binarization on, a partial batch at each epoch's end).
TEST(CompiledStep, BatchesDrawnInsideTheStepReplayBitForBit) {
  auto run_source = [](bool replay) {
    VAE vae = make_vae();
    optim::Adam opt(vae.parameters(), {.lr = 1e-2});
    CompiledStep step(vae, opt, {.grad_clip = 2.0, .replay = replay});
    Generator gen(6);
    const Tensor data = Tensor::rand({70, 20}, gen);
    data::BatchSource src(data, {.binarize = true, .seed = 2});
    std::vector<double> losses;
    std::int64_t s = 0;
    for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
      src.start_epoch(data::batches(data, {.seed = 1, .epoch = epoch}).order(), epoch);
      while (src.left() > 0) {
        vae.on_train_step(s++);
        losses.push_back(step(src, std::min<std::int64_t>(16, src.left())).total.item());
      }
    }
    std::vector<std::vector<float>> params;
    for (const Tensor& p : vae.parameters()) params.push_back(p.to_vector<float>());
    return std::make_tuple(params, losses, step.replayed_steps());
  };
  const auto [eager_params, eager_losses, eager_replayed] = run_source(false);
  const auto [params, losses, replayed] = run_source(true);
  EXPECT_EQ(eager_replayed, 0);
  EXPECT_EQ(replayed, 3 * 4 - 2);  // 4 full batches per epoch; the first two are not replays
  EXPECT_EQ(eager_losses, losses);
  EXPECT_EQ(eager_params, params);
}

}  // namespace
}  // namespace latent::models
