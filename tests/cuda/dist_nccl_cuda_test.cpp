// The GPU collectives through NCCL with one GPU: dist::loopback() makes them through a NCCL
// communicator of one rank (two ranks cannot share a GPU under NCCL), so the plugin, the
// communicator's creation, the all-reduce and broadcast calls and their capture in a recorded
// step's CUDA graph run on any GPU machine. The test program holds one Session from its first test
// to its last, as a program's main does (one per process): its end destroys the communicators,
// after the recorded steps that captured them. Skips
// itself without a GPU; with one, a NCCL plugin that cannot be loaded is a failure.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/compiled_step.h"
#include "models/vae.h"

namespace latent {
namespace {

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

class SessionEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { session_.emplace(nullptr, nullptr); }
  void TearDown() override { session_.reset(); }

 private:
  std::optional<dist::Session> session_;
};
[[maybe_unused]] ::testing::Environment* const kSession =
    ::testing::AddGlobalTestEnvironment(new SessionEnvironment);

TEST(DistNcclCuda, LoopbackCollectivesLeaveTheValues) {
  LATENT_REQUIRE_GPU();
  ASSERT_TRUE(dist::built_with_nccl()) << "this latent was built without NCCL";
  const Device gpu = Device::cuda(0);
  Generator gen(3);
  const Tensor host = Tensor::randn({1000, 7}, gen);
  const std::vector<float> want = host.to_vector<float>();
  const Tensor t = host.to(gpu);
  for (const dist::ReduceOp op :
       {dist::ReduceOp::sum, dist::ReduceOp::mean, dist::ReduceOp::min, dist::ReduceOp::max}) {
    dist::loopback().all_reduce(t, op);
    EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), want);
  }
  dist::loopback().broadcast(t, 0);
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), want);
  EXPECT_EQ(dist::loopback().nccl_error(), "");  // what the watchdog asks of a world's
}

struct StepRun {
  std::vector<std::vector<float>> params;
  std::int64_t replayed = 0;
  std::string error;
};

StepRun train(dist::Group* group) {
  const Device gpu = Device::cuda(0);
  models::VAE vae({.input = 64, .hidden = {32}, .latent = 4, .seed = 5}, gpu);
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  models::CompiledStep step(vae, opt, {.grad_clip = 1.0, .group = group});
  Generator gen(9);
  for (int s = 0; s < 12; ++s) step(Tensor::rand({32, 64}, gen).to(gpu));
  StepRun r;
  for (const Tensor& p : vae.parameters()) r.params.push_back(p.to_vector<float>());
  r.replayed = step.replayed_steps();
  r.error = step.replay_error();
  return r;
}

// The gradient all-reduce inside the recorded step (ncclAllReduce captured in the CUDA graph) of
// a world of one changes nothing: the same bits as the step without it, replayed as often.
TEST(DistNcclCuda, AllReduceInsideTheCapturedStep) {
  LATENT_REQUIRE_GPU();
  const StepRun alone = train(nullptr);
  const StepRun nccl = train(&dist::loopback());
  EXPECT_EQ(nccl.error, "");
  EXPECT_EQ(nccl.replayed, alone.replayed);
  EXPECT_GT(nccl.replayed, 0);
  EXPECT_EQ(nccl.params, alone.params);
}

// A recorded step whose graph captured an NCCL all-reduce holds the group's communicator while
// it lives (a Session that ends meanwhile leaves the communicator, since NCCL would wait for the
// graph); a capture dropped holds nothing.
TEST(DistNcclCuda, RecordedStepsHoldTheirCommunicatorWhileTheyLive) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  dist::Group& g = dist::loopback();
  const Tensor t = Tensor::ones({256}).to(gpu);
  g.all_reduce(t);  // the communicator is made outside the recording
  const int before = g.captured_collectives();
  {
    dispatch::Plan plan;
    {
      dispatch::Recorder recorder(plan, gpu);
      g.all_reduce(t);
      recorder.finish();
    }
    ASSERT_TRUE(plan.is_graph());
    EXPECT_EQ(g.captured_collectives(), before + 1);
    plan.replay();
    EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), std::vector<float>(256, 1.0f));
    dispatch::Plan moved;
    moved = std::move(plan);
    EXPECT_EQ(g.captured_collectives(), before + 1);
  }
  EXPECT_EQ(g.captured_collectives(), before);
  {
    dispatch::Plan dropped;
    dispatch::Recorder recorder(dropped, gpu);  // never finished: the capture is dropped
    g.all_reduce(t);
  }
  EXPECT_EQ(g.captured_collectives(), before);
}

}  // namespace
}  // namespace latent
