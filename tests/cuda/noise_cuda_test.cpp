// The noise ops on the GPU against the CPU for the same generator state, at sizes around the
// four-numbers-per-Philox-block grouping (1, 3, 1025, 4099): masking, salt-and-pepper, bernoulli
// and categorical decide bit for bit as the CPU does (gradients of the masks too), gaussian noise
// agrees within 1e-6 (relative above 1), and both generators end at the same offset. Bad
// probabilities come back as NaN on the GPU. Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

constexpr std::int64_t kSizes[] = {1, 3, 1025, 4099};

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

std::uint32_t bits(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, sizeof(u));
  return u;
}

void expect_bitwise(const std::vector<float>& gpu, const std::vector<float>& cpu,
                    const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size()) << what;
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (bits(gpu[i]) != bits(cpu[i])) {
      if (bad == 0) first = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << cpu.size() << " differ, first at " << first
                     << ": gpu " << gpu[first] << " cpu " << cpu[first];
}

// Uniform values in [lo, hi), drawn on the CPU so both devices see the same input.
Tensor uniform(const Shape& shape, std::uint64_t seed, double lo = 0.0, double hi = 1.0) {
  Generator g(seed);
  return Tensor::rand(shape, g, {}, lo, hi);
}

// A generator a few blocks into its stream, so the draws do not start at offset 0.
Generator started(std::uint64_t seed) {
  Generator g(seed);
  g.take(10);
  return g;
}

// Runs a masking-style op (forward and backward with fixed weights) on both devices from the same
// generator state; expects identical values, gradients and generator offsets.
void check_keep_or_replace(const std::function<Tensor(const Tensor&, Generator&)>& op,
                           const std::string& name) {
  for (const std::int64_t n : kSizes) {
    const std::string what = name + " n=" + std::to_string(n);
    const Tensor x = uniform({n}, 3, 0.1, 0.9);
    const Tensor w = uniform({n}, 4, 0.5, 1.5);
    Generator gc = started(21), gg = started(21);
    Tensor xc = x.detach().requires_grad_();
    Tensor xg = x.to(Device::cuda()).requires_grad_();
    Tensor yc = op(xc, gc);
    Tensor yg = op(xg, gg);
    yc.backward(w);
    yg.backward(w.to(Device::cuda()));
    const std::vector<float> vc = yc.to_vector<float>();
    expect_bitwise(yg.to_vector<float>(), vc, what + " forward");
    expect_bitwise(xg.grad().to_vector<float>(), xc.grad().to_vector<float>(), what + " backward");
    EXPECT_EQ(gg.offset(), gc.offset()) << what;
    if (n == 4099) {  // both outcomes occur
      std::size_t kept = 0;
      const std::vector<float> xv = x.to_vector<float>();
      for (std::size_t i = 0; i < vc.size(); ++i) kept += vc[i] == xv[i];
      EXPECT_GT(kept, 0u) << what;
      EXPECT_LT(kept, vc.size()) << what;
    }
  }
}

TEST(NoiseCuda, MaskingNoiseMatchesCpuBitwise) {
  LATENT_REQUIRE_GPU();
  check_keep_or_replace([](const Tensor& x, Generator& g) { return masking_noise(x, 0.3, g); },
                        "masking_noise");
}

TEST(NoiseCuda, SaltAndPepperMatchesCpuBitwise) {
  LATENT_REQUIRE_GPU();
  check_keep_or_replace([](const Tensor& x, Generator& g) { return salt_and_pepper(x, 0.4, g); },
                        "salt_and_pepper");
}

TEST(NoiseCuda, GaussianNoiseMatchesCpu) {
  LATENT_REQUIRE_GPU();
  for (const std::int64_t n : kSizes) {
    const std::string what = "gaussian_noise n=" + std::to_string(n);
    const Tensor x = uniform({n}, 5);
    Generator gc = started(33), gg = started(33);
    const std::vector<float> c = gaussian_noise(x, 0.5, gc).to_vector<float>();
    const std::vector<float> g = gaussian_noise(x.to(Device::cuda()), 0.5, gg).to_vector<float>();
    ASSERT_EQ(g.size(), c.size()) << what;
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double tol = 1e-6 * std::fmax(1.0, std::fabs(static_cast<double>(c[i])));
      ASSERT_LE(std::fabs(static_cast<double>(g[i]) - static_cast<double>(c[i])), tol)
          << what << " element " << i << ": gpu " << g[i] << " cpu " << c[i];
    }
    EXPECT_EQ(gg.offset(), gc.offset()) << what;
  }
}

TEST(NoiseCuda, BernoulliMatchesCpuBitwise) {
  LATENT_REQUIRE_GPU();
  for (const std::int64_t n : kSizes) {
    const std::string what = "bernoulli n=" + std::to_string(n);
    std::vector<float> p = uniform({n}, 6).to_vector<float>();
    for (std::size_t i = 0; i < p.size(); i += 7) p[i] = (i / 7) % 2 == 0 ? 0.0f : 1.0f;
    const Tensor probs = Tensor::from_data(std::span<const float>(p), {n});
    Generator gc = started(44), gg = started(44);
    const std::vector<float> c = bernoulli(probs, gc).to_vector<float>();
    const std::vector<float> g = bernoulli(probs.to(Device::cuda()), gg).to_vector<float>();
    expect_bitwise(g, c, what);
    EXPECT_EQ(gg.offset(), gc.offset()) << what;
    for (std::size_t i = 0; i < p.size(); i += 7) EXPECT_EQ(g[i], p[i]) << what << " at " << i;
  }
}

TEST(NoiseCuda, CategoricalMatchesCpuBitwise) {
  LATENT_REQUIRE_GPU();
  constexpr std::int64_t kClasses = 6;
  for (const std::int64_t m : kSizes) {
    const std::string what = "categorical m=" + std::to_string(m);
    // Unnormalized weights; class 2 never possible, class 5 (the last) only in even rows.
    std::vector<float> p = uniform({m, kClasses}, 7, 0.0, 3.0).to_vector<float>();
    for (std::int64_t r = 0; r < m; ++r) {
      p[static_cast<std::size_t>(r * kClasses + 2)] = 0.0f;
      if (r % 2 == 1) p[static_cast<std::size_t>(r * kClasses + 5)] = 0.0f;
    }
    const Tensor probs = Tensor::from_data(std::span<const float>(p), {m, kClasses});
    Generator gc = started(55), gg = started(55);
    const std::vector<float> c = categorical(probs, gc).to_vector<float>();
    const std::vector<float> g = categorical(probs.to(Device::cuda()), gg).to_vector<float>();
    expect_bitwise(g, c, what);
    EXPECT_EQ(gg.offset(), gc.offset()) << what;
    for (std::size_t r = 0; r < g.size(); ++r) EXPECT_NE(g[r], 2.0f) << what << " row " << r;
  }
}

TEST(NoiseCuda, BadProbabilitiesGiveNan) {
  LATENT_REQUIRE_GPU();
  Generator gen(1);
  const std::vector<float> p = {0.5f, 1.5f, -0.25f, NAN, 1.0f};
  const Tensor probs = Tensor::from_data(std::span<const float>(p), {5}).to(Device::cuda());
  const std::vector<float> y = bernoulli(probs, gen).to_vector<float>();
  EXPECT_FALSE(std::isnan(y[0]));
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_EQ(y[4], 1.0f);

  // Rows: valid, all zero, a negative weight, an infinite weight.
  const std::vector<float> w = {1, 2, 3, 0, 0, 0, 1, -1, 2, 1, INFINITY, 1};
  const Tensor weights = Tensor::from_data(std::span<const float>(w), {4, 3}).to(Device::cuda());
  const std::vector<float> k = categorical(weights, gen).to_vector<float>();
  EXPECT_FALSE(std::isnan(k[0]));
  EXPECT_TRUE(std::isnan(k[1]));
  EXPECT_TRUE(std::isnan(k[2]));
  EXPECT_TRUE(std::isnan(k[3]));
}

TEST(NoiseCuda, EmptyInputs) {
  LATENT_REQUIRE_GPU();
  Generator gen(2);
  const Tensor x = Tensor::zeros({0}, {.device = Device::cuda()});
  EXPECT_EQ(masking_noise(x, 0.5, gen).numel(), 0);
  EXPECT_EQ(salt_and_pepper(x, 0.5, gen).numel(), 0);
  EXPECT_EQ(gaussian_noise(x, 1.0, gen).numel(), 0);
  EXPECT_EQ(bernoulli(x, gen).numel(), 0);
  EXPECT_EQ(categorical(Tensor::zeros({0, 3}, {.device = Device::cuda()}), gen).numel(), 0);
  EXPECT_EQ(gen.offset(), 0u);
}

}  // namespace
}  // namespace latent
