// Our Philox4x32-10 (kernels/philox.h) against cuRAND's Philox4_32_10 on the GPU: for several
// (seed, offset) pairs, philox::block(seed, offset) computed on the device equals cuRAND's raw
// output after curand_init(seed, subsequence 0, offset 4 * offset) (the stream layout documented
// in kernels/philox.h), read with curand4 and with four curand calls, and equals the CPU's bits.
// Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/latent.h"
#include "kernels/philox.h"

namespace latent {

#if LATENT_WITH_CUDA
namespace cuda_ref {
// tests/cuda/curand_ref.cu
void philox_blocks_on_gpu(const std::vector<std::uint64_t>& seeds,
                          const std::vector<std::uint64_t>& offsets,
                          std::vector<std::uint32_t>& ours, std::vector<std::uint32_t>& by_curand4,
                          std::vector<std::uint32_t>& by_curand);
}  // namespace cuda_ref
#endif

namespace {

TEST(CurandPhilox, DeviceBlocksEqualCurandAndCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
#if LATENT_WITH_CUDA
  // Seeds fill both key words, offsets both counter words (4 * offset stays below 2^64).
  struct Pair {
    std::uint64_t seed, offset;
  };
  const Pair pairs[] = {
      {0, 0},
      {1, 1},
      {42, 2},
      {0xffffffffull, 3},
      {0x100000000ull, 0xffffffffull},
      {0x299f31d0a4093822ull, 0x100000000ull},
      {0xdeadbeefcafef00dull, 0x85a308d3243f6a88ull >> 2},
      {0xffffffffffffffffull, 1000003},
      {7, (1ull << 61) + 5},
      {123456789, 4099},
  };
  std::vector<std::uint64_t> seeds, offsets;
  for (const Pair& p : pairs) {
    seeds.push_back(p.seed);
    offsets.push_back(p.offset);
  }
  std::vector<std::uint32_t> ours, by_curand4, by_curand;
  cuda_ref::philox_blocks_on_gpu(seeds, offsets, ours, by_curand4, by_curand);
  ASSERT_EQ(ours.size(), 4 * seeds.size());
  ASSERT_EQ(by_curand4.size(), ours.size());
  ASSERT_EQ(by_curand.size(), ours.size());
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const kernels::philox::U32x4 cpu = kernels::philox::block(seeds[i], offsets[i]);
    for (int w = 0; w < 4; ++w) {
      const std::size_t k = 4 * i + static_cast<std::size_t>(w);
      SCOPED_TRACE(::testing::Message()
                   << "seed " << seeds[i] << " offset " << offsets[i] << " word " << w);
      EXPECT_EQ(ours[k], cpu.v[w]);
      EXPECT_EQ(by_curand4[k], cpu.v[w]);
      EXPECT_EQ(by_curand[k], cpu.v[w]);
    }
  }
#endif
}

}  // namespace
}  // namespace latent
