// Philox4x32-10 known answers (Random123's published kat_vectors) and the generator's streams.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/latent.h"
#include "kernels/philox.h"

namespace latent {
namespace {

using kernels::philox::U32x4;

struct Kat {
  U32x4 ctr;
  std::uint32_t k0, k1;
  U32x4 expect;
};

TEST(Philox, Random123KnownAnswers) {
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& k : kats) {
    const U32x4 r = kernels::philox::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(r.v[i], k.expect.v[i]) << "word " << i;
  }
}

TEST(Philox, BlockLayoutIsSeedAndCounter) {
  // seed = key (low, high), block = counter words 0 and 1.
  const U32x4 a = kernels::philox::block(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull);
  const U32x4 b =
      kernels::philox::philox4x32_10({{0x243f6a88u, 0x85a308d3u, 0, 0}}, 0xa4093822u, 0x299f31d0u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a.v[i], b.v[i]);
}

TEST(Philox, UniformIsInOpenInterval) {
  EXPECT_EQ(kernels::philox::to_uniform(0u), 0x1p-24f);
  EXPECT_EQ(kernels::philox::to_uniform(0xffffffffu), 1.0f - 0x1p-24f);
}

TEST(Generator, TakeAdvancesByBlocks) {
  Generator g(5);
  EXPECT_EQ(g.take(1), 0u);
  EXPECT_EQ(g.offset(), 1u);
  EXPECT_EQ(g.take(8), 1u);
  EXPECT_EQ(g.offset(), 3u);
  EXPECT_EQ(g.take(9), 3u);
  EXPECT_EQ(g.offset(), 6u);
}

TEST(Generator, SameStateSameNumbers) {
  Generator a(42), b(42), c(43);
  const auto x = Tensor::randn({1000}, a).to_vector<float>();
  const auto y = Tensor::randn({1000}, b).to_vector<float>();
  const auto z = Tensor::randn({1000}, c).to_vector<float>();
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  // The next draw continues the stream; restoring (seed, offset) replays it.
  Generator d(42);
  d.set_state(42, a.offset());
  EXPECT_EQ(Tensor::rand({10}, a).to_vector<float>(), Tensor::rand({10}, d).to_vector<float>());
}

TEST(Generator, ElementIMatchesNormalAt) {
  Generator g(9);
  g.take(7);  // a non-zero offset
  const std::uint64_t off = g.offset();
  const auto x = Tensor::randn({13}, g).to_vector<float>();
  for (std::uint64_t i = 0; i < 13; ++i)
    EXPECT_EQ(x[i], kernels::philox::normal_at(9, off, i)) << i;
}

TEST(Generator, FloatAndDoubleDrawTheSameStream) {
  Generator a(3), b(3);
  const auto f = Tensor::randn({33}, a).to_vector<float>();
  const auto d = Tensor::randn({33}, b, {.dtype = DType::f64}).to_vector<double>();
  for (std::size_t i = 0; i < f.size(); ++i) EXPECT_EQ(static_cast<double>(f[i]), d[i]);
}

TEST(Generator, NormalAndUniformMoments) {
  Generator g(1);
  const std::int64_t n = 200000;
  const auto z = Tensor::randn({n}, g, {}, 2.0, 3.0).to_vector<float>();
  double s = 0, s2 = 0;
  for (float v : z) s += v, s2 += double(v) * v;
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 2.0, 0.03);
  EXPECT_NEAR(var, 9.0, 0.15);
  const auto u = Tensor::rand({n}, g, {}, -1.0, 3.0).to_vector<float>();
  double su = 0;
  float lo = 10, hi = -10;
  for (float v : u) su += v, lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_NEAR(su / n, 1.0, 0.02);
  EXPECT_GE(lo, -1.0f);
  EXPECT_LE(hi, 3.0f);
}

// Stacked draws in one launch equal successive draws, also where a draw's size is not a multiple
// of four (each draw then skips the unused numbers of its last block), in f32 and f64.
TEST(Generator, RandnDrawsEqualSuccessiveDraws) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t rows : {1, 3, 8}) {
      Generator a(21), b(21);
      std::vector<Tensor> parts;
      for (int d = 0; d < 5; ++d) parts.push_back(Tensor::randn({rows, 7}, a, {.dtype = dtype}));
      const Tensor stacked = Tensor::randn_draws(5, {rows, 7}, b, {.dtype = dtype});
      EXPECT_EQ(stacked.shape(), Shape({5 * rows, 7}));
      EXPECT_EQ(stacked.to_vector<double>(), concat_rows(parts).to_vector<double>());
      EXPECT_EQ(a.offset(), b.offset());
    }
  }
  Generator g(1);
  EXPECT_THROW(Tensor::randn_draws(0, {3, 2}, g), Error);
  EXPECT_THROW(Tensor::randn_draws(2, Shape(), g), Error);
}

// The revision moves when what a recorded draw baked in changes (the seed, the offset's memory),
// and only then.
TEST(Generator, RevisionMovesWithTheSeedAndTheMemory) {
  Generator g(3);
  const std::uint64_t r0 = g.revision();
  g.set_state(3, 40);  // the same seed: only the offset
  EXPECT_EQ(g.revision(), r0);
  g.set_state(4, 40);
  const std::uint64_t r1 = g.revision();
  EXPECT_NE(r1, r0);
  Tensor x = Tensor::zeros({8});
  bernoulli(x, g);  // the offset moves into memory
  const std::uint64_t r2 = g.revision();
  EXPECT_NE(r2, r1);
  bernoulli(x, g);
  g.set_state(4, 7);
  EXPECT_EQ(g.revision(), r2);
  EXPECT_EQ(g.offset(), 7u);
  g = Generator(4);
  EXPECT_NE(g.revision(), r2);
  Generator h(5);
  const std::uint64_t rh = h.revision();
  g = std::move(h);
  EXPECT_NE(g.revision(), rh);
  EXPECT_NE(h.revision(), rh);  // NOLINT(bugprone-use-after-move): a moved-from generator is valid
  EXPECT_EQ(g.seed(), 5u);
}

TEST(Generator, BadArguments) {
  Generator g(1);
  EXPECT_THROW(Tensor::rand({3}, g, {}, 1.0, 0.0), Error);
  EXPECT_THROW(Tensor::randn({3}, g, {}, 0.0, -1.0), Error);
}

}  // namespace
}  // namespace latent
