// Kernel calls per op and per training step, as the dispatcher counts them (the same count on every
// device: one call is one kernel of the CPU or the GPU backend).
#include <gtest/gtest.h>

#include <cstdio>

#include "core/dispatch.h"
#include "core/latent.h"
#include "models/autoencoder.h"
#include "models/contractive.h"
#include "models/denoising.h"
#include "models/iwae.h"
#include "models/sparse.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace latent {
namespace {

struct Count {
  std::int64_t calls = 0, gemms = 0;
};

template <class Fn>
Count count(Fn&& fn) {
  const dispatch::KernelCounts before = dispatch::kernel_counts();
  fn();
  const dispatch::KernelCounts after = dispatch::kernel_counts();
  return {after.calls - before.calls, after.gemms - before.gemms};
}

TEST(KernelCount, OneCallPerKernelAndGemmsApart) {
  Generator gen(1);
  const Tensor x = Tensor::randn({8, 5}, gen);
  const Tensor w = Tensor::randn({3, 5}, gen).requires_grad_();
  const Tensor b = Tensor::randn({3}, gen).requires_grad_();
  Tensor y;
  // The dense forward is one kernel holding the GEMM, bias and activation.
  const Count fwd = count([&] { y = dense(x, w, b, {.act = kernels::Act::relu}); });
  EXPECT_EQ(fwd.calls, 1);
  EXPECT_EQ(fwd.gemms, 1);
  const Count unary = count([&] { (void)exp(x); });
  EXPECT_EQ(unary.calls, 1);
  EXPECT_EQ(unary.gemms, 0);
  // Backward of the dense layer (x needs no gradient): the activation/bias pass and dW's GEMM.
  const Tensor s = sum(y);
  const Count bwd = count([&] { s.backward(); });
  EXPECT_EQ(bwd.gemms, 1);
  EXPECT_GE(bwd.calls, 2);
}

// One training step of the VAE 784-512-256-32 (Bernoulli, Adam) at batch 128, and of the AE with
// the same sizes. The counts are a ceiling that may only come down; the VAE's is the goal of 24.
TEST(KernelCount, TrainingStepsStayUnderTheirCeilings) {
  Generator gen(2);
  const Tensor x = Tensor::rand({128, 784}, gen);
  models::VAE vae({.input = 784,
                   .hidden = {512, 256},
                   .latent = 32,
                   .likelihood = models::Likelihood::bernoulli,
                   .seed = 0});
  models::AE ae({.input = 784,
                 .latent = 32,
                 .encoder = {.hidden = {512, 256}},
                 .decoder = {.hidden = {256, 512}},
                 .likelihood = {.kind = models::Likelihood::bernoulli},
                 .seed = 0});
  struct Case {
    const char* name;
    models::Autoencoder* model;
    std::int64_t ceiling_calls, gemms;
  };
  for (const Case& c : {Case{"vae", &vae, 23, 17}, Case{"ae", &ae, 20, 17}}) {
    optim::Adam opt(c.model->parameters(), {.lr = 1e-3});
    auto step = [&] {
      const models::Loss loss = c.model->compute_loss(x);
      opt.zero_grad();
      loss.total.backward();
      opt.step();
    };
    step();  // the first step creates the gradients and the optimizer state
    dispatch::KernelTrace trace;
    const Count n = count(step);
    std::string seq;
    for (const char* k : trace.names()) seq += std::string(seq.empty() ? "" : " ") + k;
    std::printf("%s: %s\n", c.name, seq.c_str());
    std::printf("%s training step at batch 128: %lld kernel calls, %lld GEMMs\n", c.name,
                static_cast<long long>(n.calls), static_cast<long long>(n.gemms));
    ::testing::Test::RecordProperty(std::string(c.name) + "_kernel_calls", std::to_string(n.calls));
    EXPECT_LE(n.calls, c.ceiling_calls) << c.name;
    EXPECT_EQ(n.gemms, c.gemms) << c.name;
  }
}

// Every family's training step (two hidden layers each way), counted the same way; the ceilings
// may only come down.
TEST(KernelCount, EveryFamilyHasACeiling) {
  using namespace models;
  struct Family {
    const char* name;
    std::function<std::unique_ptr<Autoencoder>()> make;
    std::int64_t ceiling;
  };
  const MLPSpec enc{.hidden = {64, 32}};
  const MLPSpec dec{.hidden = {32, 64}};
  auto contractive = [&](std::vector<std::int64_t> hidden, Act act) {
    ContractiveAEConfig c;
    c.input = 96;
    c.latent = 8;
    c.encoder.hidden = std::move(hidden);
    c.encoder.activation = act;
    c.decoder = dec;
    return std::make_unique<ContractiveAE>(c);
  };
  const std::vector<Family> families = {
      {"linear_ae", [] { return std::make_unique<AE>(AEConfig::linear(96, 8, 1.0, 2)); }, 8},
      {"dae",
       [&] {
         return std::make_unique<DenoisingAE>(
             DenoisingAEConfig{.input = 96,
                               .latent = 8,
                               .encoder = enc,
                               .decoder = dec,
                               .corruption = {.kind = Corruption::masking, .p = 0.3}});
       },
       21},
      {"sparse_l1",
       [&] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 96,
                                                          .latent = 8,
                                                          .encoder = enc,
                                                          .decoder = dec,
                                                          .penalty = Sparsity::l1,
                                                          .weight = 1e-2});
       },
       27},
      {"sparse_kl",
       [&] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 96,
                                                          .latent = 8,
                                                          .encoder = enc,
                                                          .decoder = dec,
                                                          .penalty = Sparsity::kl,
                                                          .rho = 0.05});
       },
       27},
      {"contractive_one_layer", [&] { return contractive({}, Act::relu); }, 21},
      {"contractive_deep",
       [&] {
         return contractive({64, 32}, Act::tanh);
       },
       56},
      {"beta_vae_warmup",
       [] {
         return std::make_unique<VAE>(VAEConfig{.input = 96,
                                                .hidden = {64, 32},
                                                .latent = 8,
                                                .beta = 4.0,
                                                .warmup = {.kind = KlAnneal::linear, .steps = 10}});
       },
       23},
      {"vae_gaussian_learned",
       [] {
         VAEConfig c{.input = 96, .hidden = {64, 32}, .latent = 8};
         c.likelihood = LikelihoodConfig{.kind = Likelihood::gaussian_learned};
         return std::make_unique<VAE>(c);
       },
       23},
      {"vae_categorical",
       [] {
         VAEConfig c{.input = 96, .hidden = {64, 32}, .latent = 8};
         c.likelihood = LikelihoodConfig{.kind = Likelihood::categorical, .levels = 4};
         return std::make_unique<VAE>(c);
       },
       23},
      {"vae_free_bits",
       [] {
         return std::make_unique<VAE>(
             VAEConfig{.input = 96, .hidden = {64, 32}, .latent = 8, .free_bits = 0.05});
       },
       32},
      {"iwae",
       [] {
         return std::make_unique<IWAE>(
             IWAEConfig{.input = 96, .hidden = {64, 32}, .latent = 8, .k = 4});
       },
       62},
  };
  Generator gen(4);
  const Tensor x = Tensor::rand({32, 96}, gen);
  for (const Family& f : families) {
    std::unique_ptr<Autoencoder> model = f.make();
    model->train();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    auto step = [&] {
      const models::Loss loss = model->compute_loss(x);
      opt.zero_grad();
      loss.total.backward();
      opt.step();
    };
    step();
    dispatch::KernelTrace trace;
    const Count n = count(step);
    std::string seq;
    for (const char* k : trace.names()) seq += std::string(seq.empty() ? "" : " ") + k;
    std::printf("%s: %lld calls (%lld GEMMs): %s\n", f.name, static_cast<long long>(n.calls),
                static_cast<long long>(n.gemms), seq.c_str());
    EXPECT_LE(n.calls, f.ceiling) << f.name;
  }
}

// The Trainer's step with the data on the device: the batch gathered (and binarized) inside the
// step, then the VAE's step: 24 kernel calls at batch 128.
TEST(KernelCount, TrainerStepWithTheBatchDrawnInside) {
  Generator gen(5);
  const Tensor x = Tensor::rand({128 * 6, 784}, gen);
  models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32, .seed = 0});
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  models::Trainer trainer(vae, opt, {.epochs = 1, .batch = 128, .binarize = true});
  trainer.fit(x);  // the first fit warms up and records
  const Count n = count([&] { trainer.fit(x); });
  std::printf("trainer step at batch 128: %.1f kernel calls\n", static_cast<double>(n.calls) / 6);
  EXPECT_EQ(trainer.replayed_steps(), 4 + 6);
  EXPECT_LE(n.calls, 6 * 24);
  EXPECT_EQ(n.gemms, 6 * 17);
}

}  // namespace
}  // namespace latent
