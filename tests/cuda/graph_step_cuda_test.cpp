// The recorded training step on the GPU: a CUDA graph captured once per shape and launched for
// every later step gives the very bits of eager GPU steps (parameters, optimizer state, losses),
// with a learning-rate schedule, KL warm-up, gradient clipping and a batch of another size
// between; a replayed step allocates nothing. Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "core/backend.h"
#include "core/dispatch.h"
#include "core/latent.h"
#include "models/compiled_step.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace latent::models {
namespace {

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

struct GpuRun {
  std::vector<std::vector<float>> params;
  std::vector<std::vector<double>> opt_state;
  std::vector<float> losses;
  std::int64_t replayed = 0;
  std::string error;
};

GpuRun run(bool replay) {
  const Device gpu = Device::cuda(0);
  VAE vae({.input = 40,
           .hidden = {32, 16},
           .latent = 4,
           .warmup = {.kind = KlAnneal::linear, .steps = 10},
           .seed = 21},
          gpu);
  optim::Adam opt(vae.parameters(), {.lr = 3e-3});
  optim::LrSchedule::cosine(3e-3, 30, 1e-4).with_warmup(3).attach(opt, 0);
  CompiledStep step(vae, opt, {.grad_clip = 1.0, .replay = replay});
  Generator gen(8);
  GpuRun r;
  for (std::int64_t s = 0; s < 30; ++s) {
    const Tensor x = Tensor::rand({s % 10 == 9 ? 7 : 32, 40}, gen).to(gpu);
    vae.on_train_step(s);
    const Loss loss = step(x);
    r.losses.push_back(static_cast<float>(loss.total.item()));
  }
  for (const Tensor& p : vae.parameters()) r.params.push_back(p.to_vector<float>());
  for (const auto& [name, t] : opt.state()) r.opt_state.push_back(t.to_vector<double>());
  r.replayed = step.replayed_steps();
  r.error = step.replay_error();
  return r;
}

TEST(GraphStepCuda, GraphReplayEqualsEagerStepsBitForBit) {
  LATENT_REQUIRE_GPU();
  const GpuRun eager = run(false);
  const GpuRun graph = run(true);
  EXPECT_EQ(graph.error, "");
  // 27 full steps: the first eager, the second captured (and launched), 25 replays.
  EXPECT_EQ(graph.replayed, 25);
  EXPECT_EQ(eager.losses, graph.losses);
  EXPECT_EQ(eager.params, graph.params);
  EXPECT_EQ(eager.opt_state, graph.opt_state);
}

// The graph is captured once for its shape: later replays launch it without recording, allocate
// nothing and count the captured kernel calls.
TEST(GraphStepCuda, CapturedOnceAndReplayedWithoutAllocating) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32, .seed = 1}, gpu);
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  CompiledStep step(vae, opt);
  Generator gen(2);
  const Tensor x = Tensor::rand({128, 784}, gen).to(gpu);
  step(x);  // eager
  step(x);  // captured, then launched
  ASSERT_EQ(step.replay_error(), "");
  const std::uint64_t allocations = backend::allocation_count();
  const dispatch::KernelCounts before = dispatch::kernel_counts();
  step(x);
  const dispatch::KernelCounts after = dispatch::kernel_counts();
  EXPECT_EQ(backend::allocation_count(), allocations);
  EXPECT_EQ(step.replayed_steps(), 1);
  EXPECT_LE(after.calls - before.calls, 24);
  EXPECT_EQ(after.gemms - before.gemms, 17);
  backend::synchronize(gpu);
}

// A batch source on the GPU draws what the CPU's draws, across many blocks: the cursor moves once
// per draw, after every block has read it.
TEST(GraphStepCuda, BatchSourceDrawsLikeTheCpu) {
  LATENT_REQUIRE_GPU();
  Generator gen(4);
  const Tensor data = Tensor::rand({1000, 784}, gen);
  const std::vector<std::int64_t> order = data::batches(data, {.seed = 5, .epoch = 2}).order();
  for (const bool binarize : {false, true}) {
    data::BatchSource cpu(data, {.binarize = binarize, .seed = 3});
    data::BatchSource gpu(data.to(Device::cuda(0)), {.binarize = binarize, .seed = 3});
    cpu.start_epoch(order, 2);
    gpu.start_epoch(order, 2);
    for (std::int64_t n : {300, 300, 300, 100})
      EXPECT_EQ(gpu.draw(n).to_vector<float>(), cpu.draw(n).to_vector<float>())
          << "binarize " << binarize << ", draw of " << n;
  }
}

// The Trainer on the GPU with the data on the device: replayed steps (graph launches drawing
// their own batches) train as eager ones do, bit for bit.
TEST(GraphStepCuda, TrainerWithDataOnTheDeviceReplaysBitForBit) {
  LATENT_REQUIRE_GPU();
  auto run = [](bool replay) {
    VAE vae({.input = 40, .hidden = {32}, .latent = 4, .seed = 3}, Device::cuda(0));
    optim::Adam opt(vae.parameters(), {.lr = 3e-3});
    Generator gen(9);
    Trainer trainer(vae, opt,
                    {.epochs = 3, .batch = 32, .seed = 2, .binarize = true, .replay = replay});
    const History h = trainer.fit(Tensor::rand({200, 40}, gen));
    std::vector<std::vector<float>> params;
    for (const Tensor& p : vae.parameters()) params.push_back(p.to_vector<float>());
    return std::make_tuple(params, h.epochs.back().train, trainer.replayed_steps());
  };
  const auto [eager_params, eager_train, eager_replayed] = run(false);
  const auto [params, train, replayed] = run(true);
  EXPECT_EQ(replayed, 4 + 6 + 6);
  EXPECT_EQ(eager_params, params);
  EXPECT_EQ(eager_train, train);
}

}  // namespace
}  // namespace latent::models
