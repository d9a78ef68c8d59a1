// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11), as used by Random123 and
// cuRAND. The same __host__ __device__ code runs on both backends, so a (seed, offset) pair names
// the same numbers on the CPU and on the GPU.
//
// Stream layout used everywhere in latent: key = seed (low word, high word); counter =
// (block low word, block high word, 0, 0), where block = offset + i / 4 for the i-th 32-bit draw.
// This equals cuRAND's Philox4_32_10 with the same seed, subsequence 0 and offset 4 * offset.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/common.h"

namespace latent::kernels::philox {

struct U32x4 {
  std::uint32_t v[4];
};

constexpr std::uint32_t kM0 = 0xD2511F53u;
constexpr std::uint32_t kM1 = 0xCD9E8D57u;
constexpr std::uint32_t kW0 = 0x9E3779B9u;
constexpr std::uint32_t kW1 = 0xBB67AE85u;

LATENT_HD void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

// The raw 10-round block function: 128 random bits from a 128-bit counter and a 64-bit key.
LATENT_HD U32x4 philox4x32_10(U32x4 ctr, std::uint32_t k0, std::uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kM0, ctr.v[0], hi0, lo0);
    mulhilo(kM1, ctr.v[2], hi1, lo1);
    ctr = U32x4{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
    k0 += kW0;
    k1 += kW1;
  }
  return ctr;
}

// The block of four 32-bit draws at position `block` of the stream keyed by `seed`.
LATENT_HD U32x4 block(std::uint64_t seed, std::uint64_t block) {
  const U32x4 ctr{
      {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), 0u, 0u}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

// Uniform float in the open interval (0, 1): 23 random bits, centred in their bucket, so the
// extremes are 2^-24 and 1 - 2^-24 (both exact in float) and log(u), log(1 - u) stay finite.
LATENT_HD float to_uniform(std::uint32_t x) {
  return static_cast<float>(x >> 9) * 1.1920928955078125e-7f + 5.9604644775390625e-8f;
}

// Four standard normals from one block by Box-Muller on (u0, u1) and (u2, u3). Computed in float
// on both backends; the CPU and the GPU agree to a few ulp (libm vs CUDA math).
LATENT_HD void to_normal4(const U32x4& r, float out[4]) {
  constexpr float kTwoPi = 6.28318530717958647692f;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int p = 0; p < 2; ++p) {
    const float u1 = to_uniform(r.v[2 * p]);
    const float u2 = to_uniform(r.v[2 * p + 1]);
    const float rad = sqrtf(-2.0f * logf(u1));
    const float theta = kTwoPi * u2;
    out[2 * p] = rad * cosf(theta);
    out[2 * p + 1] = rad * sinf(theta);
  }
}

// The i-th standard normal of the stream (seed, offset): element i lives in block offset + i/4.
LATENT_HD float normal_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t i) {
  float z[4];
  to_normal4(block(seed, offset + i / 4), z);
  return z[i % 4];
}

// The i-th uniform in (0, 1) of the stream (seed, offset).
LATENT_HD float uniform_at(std::uint64_t seed, std::uint64_t offset, std::uint64_t i) {
  const U32x4 r = block(seed, offset + i / 4);
  return to_uniform(r.v[i % 4]);
}

// A draw whose kernel moves the generator's offset itself (Generator::take_inside), with no
// launch of its own: the kernel reads its start from *counter (its Key's base), and
// once every thread has read it (on the GPU: the last block to finish, counted in *done, which is
// 0 between calls) writes *used = start, for the kernels that draw the same numbers again, and
// *counter = start + blocks. Empty (counter null): nothing to move.
struct Take {
  std::uint64_t* counter = nullptr;
  std::uint64_t* used = nullptr;
  unsigned long long* done = nullptr;
  std::uint64_t blocks = 0;
};

// A draw that is one share of a larger one (data parallelism: one rank's rows of a batch): the
// kernel's element i is element at(i) of the whole draw, (i / run) * stride + skip + i % run, so
// the ranks together draw exactly the numbers of the whole draw. run 0: element i itself. Kernels
// take a per-element path for a mapped draw (each element's Philox block computed on its own).
struct Shard {
  std::uint64_t run = 0;
  std::uint64_t stride = 0;
  std::uint64_t skip = 0;
  LATENT_HD bool mapped() const { return run != 0; }
  LATENT_HD std::uint64_t at(std::uint64_t i) const {
    return run == 0 ? i : (i / run) * stride + skip + i % run;
  }
};

// Where a draw's numbers start in the stream of `seed`: block offset + *base (base null: offset
// alone). A draw whose start lives in memory (the generator's counter, or the `used` its first
// kernel wrote) is read when the kernel runs, so a recorded step draws new numbers at every replay.
struct Key {
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
  const std::uint64_t* base = nullptr;
  // Set for the first kernel of a draw made with Generator::take_inside: that kernel moves the
  // offset (its base is then the generator's counter); empty otherwise.
  Take take;
  // The share of a larger draw this draw is (empty: the whole draw).
  Shard shard;
  LATENT_HD std::uint64_t start() const { return offset + (base ? *base : 0); }
};

// The write that completes a Take, by one thread once every thread has read the start.
LATENT_HD void complete_take(const Take& take) {
  const std::uint64_t start = *take.counter;
  *take.used = start;
  *take.counter = start + take.blocks;
}

// Blocks consumed by a draw of n numbers: a draw advances the generator's offset by this much.
LATENT_HD std::uint64_t blocks_for(std::uint64_t n) {
  return (n + 3) / 4;
}

}  // namespace latent::kernels::philox
