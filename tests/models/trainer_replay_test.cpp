// The Trainer's recorded steps (TrainerConfig::replay): for every model family, training with
// replayed steps gives the very bits of eager training (parameters, optimizer state, every logged
// loss), with a learning-rate schedule, KL warm-up or cyclical annealing, free bits, the models'
// noise and dynamic binarization on.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <tuple>
#include <vector>

#include "core/latent.h"
#include "models/autoencoder.h"
#include "models/contractive.h"
#include "models/denoising.h"
#include "models/iwae.h"
#include "models/sparse.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace latent::models {
namespace {

using Factory = std::function<std::unique_ptr<Autoencoder>()>;

struct TrainingRun {
  std::vector<std::vector<float>> params;
  optim::NamedTensors opt_state;
  History history;
  std::int64_t replayed = 0;
};

// `epochs` epochs of 200 rows in batches of 32 (6 full batches and one of 8 per epoch), Adam with
// a warm-up and a cosine schedule, optionally dynamic binarization and gradient clipping.
TrainingRun train(const Factory& make, bool replay, bool binarize = false, double clip = 0.0,
                  std::int64_t epochs = 3) {
  Generator gen(17);
  const Tensor x = Tensor::rand({200, 24}, gen);
  const Tensor test = Tensor::rand({40, 24}, gen);
  std::unique_ptr<Autoencoder> model = make();
  optim::Adam opt(model->parameters(), {.lr = 3e-3});
  Trainer trainer(*model, opt,
                  {.epochs = static_cast<int>(epochs),
                   .batch = 32,
                   .seed = 5,
                   .binarize = binarize,
                   .grad_clip = clip,
                   .replay = replay},
                  optim::LrSchedule::cosine(3e-3, 7 * epochs, 1e-4).with_warmup(4));
  TrainingRun r;
  r.history = trainer.fit(x, test);
  for (const Tensor& p : model->parameters()) r.params.push_back(p.to_vector<float>());
  r.opt_state = opt.state();
  r.replayed = trainer.replayed_steps();
  return r;
}

void expect_same(const TrainingRun& eager, const TrainingRun& replayed) {
  EXPECT_EQ(eager.params, replayed.params);
  ASSERT_EQ(eager.opt_state.size(), replayed.opt_state.size());
  for (std::size_t i = 0; i < eager.opt_state.size(); ++i) {
    EXPECT_EQ(eager.opt_state[i].first, replayed.opt_state[i].first);
    EXPECT_EQ(eager.opt_state[i].second.to_vector<double>(),
              replayed.opt_state[i].second.to_vector<double>())
        << eager.opt_state[i].first;
  }
  ASSERT_EQ(eager.history.epochs.size(), replayed.history.epochs.size());
  for (std::size_t e = 0; e < eager.history.epochs.size(); ++e) {
    EXPECT_EQ(eager.history.epochs[e].train, replayed.history.epochs[e].train) << "epoch " << e;
    EXPECT_EQ(eager.history.epochs[e].test, replayed.history.epochs[e].test) << "epoch " << e;
  }
}

struct Case {
  const char* name;
  Factory make;
};

std::vector<Case> replayable_models() {
  return {
      {"ae",
       [] {
         return std::make_unique<AE>(AEConfig{.input = 24,
                                              .latent = 4,
                                              .encoder = {.hidden = {16}},
                                              .decoder = {.hidden = {16}},
                                              .seed = 1});
       }},
      {"linear_ae", [] { return std::make_unique<AE>(AEConfig::linear(24, 4, 1.0, 2)); }},
      {"sparse_l1",
       [] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 24,
                                                          .latent = 32,
                                                          .encoder = {.hidden = {16}},
                                                          .decoder = {.hidden = {16}},
                                                          .penalty = Sparsity::l1,
                                                          .weight = 1e-2,
                                                          .seed = 3});
       }},
      {"sparse_kl",
       [] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 24,
                                                          .latent = 32,
                                                          .encoder = {.hidden = {16}},
                                                          .decoder = {.hidden = {16}},
                                                          .penalty = Sparsity::kl,
                                                          .rho = 0.05,
                                                          .seed = 4});
       }},
      {"contractive_one_layer",
       [] {
         return std::make_unique<ContractiveAE>(
             ContractiveAEConfig{.input = 24, .latent = 8, .decoder = {.hidden = {16}}, .seed = 5});
       }},
      {"contractive_deep",
       [] {
         return std::make_unique<ContractiveAE>(
             ContractiveAEConfig{.input = 24,
                                 .latent = 6,
                                 .encoder = {.hidden = {12}, .activation = Act::tanh},
                                 .decoder = {.hidden = {16}},
                                 .seed = 6});
       }},
      {"dae_masking",
       [] {
         return std::make_unique<DenoisingAE>(
             DenoisingAEConfig{.input = 24,
                               .latent = 4,
                               .encoder = {.hidden = {16}},
                               .decoder = {.hidden = {16}},
                               .corruption = {.kind = Corruption::masking, .p = 0.3}});
       }},
      {"dae_gaussian",
       [] {
         return std::make_unique<DenoisingAE>(
             DenoisingAEConfig{.input = 24,
                               .latent = 4,
                               .encoder = {.hidden = {16}},
                               .decoder = {.hidden = {16}},
                               .corruption = {.kind = Corruption::gaussian, .sigma = 0.2}});
       }},
      {"dae_salt_and_pepper",
       [] {
         return std::make_unique<DenoisingAE>(
             DenoisingAEConfig{.input = 24,
                               .latent = 4,
                               .encoder = {.hidden = {16}},
                               .decoder = {.hidden = {16}},
                               .corruption = {.kind = Corruption::salt_and_pepper, .p = 0.2}});
       }},
      {"vae_warmup",
       [] {
         return std::make_unique<VAE>(VAEConfig{.input = 24,
                                                .hidden = {16},
                                                .latent = 4,
                                                .samples = 2,
                                                .warmup = {.kind = KlAnneal::linear, .steps = 10},
                                                .seed = 7});
       }},
      {"beta_vae_cyclical_free_bits",
       [] {
         return std::make_unique<VAE>(
             VAEConfig{.input = 24,
                       .hidden = {16},
                       .latent = 4,
                       .beta = 4.0,
                       .warmup = {.kind = KlAnneal::cyclical, .steps = 6, .ratio = 0.5},
                       .free_bits = 0.05,
                       .seed = 8});
       }},
      {"iwae",
       [] {
         return std::make_unique<IWAE>(
             IWAEConfig{.input = 24, .hidden = {16}, .latent = 4, .k = 3, .seed = 9});
       }},
      {"vae_gaussian_learned",
       [] {
         VAEConfig c{.input = 24, .hidden = {16}, .latent = 4, .seed = 13};
         c.likelihood = LikelihoodConfig{.kind = Likelihood::gaussian_learned};
         return std::make_unique<VAE>(c);
       }},
      {"ae_categorical",
       [] {
         return std::make_unique<AE>(
             AEConfig{.input = 24,
                      .latent = 4,
                      .encoder = {.hidden = {16}},
                      .decoder = {.hidden = {16}},
                      .likelihood = {.kind = Likelihood::categorical, .levels = 3},
                      .seed = 14});
       }},
  };
}

TEST(TrainerReplay, ReplayedTrainingEqualsEagerTrainingBitForBit) {
  for (const Case& c : replayable_models()) {
    SCOPED_TRACE(c.name);
    const TrainingRun eager = train(c.make, false);
    const TrainingRun replayed = train(c.make, true);
    EXPECT_EQ(eager.replayed, 0);
    // The first full batch of the fit is eager (the warm-up: it creates the optimizer's state),
    // the second is recorded, every later full batch replays; the smaller last batch of each
    // epoch is eager.
    EXPECT_EQ(replayed.replayed, 4 + 6 + 6);
    expect_same(eager, replayed);
  }
}

// Everything on at once, over 56 steps: the schedule, the models' own schedules (KL warm-up,
// cyclical annealing), dynamic binarization and gradient clipping.
TEST(TrainerReplay, FiftyStepsWithEverythingOnEqualEagerStepsBitForBit) {
  for (const Case& c : replayable_models()) {
    SCOPED_TRACE(c.name);
    const TrainingRun eager = train(c.make, false, true, 1.0, 8);
    const TrainingRun replayed = train(c.make, true, true, 1.0, 8);
    EXPECT_EQ(replayed.replayed, 4 + 7 * 6);
    expect_same(eager, replayed);
  }
}

// Dynamic binarization draws each batch's bits before the step, from the Trainer's generator.
TEST(TrainerReplay, ReplayedTrainingWithBinarizationEqualsEagerTraining) {
  const Factory vae = [] {
    return std::make_unique<VAE>(VAEConfig{.input = 24, .hidden = {16}, .latent = 4, .seed = 10});
  };
  const TrainingRun eager = train(vae, false, true);
  const TrainingRun replayed = train(vae, true, true);
  EXPECT_EQ(replayed.replayed, 4 + 6 + 6);
  expect_same(eager, replayed);
}

// Gradient clipping keeps its norm and factor in memory: clipped steps replay too, and every
// step's norm (read after it) is the eager one.
TEST(TrainerReplay, ReplayedTrainingWithGradientClippingEqualsEagerTraining) {
  auto run = [](bool replay) {
    std::unique_ptr<Autoencoder> model = replayable_models().front().make();
    optim::Adam opt(model->parameters(), {.lr = 1e-2});
    Generator gen(3);
    Trainer trainer(*model, opt,
                    {.epochs = 2, .batch = 16, .seed = 1, .grad_clip = 0.5, .replay = replay});
    std::vector<double> norms;
    trainer.on_step([&](const StepInfo& s) { norms.push_back(s.grad_norm); });
    trainer.fit(Tensor::rand({64, 24}, gen));
    std::vector<std::vector<float>> params;
    for (const Tensor& p : model->parameters()) params.push_back(p.to_vector<float>());
    return std::make_tuple(params, norms, trainer.replayed_steps());
  };
  const auto [eager_params, eager_norms, eager_replayed] = run(false);
  const auto [params, norms, replayed] = run(true);
  EXPECT_EQ(eager_replayed, 0);
  EXPECT_EQ(replayed, 2 + 4);
  EXPECT_EQ(eager_params, params);
  EXPECT_EQ(eager_norms, norms);
  ASSERT_FALSE(norms.empty());
  EXPECT_GT(norms.front(), 0.5);  // the clip was active
}

// The training set on the device (the batch drawn inside the step) or gathered on the host a
// batch at a time: the same rows in the same order, the same training.
TEST(TrainerReplay, DataOnTheDeviceOrOnTheHostTrainTheSame) {
  auto run = [](bool on_device) {
    std::unique_ptr<Autoencoder> model = replayable_models().front().make();
    optim::Adam opt(model->parameters(), {.lr = 1e-2});
    Generator gen(3);
    Trainer trainer(*model, opt,
                    {.epochs = 2, .batch = 16, .seed = 1, .data_on_device = on_device});
    const History h = trainer.fit(Tensor::rand({70, 24}, gen));
    std::vector<std::vector<float>> params;
    for (const Tensor& p : model->parameters()) params.push_back(p.to_vector<float>());
    return std::make_pair(params, h.epochs.back().train);
  };
  EXPECT_EQ(run(true), run(false));
}

TEST(TrainerReplay, BinarizeRefusesValuesOutsideZeroOne) {
  std::unique_ptr<Autoencoder> model = replayable_models().front().make();
  optim::Adam opt(model->parameters(), {.lr = 1e-2});
  Trainer trainer(*model, opt, {.epochs = 1, .batch = 16, .binarize = true});
  Tensor x = Tensor::full({20, 24}, 0.5);
  x.rows(7, 1).fill_(1.5);
  try {
    trainer.fit(x);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 7"), std::string::npos) << e.what();
  }
}

// The categorical likelihood's loss computes its levels in the kernel: its steps replay bit for
// bit too (the Gaussian ones are in replayable_models()).
TEST(TrainerReplay, CategoricalLikelihoodReplaysBitForBit) {
  const Factory make = [] {
    VAEConfig config{.input = 24, .hidden = {16}, .latent = 4, .seed = 12};
    config.likelihood = LikelihoodConfig{.kind = Likelihood::categorical, .levels = 4};
    return std::make_unique<VAE>(config);
  };
  const TrainingRun eager = train(make, false);
  const TrainingRun replayed = train(make, true);
  EXPECT_EQ(replayed.replayed, 4 + 6 + 6);
  expect_same(eager, replayed);
  ASSERT_FALSE(replayed.history.epochs.empty());
  const History& h = replayed.history;
  EXPECT_LT(h.epochs.back().train_value("total"), h.epochs.front().train_value("total"));
}

}  // namespace
}  // namespace latent::models
