// The Trainer, on a small MLP autoencoder defined here (Bernoulli likelihood, a code penalty as a
// second loss term, a little training noise on the code), so the loop is tested on its own:
// loss falls on Fashion-MNIST, the metrics CSV, callbacks, early stopping, the LR schedule, dynamic
// binarization, gradient clipping, seeded runs repeating bit for bit, and clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/trainer.h"
#include "models/vae.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

namespace fs = std::filesystem;
using models::History;
using models::Trainer;
using models::TrainerConfig;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// An MLP autoencoder x -> relu -> code -> relu -> logits with
//   total = bce(logits, x) + 1e-3 * mean_n ||z_n||^2     terms "recon", "code_l2",
// and, in training mode, Gaussian noise (sigma 0.05) on the code drawn from the model's generator.
// It records what the Trainer does to it.
class TinyAE : public models::Autoencoder {
 public:
  TinyAE(std::int64_t input, std::int64_t hidden, std::int64_t latent, std::uint64_t seed = 0)
      : Autoencoder(seed), input_(input), latent_(latent) {
    Generator init(seed);
    encoder_ = register_module(
        "encoder",
        std::make_shared<nn::MLP>(nn::MLPConfig{.sizes = {input, hidden, latent}}, init));
    decoder_ = register_module(
        "decoder",
        std::make_shared<nn::MLP>(nn::MLPConfig{.sizes = {latent, hidden, input}}, init));
  }

  std::string name() const override { return "tiny_ae"; }
  std::int64_t input_dim() const override { return input_; }
  std::int64_t latent_dim() const override { return latent_; }
  const models::LikelihoodConfig& likelihood() const override { return likelihood_; }

  Tensor encode(const Tensor& x) override {
    check_input(x, "encode");
    return encoder_->forward(x);
  }
  Tensor decode_params(const Tensor& z) override { return decoder_->forward(z); }

  models::Loss compute_loss(const Tensor& x) override {
    check_input(x, "compute_loss");
    if (is_training()) {
      const auto v = x.to_vector<float>();
      for (float f : v) all_training_inputs_binary &= (f == 0.0f || f == 1.0f);
      ++training_batches;
    } else {
      ++eval_batches;
    }
    Tensor z = encode(x);
    if (is_training()) z = z + Tensor::randn(z.shape(), gen_) * 0.05;
    Tensor recon = bce_with_logits(decode_params(z), x);
    Tensor code = mean(sum(square(z), 1)) * 1e-3;
    return {.total = recon + code, .terms = {{"recon", recon}, {"code_l2", code}}};
  }

  void on_train_step(std::int64_t step) override { steps_seen.push_back(step); }

  std::vector<std::int64_t> steps_seen;
  int training_batches = 0;
  int eval_batches = 0;
  bool all_training_inputs_binary = true;

 private:
  std::int64_t input_, latent_;
  models::LikelihoodConfig likelihood_{};
  std::shared_ptr<nn::MLP> encoder_, decoder_;
};

// Fashion-MNIST subsets, read once; null when the data is not installed.
const data::Dataset* fashion(Split split) {
  static const auto load = [](Split s, std::int64_t limit) -> std::optional<data::Dataset> {
    try {
      return data::fashion_mnist(s, {.limit = limit});
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  static const std::optional<data::Dataset> train = load(Split::train, 1000);
  static const std::optional<data::Dataset> test = load(Split::test, 500);
  const auto& d = split == Split::train ? train : test;
  return d ? &*d : nullptr;
}

#define REQUIRE_FASHION_MNIST()                                              \
  if (!fashion(Split::train) || !fashion(Split::test))                       \
  GTEST_SKIP() << "Fashion-MNIST not found in " << data::fashion_mnist_dir() \
               << " (install dataset-fashion-mnist or set LATENT_FASHION_MNIST)"

// Small synthetic grey-level data [n, d] in (0, 1), for the tests of the loop's mechanics.
Tensor synthetic(std::int64_t n, std::int64_t d, std::uint64_t seed) {
  Generator gen(seed);
  return Tensor::rand({n, d}, gen);
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("latent_trainer_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
  return cells;
}

TEST(Trainer, LossFallsOnFashionMnistAndTheCsvHasEveryColumn) {
  REQUIRE_FASHION_MNIST();
  const fs::path dir = temp_dir("csv");
  const fs::path csv = dir / "metrics.csv";
  TinyAE model(784, 64, 16);
  optim::Adam opt(model.parameters(), {.lr = 2e-3});
  Trainer trainer(model, opt, {.epochs = 3, .batch = 100, .metrics_csv = csv.string()});
  const History h = trainer.fit(fashion(Split::train)->images, fashion(Split::test)->images);

  ASSERT_EQ(h.epochs.size(), 3u);
  EXPECT_FALSE(h.stopped_early);
  for (int e = 0; e < 3; ++e) {
    const models::EpochRow& r = h.epochs[static_cast<std::size_t>(e)];
    EXPECT_EQ(r.epoch, e + 1);
    EXPECT_EQ(r.step, 10 * (e + 1));
    EXPECT_DOUBLE_EQ(r.lr, 2e-3);
    EXPECT_GT(r.seconds, 0.0);
    // The terms add up to the total, in training and on the test set.
    EXPECT_NEAR(r.train_value("recon") + r.train_value("code_l2"), r.train_value("total"),
                1e-4 * r.train_value("total"));
    EXPECT_NEAR(r.test_value("recon") + r.test_value("code_l2"), r.test_value("total"),
                1e-4 * r.test_value("total"));
  }
  // Bernoulli NLL of a 784-pixel image starts near 784 log 2 ~ 543 nats and must fall clearly.
  EXPECT_LT(h.epochs[2].train_value("total"), 0.9 * h.epochs[0].train_value("total"));
  EXPECT_LT(h.epochs[2].test_value("total"), h.epochs[0].test_value("total"));
  EXPECT_LT(h.epochs[2].test_value("recon_mse"), h.epochs[0].test_value("recon_mse"));
  EXPECT_GT(h.last().test_value("recon_mse"), 0.0);
  EXPECT_LT(h.last().test_value("recon_mse"), 0.2);

  const auto lines = read_lines(csv);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0],
            "epoch,step,lr,train_total,train_recon,train_code_l2,test_total,test_recon,"
            "test_code_l2,test_recon_mse,seconds");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto cells = split_csv(lines[i]);
    ASSERT_EQ(cells.size(), 11u) << lines[i];
    const models::EpochRow& r = h.epochs[i - 1];
    EXPECT_EQ(std::stoi(cells[0]), r.epoch);
    EXPECT_EQ(std::stoll(cells[1]), r.step);
    EXPECT_NEAR(std::stod(cells[3]), r.train_value("total"), 1e-6 * r.train_value("total"));
    EXPECT_NEAR(std::stod(cells[9]), r.test_value("recon_mse"), 1e-8);
  }
  // Written atomically: nothing but the CSV is left in the folder.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "metrics.csv");
  }
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Trainer, CallbacksAndOnTrainStepSeeEveryStep) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  Trainer trainer(model, opt, {.epochs = 2, .batch = 100, .eval_batch = 30});
  std::vector<models::StepInfo> steps;
  std::vector<int> epochs;
  trainer.on_step([&](const models::StepInfo& s) { steps.push_back(s); });
  trainer.on_epoch([&](const models::EpochInfo& e) {
    epochs.push_back(e.row.epoch);
    EXPECT_EQ(e.epochs, 2);
    EXPECT_FALSE(e.row.test.empty());
  });
  const History h = trainer.fit(synthetic(250, 20, 1), synthetic(70, 20, 2));

  ASSERT_EQ(steps.size(), 6u);  // 3 batches (100, 100, 50) per epoch
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, static_cast<std::int64_t>(i));
    EXPECT_EQ(steps[i].epoch, static_cast<int>(i / 3) + 1);
    EXPECT_EQ(steps[i].epoch_step, static_cast<std::int64_t>(i % 3));
    EXPECT_EQ(steps[i].steps_per_epoch, 3);
    EXPECT_EQ(steps[i].batch_size, i % 3 == 2 ? 50 : 100);
    EXPECT_TRUE(std::isnan(steps[i].grad_norm));  // no clipping
    EXPECT_TRUE(std::isfinite(steps[i].loss.total.item()));
    EXPECT_FALSE(steps[i].loss.total.requires_grad());
  }
  EXPECT_EQ(epochs, (std::vector<int>{1, 2}));
  EXPECT_EQ(model.steps_seen, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(model.training_batches, 6);
  EXPECT_EQ(model.eval_batches, 2 * 3);  // 70 test rows in batches of 30, twice
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.epochs[1].step, 6);
  EXPECT_EQ(trainer.global_step(), 6);

  // A second fit() continues the step count, the epoch count and the history.
  trainer.fit(synthetic(250, 20, 1), synthetic(70, 20, 2));
  EXPECT_EQ(trainer.history().epochs.size(), 4u);
  EXPECT_EQ(trainer.history().last().epoch, 4);
  EXPECT_EQ(model.steps_seen.back(), 11);
  EXPECT_EQ(steps.back().step, 11);
}

// A step callback that asks for neither the gradient norm nor the loss gets neither (so a GPU
// step need not be waited for), and the training is the same.
TEST(Trainer, StepCallbackGetsOnlyWhatItNeeds) {
  auto run = [](models::StepNeeds needs, std::vector<models::StepInfo>& steps) {
    TinyAE model(20, 16, 4);
    optim::Adam opt(model.parameters());
    Trainer trainer(model, opt, {.epochs = 1, .batch = 50, .grad_clip = 1.0});
    trainer.on_step([&](const models::StepInfo& s) { steps.push_back(s); }, needs);
    trainer.fit(synthetic(200, 20, 1));
    std::vector<float> params;
    for (const Tensor& p : model.parameters()) {
      const std::vector<float> v = p.to_vector<float>();
      params.insert(params.end(), v.begin(), v.end());
    }
    return params;
  };
  std::vector<models::StepInfo> all, none;
  const std::vector<float> with = run({}, all);
  const std::vector<float> without = run({.grad_norm = false, .loss = false}, none);
  EXPECT_EQ(with, without);
  ASSERT_EQ(all.size(), 4u);
  ASSERT_EQ(none.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::isfinite(all[i].grad_norm)) << i;
    EXPECT_TRUE(all[i].loss.total.defined()) << i;
    EXPECT_TRUE(std::isnan(none[i].grad_norm)) << i;
    EXPECT_FALSE(none[i].loss.total.defined()) << i;
    EXPECT_EQ(none[i].step, all[i].step);
    EXPECT_EQ(none[i].batch_size, 50);
  }
}

TEST(Trainer, EpochCallbackStopsEarly) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  Trainer trainer(model, opt, {.epochs = 5, .batch = 50});
  trainer.on_epoch([](const models::EpochInfo& e) {
    if (e.row.epoch == 2) e.request_stop();
  });
  const History h = trainer.fit(synthetic(100, 20, 1), synthetic(40, 20, 2));
  EXPECT_TRUE(h.stopped_early);
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(model.training_batches, 4);
}

TEST(Trainer, StepCallbackStopsEarlyAndThePartialEpochIsRecorded) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  Trainer trainer(model, opt, {.epochs = 5, .batch = 25});
  int calls = 0;
  trainer.on_step([&](const models::StepInfo& s) {
    ++calls;
    if (s.step == 5) s.request_stop();  // the second step of epoch 2
  });
  int epoch_calls = 0;
  trainer.on_epoch([&](const models::EpochInfo&) { ++epoch_calls; });
  const History h = trainer.fit(synthetic(100, 20, 1), synthetic(40, 20, 2));
  EXPECT_TRUE(h.stopped_early);
  EXPECT_EQ(calls, 6);
  EXPECT_EQ(epoch_calls, 2);
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_EQ(h.epochs[1].step, 6);
  EXPECT_FALSE(h.epochs[1].test.empty());
  EXPECT_TRUE(std::isfinite(h.epochs[1].train_value("total")));
}

// A diverging run stops at the step whose loss is not finite, naming it, the epoch and the terms;
// the epochs before it stay recorded, the failing one is not written.
TEST(Trainer, ANonFiniteLossStopsTrainingAtItsStep) {
  const fs::path csv =
      fs::temp_directory_path() / ("latent_trainer_nan_" + std::to_string(::getpid()) + ".csv");
  TinyAE model(20, 16, 4);
  optim::SGD opt(model.parameters(), {.lr = 0.01});
  Trainer trainer(model, opt, {.epochs = 3, .batch = 25, .metrics_csv = csv.string()});
  // From the sixth step on (the second of epoch 2) the learning rate makes the parameters blow up.
  trainer.on_step([&](const models::StepInfo& s) {
    if (s.step == 4) opt.set_lr(1e38);
  });
  const std::string e = error_of([&] { trainer.fit(synthetic(100, 20, 1), synthetic(40, 20, 2)); });
  EXPECT_NE(e.find("[trainer] the loss is not finite at global step"), std::string::npos) << e;
  EXPECT_NE(e.find("(epoch 2, batch"), std::string::npos) << e;
  EXPECT_NE(e.find("total"), std::string::npos) << e;
  // Epoch 1 was recorded and written; nothing non-finite was.
  ASSERT_EQ(trainer.history().epochs.size(), 1u);
  std::ifstream f(csv);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(text.find("nan"), std::string::npos) << text;
  EXPECT_EQ(text.find("inf"), std::string::npos) << text;
  fs::remove(csv);
}

// Saved after two epochs and resumed into new objects, a run ends with the bits of one that never
// stopped: parameters, optimizer, generators (the VAE's training and evaluation noise, the
// binarization draws) and history.
TEST(Trainer, ASavedStateResumesToTheSameBits) {
  const fs::path dir = temp_dir("resume");
  const Tensor train = synthetic(90, 20, 1), test = synthetic(30, 20, 2);
  for (const bool on_device : {true, false}) {
    SCOPED_TRACE(on_device ? "data on the device" : "batches from the host");
    const models::VAEConfig vc{.input = 20, .hidden = {12}, .latent = 3, .seed = 4};
    const TrainerConfig tc{
        .epochs = 3, .batch = 32, .seed = 9, .binarize = true, .data_on_device = on_device};
    models::VAE a(vc);
    optim::Adam oa(a.parameters(), {.lr = 1e-2});
    Trainer ta(a, oa, tc);
    const History ha = ta.fit(train, test);

    TrainerConfig two = tc;
    two.epochs = 2;
    const std::string state = (dir / "state.safetensors").string();
    {
      models::VAE b(vc);
      optim::Adam ob(b.parameters(), {.lr = 1e-2});
      Trainer tb(b, ob, two);
      tb.fit(train, test);
      tb.save_state(state, {{"note", "kept"}});
    }
    models::VAE c(vc);
    optim::Adam oc(c.parameters(), {.lr = 1e-2});
    TrainerConfig one = tc;
    one.epochs = 1;
    Trainer tc2(c, oc, one);
    const Metadata m = tc2.load_state(state);
    EXPECT_EQ(m.at("note"), "kept");
    EXPECT_EQ(tc2.epochs_done(), 2);
    const History hc = tc2.fit(train, test);
    ASSERT_EQ(hc.epochs.size(), 3u);
    for (std::size_t e = 0; e < 3; ++e) {
      EXPECT_EQ(hc.epochs[e].step, ha.epochs[e].step);
      EXPECT_EQ(hc.epochs[e].train_value("total"), ha.epochs[e].train_value("total")) << e;
      EXPECT_EQ(hc.epochs[e].test_value("total"), ha.epochs[e].test_value("total")) << e;
    }
    const auto pa = a.named_parameters(), pc = c.named_parameters();
    for (std::size_t i = 0; i < pa.size(); ++i)
      EXPECT_EQ(pa[i].second.to_vector<float>(), pc[i].second.to_vector<float>()) << pa[i].first;
  }
  // A file that is not a trainer's state is refused, naming it.
  models::VAE v({.input = 20, .hidden = {12}, .latent = 3});
  optim::Adam ov(v.parameters());
  Trainer tv(v, ov, {});
  const std::string plain = (dir / "plain.safetensors").string();
  save(v, plain);
  const std::string e = error_of([&] { tv.load_state(plain); });
  EXPECT_NE(e.find("not a trainer's state"), std::string::npos) << e;
  fs::remove_all(dir);
}

TEST(Trainer, LrScheduleIsAppliedBeforeEveryStep) {
  TinyAE model(20, 16, 4);
  optim::SGD opt(model.parameters(), {.lr = 1.0});
  const auto schedule = optim::LrSchedule::step_decay(0.01, 2, 0.5).with_warmup(2, 0.5);
  Trainer trainer(model, opt, {.epochs = 2, .batch = 20}, schedule);
  std::vector<double> seen, reported;
  trainer.on_step([&](const models::StepInfo& s) {
    seen.push_back(opt.last_lr());  // the rate the step's kernels computed from the schedule
    reported.push_back(s.lr);
  });
  const History h = trainer.fit(synthetic(60, 20, 1), synthetic(20, 20, 2));
  // Hand-computed: warm-up 0.005, 0.0075, then 0.01, 0.01, 0.005, 0.005.
  const std::vector<double> want{0.005, 0.0075, 0.01, 0.01, 0.005, 0.005};
  ASSERT_EQ(seen.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(seen[i], want[i], 1e-15) << "step " << i;
    EXPECT_NEAR(reported[i], want[i], 1e-15) << "step " << i;
  }
  EXPECT_NEAR(h.epochs[0].lr, 0.01, 1e-15);  // the lr of each epoch's last step
  EXPECT_NEAR(h.epochs[1].lr, 0.005, 1e-15);
}

TEST(Trainer, GradClipBoundsTheGradientNorm) {
  TinyAE model(20, 16, 4);
  optim::SGD opt(model.parameters(), {.lr = 0.01});
  Trainer trainer(model, opt, {.epochs = 1, .batch = 10, .grad_clip = 0.5});
  int steps = 0;
  trainer.on_step([&](const models::StepInfo& s) {
    ++steps;
    EXPECT_TRUE(std::isfinite(s.grad_norm));
    EXPECT_GT(s.grad_norm, 0.5);  // a BCE gradient of an untrained model is large
    EXPECT_LE(optim::grad_norm(opt.parameters()), 0.5 + 1e-5);  // clipped before the step
  });
  trainer.fit(synthetic(40, 20, 1));
  EXPECT_EQ(steps, 4);
}

TEST(Trainer, DynamicBinarizationFeedsBinaryBatches) {
  {
    TinyAE model(20, 16, 4);
    optim::Adam opt(model.parameters());
    Trainer trainer(model, opt, {.epochs = 1, .batch = 16, .binarize = true});
    const History h = trainer.fit(synthetic(64, 20, 1), synthetic(32, 20, 2));
    EXPECT_TRUE(model.all_training_inputs_binary);
    EXPECT_EQ(model.training_batches, 4);
    EXPECT_TRUE(std::isfinite(h.last().test_value("total")));
  }
  {
    TinyAE model(20, 16, 4);
    optim::Adam opt(model.parameters());
    Trainer trainer(model, opt, {.epochs = 1, .batch = 16});
    trainer.fit(synthetic(64, 20, 1));
    EXPECT_FALSE(model.all_training_inputs_binary);
  }
}

// Everything a run produces, to compare two runs bit for bit.
struct RunResult {
  std::vector<models::EpochRow> rows;
  std::vector<std::vector<float>> params;
};

RunResult seeded_run(const Tensor& train, const Tensor& test, std::uint64_t trainer_seed) {
  TinyAE model(784, 32, 8, /*seed=*/7);
  optim::Adam opt(model.parameters(), {.lr = 2e-3});
  Trainer trainer(
      model, opt,
      {.epochs = 2, .batch = 64, .seed = trainer_seed, .binarize = true, .grad_clip = 50.0},
      optim::LrSchedule::cosine(2e-3, 20, 1e-4));
  RunResult r;
  r.rows = trainer.fit(train, test).epochs;
  for (const Tensor& p : model.parameters()) r.params.push_back(p.to_vector<float>());
  return r;
}

TEST(Trainer, SeededRunsRepeatExactlyOnTheCpu) {
  REQUIRE_FASHION_MNIST();
  const Tensor train = fashion(Split::train)->images.rows(0, 400);
  const Tensor test = fashion(Split::test)->images.rows(0, 200);
  const RunResult a = seeded_run(train, test, 3);
  const RunResult b = seeded_run(train, test, 3);
  ASSERT_EQ(a.rows.size(), 2u);
  ASSERT_EQ(b.rows.size(), 2u);
  for (std::size_t e = 0; e < a.rows.size(); ++e) {
    EXPECT_EQ(a.rows[e].step, b.rows[e].step);
    EXPECT_EQ(a.rows[e].lr, b.rows[e].lr);
    EXPECT_EQ(a.rows[e].train, b.rows[e].train) << "epoch " << e + 1;  // bit-identical
    EXPECT_EQ(a.rows[e].test, b.rows[e].test) << "epoch " << e + 1;
  }
  EXPECT_EQ(a.params, b.params);
  // Another trainer seed shuffles and binarizes differently.
  const RunResult c = seeded_run(train, test, 4);
  EXPECT_NE(a.rows.back().train, c.rows.back().train);
}

TEST(Trainer, EvaluateIsBatchedAndRestoresTheMode) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  const Tensor x = synthetic(50, 20, 3);
  Trainer big(model, opt, {.eval_batch = 1000});
  Trainer small(model, opt, {.eval_batch = 7});
  const models::Metrics a = big.evaluate(x);
  const models::Metrics b = small.evaluate(x);
  ASSERT_EQ(a.size(), 4u);  // total, recon, code_l2, recon_mse
  EXPECT_EQ(a[3].first, "recon_mse");
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_NEAR(a[i].second, b[i].second, 1e-5 * std::fabs(a[i].second)) << a[i].first;
  }
  {
    NoGradGuard no_grad;
    const double want = mse(model.reconstruct(x), x, Reduction::mean).item();
    EXPECT_NEAR(a[3].second, want, 1e-7);
  }
  EXPECT_TRUE(model.is_training());  // evaluation restored the mode it found

  model.eval();
  Trainer trainer(model, opt, {.epochs = 1, .batch = 25});
  trainer.fit(x, x);
  EXPECT_FALSE(model.is_training());
  EXPECT_EQ(model.training_batches, 2);  // trained in training mode all the same
}

TEST(Trainer, ProgressLinesGoToStderr) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  Trainer trainer(model, opt, {.epochs = 2, .batch = 10, .log_every = 2});
  ::testing::internal::CaptureStderr();
  trainer.fit(synthetic(40, 20, 1), synthetic(10, 20, 2));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(contains(err, "epoch 1/2  step 2 (2/4)")) << err;
  EXPECT_TRUE(contains(err, "epoch 2/2  step 8 (4/4)")) << err;
  EXPECT_TRUE(contains(err, "samples/s")) << err;
  EXPECT_TRUE(contains(err, "epoch 2 done")) << err;
  EXPECT_TRUE(contains(err, "recon_mse")) << err;
}

TEST(Trainer, BadConfigurationAndDataAreClearErrors) {
  TinyAE model(20, 16, 4);
  optim::Adam opt(model.parameters());
  auto make = [&](TrainerConfig c) { Trainer t(model, opt, c); };
  EXPECT_TRUE(contains(error_of([&] { make({.epochs = 0}); }), "[trainer] epochs must be >= 1"));
  EXPECT_TRUE(contains(error_of([&] { make({.batch = 0}); }), "batch must be >= 1"));
  EXPECT_TRUE(contains(error_of([&] { make({.eval_batch = -1}); }), "eval_batch"));
  EXPECT_TRUE(contains(error_of([&] { make({.log_every = -1}); }), "log_every"));
  EXPECT_TRUE(contains(error_of([&] { make({.grad_clip = -1.0}); }), "grad_clip"));

  Trainer trainer(model, opt, {.epochs = 1});
  EXPECT_TRUE(contains(error_of([&] {
                         trainer.fit(Tensor::zeros({0, 20}));
                       }),
                       "[trainer] the training set is empty"));
  EXPECT_TRUE(contains(error_of([&] { trainer.fit(Tensor()); }), "undefined"));
  EXPECT_TRUE(contains(error_of([&] { trainer.fit(Tensor::zeros({20})); }), "must be [N, 20]"));
  const std::string width = error_of([&] { trainer.fit(Tensor::zeros({8, 30})); });
  EXPECT_TRUE(contains(width, "width 30")) << width;
  EXPECT_TRUE(contains(width, "tiny_ae")) << width;
  EXPECT_TRUE(contains(error_of([&] {
                         trainer.fit(synthetic(8, 20, 1), Tensor::zeros({4, 7}));
                       }),
                       "the test set has rows of width 7"));

  Trainer bad_csv(model, opt, {.epochs = 1, .metrics_csv = "/nonexistent-folder/metrics.csv"});
  const std::string csv = error_of([&] { bad_csv.fit(synthetic(8, 20, 1)); });
  EXPECT_TRUE(contains(csv, "nonexistent-folder")) << csv;
  EXPECT_EQ(model.training_batches, 0);  // every error came before training
}

}  // namespace
}  // namespace latent
