// Tests that need two CUDA GPUs; they skip themselves on fewer. The suite is named MultiGpu so that
// the GPU smoke script can leave it out on a one-GPU machine, where every other skip is a failure.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

#define LATENT_REQUIRE_TWO_GPUS() \
  if (cuda_device_count() < 2) GTEST_SKIP() << "needs two CUDA GPUs"

// A copy between GPUs reads the source on the destination's stream. The source is freed on its own
// stream right after the copy is queued, and a new block of the same size is taken at once (the
// pool hands the freed block out again) and overwritten: unless the source's stream waits for the
// copy, the overwrite can race with the copy and the destination gets the new values.
TEST(MultiGpu, PeerCopyIsSafeWhenTheSourceIsFreedAtOnce) {
  LATENT_REQUIRE_TWO_GPUS();
  const Device g0 = Device::cuda(0), g1 = Device::cuda(1);
  constexpr std::int64_t kN = std::int64_t(1) << 24;  // 64 MiB: long enough for a race to show
  for (int round = 0; round < 6; ++round) {
    Tensor dst;
    {
      const Tensor src = Tensor::full({kN}, round + 1.0, {.device = g0});
      dst = src.to(g1);
    }
    const Tensor reuse = Tensor::full({kN}, -7.0, {.device = g0});
    const std::vector<float> got = dst.to(Device::cpu()).to_vector<float>();
    std::int64_t wrong = 0;
    for (float v : got) wrong += v != static_cast<float>(round + 1);
    EXPECT_EQ(wrong, 0) << "round " << round << ": " << wrong << " elements of the copy changed";
    EXPECT_EQ(reuse.to(Device::cpu()).to_vector<float>().front(), -7.0f);
  }
}

TEST(MultiGpu, PeerCopyRoundTripIsExact) {
  LATENT_REQUIRE_TWO_GPUS();
  Generator gen(3);
  const Tensor x = Tensor::randn({1031, 17}, gen);
  const Tensor back =
      x.to(Device::cuda(0)).to(Device::cuda(1)).to(Device::cuda(0)).to(Device::cpu());
  EXPECT_EQ(back.to_vector<float>(), x.to_vector<float>());
}

}  // namespace
}  // namespace latent
