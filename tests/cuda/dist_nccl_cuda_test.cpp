// The GPU collectives through NCCL with one GPU: dist::loopback() makes them through a NCCL
// communicator of one rank (two ranks cannot share a GPU under NCCL), so the plugin, the
// communicator's creation, the all-reduce and broadcast calls and their capture in a recorded
// step's CUDA graph run on any GPU machine. The test program holds one Session from its first test
// to its last, as a program's main does (one per process): its end destroys the communicators,
// after the recorded steps that captured them, and leaves one that a step still alive holds. Skips
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

// A recorded step whose CUDA graph holds an NCCL all-reduce, kept past the Session's end by the
// last test (as a step made before the Session, or kept in a static, would be).
std::optional<dispatch::Plan> g_outliving;

class SessionEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { session_.emplace(nullptr, nullptr); }
  void TearDown() override {
    // The Session's end must not wait for ever on the communicator the graph holds: it leaves it
    // to the end of the process, saying so.
    ::testing::internal::CaptureStderr();
    session_.reset();
    const std::string said = ::testing::internal::GetCapturedStderr();
    if (g_outliving) {
      EXPECT_NE(said.find("outlive the dist::Session"), std::string::npos) << said;
      g_outliving.reset();
    }
  }

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

// Last: a recorded step holding the loopback group's communicator outlives the Session (the
// environment's end checks that the Session ends anyway).
TEST(DistNcclCuda, AStepThatOutlivesTheSessionDoesNotHoldUpItsEnd) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const Tensor t = Tensor::ones({256}).to(gpu);
  dist::loopback().all_reduce(t);  // the communicator is made outside the recording
  dispatch::Plan plan;
  {
    dispatch::Recorder recorder(plan, gpu);
    dist::loopback().all_reduce(t);
    recorder.finish();
  }
  ASSERT_TRUE(plan.is_graph());
  plan.replay();
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(), std::vector<float>(256, 1.0f));
  g_outliving.emplace(std::move(plan));
}

}  // namespace
}  // namespace latent
