// A VAE training step on the GPU against the CPU: the same seeded model built twice (one moved to
// CUDA with Module::to), the same batch and the same explicit noise; the loss terms, every
// parameter gradient and the parameters after one Adam step agree. Then the Trainer runs two epochs
// on the GPU with dynamic binarization (bernoulli on the device) and the training loss falls. Skips
// itself without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace latent::models {
namespace {

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

// Full float32 GEMMs for the duration of a test, whatever another test left behind.
class NoTf32 {
 public:
  NoTf32() : saved_(tf32_enabled()) { set_tf32(false); }
  ~NoTf32() { set_tf32(saved_); }
  NoTf32(const NoTf32&) = delete;
  NoTf32& operator=(const NoTf32&) = delete;

 private:
  bool saved_;
};

// |gpu - cpu| <= rtol * (|cpu| + max |cpu|): relative to the element and to the tensor's scale, so
// entries that nearly cancel are judged against the size of the terms they came from.
void expect_close(const Tensor& gpu, const Tensor& cpu, double rtol, const std::string& what) {
  ASSERT_EQ(gpu.shape(), cpu.shape()) << what;
  ASSERT_TRUE(gpu.device().is_cuda()) << what;
  ASSERT_TRUE(cpu.device().is_cpu()) << what;
  const std::vector<float> g = gpu.to_vector<float>();
  const std::vector<float> c = cpu.to_vector<float>();
  double scale = 0.0;
  for (float v : c) scale = std::fmax(scale, std::fabs(static_cast<double>(v)));
  ASSERT_GT(scale, 0.0) << what << ": the reference is all zeros";
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double ref = c[i];
    const double err = std::fabs(static_cast<double>(g[i]) - ref);
    if (!(err <= rtol * (std::fabs(ref) + scale))) {
      if (bad == 0) first = i;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << c.size() << " outside tolerance, first at "
                     << first << ": gpu " << g[first] << " cpu " << c[first] << " (scale " << scale
                     << ")";
}

VAEConfig step_config() {
  return {.input = 784,
          .hidden = {128, 64},
          .latent = 16,
          .likelihood = Likelihood::bernoulli,
          .seed = 11};
}

TEST(VaeStepCuda, StepMatchesCpu) {
  LATENT_REQUIRE_GPU();
  const NoTf32 full_float;
  const Device gpu_dev = Device::cuda();
  constexpr std::int64_t kBatch = 64;
  const VAEConfig config = step_config();

  VAE cpu(config);
  VAE gpu(config);
  gpu.to(gpu_dev);
  ASSERT_EQ(gpu.device(), gpu_dev);

  // Grey levels in [0, 1] (a Fashion-MNIST-like batch) and the noise, drawn once on the CPU.
  Generator data_gen(2024);
  const Tensor x = Tensor::rand({kBatch, config.input}, data_gen);
  const Tensor eps = Tensor::randn({kBatch, config.latent}, data_gen);

  const auto cpu_params = cpu.named_parameters();
  const auto gpu_params = gpu.named_parameters();
  ASSERT_EQ(cpu_params.size(), gpu_params.size());
  for (std::size_t i = 0; i < cpu_params.size(); ++i) {
    ASSERT_EQ(cpu_params[i].first, gpu_params[i].first);
    // Built from the same seed and moved: bit-identical to start with.
    EXPECT_EQ(gpu_params[i].second.to_vector<float>(), cpu_params[i].second.to_vector<float>())
        << cpu_params[i].first;
  }

  const Loss lc = cpu.loss(cpu.forward(x, eps), x);
  const Loss lg = gpu.loss(gpu.forward(x.to(gpu_dev), eps.to(gpu_dev)), x.to(gpu_dev));
  const auto vc = lc.values();
  const auto vg = lg.values();
  ASSERT_EQ(vc.size(), vg.size());
  for (std::size_t i = 0; i < vc.size(); ++i) {
    EXPECT_EQ(vg[i].first, vc[i].first);
    EXPECT_NEAR(vg[i].second, vc[i].second, 1e-4 * std::fabs(vc[i].second) + 1e-5) << vc[i].first;
  }

  optim::Adam opt_cpu(cpu.parameters(), {.lr = 1e-3, .eps = 1e-4});
  optim::Adam opt_gpu(gpu.parameters(), {.lr = 1e-3, .eps = 1e-4});
  opt_cpu.zero_grad();
  opt_gpu.zero_grad();
  lc.total.backward();
  lg.total.backward();
  for (std::size_t i = 0; i < cpu_params.size(); ++i)
    expect_close(gpu_params[i].second.grad(), cpu_params[i].second.grad(), 1e-4,
                 "grad " + cpu_params[i].first);

  // Adam's first step moves each entry by about lr * sign(g); eps = 1e-4 (rather than 1e-8) keeps
  // gradients that cancel to rounding noise from turning that noise into a full step.
  opt_cpu.step();
  opt_gpu.step();
  for (std::size_t i = 0; i < cpu_params.size(); ++i)
    expect_close(gpu_params[i].second, cpu_params[i].second, 1e-4,
                 "after Adam " + cpu_params[i].first);
}

// Four binary-ish prototypes (pixels on with probability 0.9 or 0.1), grey levels in [0, 1].
Tensor prototype_data(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  Generator gen(seed);
  const std::vector<float> u = Tensor::rand({n, d}, gen).to_vector<float>();
  std::vector<float> v(static_cast<std::size_t>(n * d));
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t k = r % 4;
    for (std::int64_t c = 0; c < d; ++c) {
      const bool on = ((c / 4 + k) % 4) < 2;
      const float jitter = 0.05f * u[static_cast<std::size_t>(r * d + c)];
      v[static_cast<std::size_t>(r * d + c)] = on ? 0.9f + jitter : 0.05f + jitter;
    }
  }
  return Tensor::from_data(std::span<const float>(v), {n, d});
}

TEST(VaeStepCuda, TrainerWithBinarizationOnGpuLowersLoss) {
  LATENT_REQUIRE_GPU();
  const NoTf32 full_float;
  const Device dev = Device::cuda();
  const Tensor train = prototype_data(512, 64, 1).to(dev);
  const Tensor test = prototype_data(128, 64, 2).to(dev);

  VAE vae({.input = 64, .hidden = {64}, .latent = 4, .seed = 5}, dev);
  optim::Adam opt(vae.parameters(), {.lr = 1e-2});
  Trainer trainer(vae, opt, {.epochs = 2, .batch = 32, .seed = 9, .binarize = true});
  const History h = trainer.fit(train, test);

  ASSERT_EQ(h.epochs.size(), 2u);
  const double first = h.epochs[0].train_value("total");
  const double second = h.epochs[1].train_value("total");
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_TRUE(std::isfinite(second));
  EXPECT_LT(second, first);
  EXPECT_TRUE(std::isfinite(h.epochs[1].test_value("total")));
  EXPECT_EQ(vae.device(), dev);
}

}  // namespace
}  // namespace latent::models
