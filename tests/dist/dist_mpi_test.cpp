// core/dist across processes: run under mpirun (tests/CMakeLists.txt starts it with 2 and 3 ranks).
// Every rank runs every test, in the same order, so the collectives meet; the job's verdict is
// the worst rank's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/dispatch.h"
#include "core/latent.h"
#include "kernels/cpu_parallel.h"
#include "models/compiled_step.h"
#include "models/denoising.h"
#include "models/evaluate.h"
#include "models/iwae.h"
#include "models/sparse.h"
#include "models/trainer.h"
#include "models/vae.h"
#include "support/model_test_util.h"

namespace latent::dist {
namespace {

int expected_size() {
  const char* v = std::getenv("OMPI_COMM_WORLD_SIZE");
  return v ? std::atoi(v) : 1;
}

TEST(DistMpi, JoinsTheLaunchersWorld) {
  Group& w = world();
  EXPECT_EQ(w.size(), expected_size());
  ASSERT_GE(w.size(), 2) << "run under mpirun -np 2 (or more)";
  // Distinct ranks 0..N-1: their sum is N(N-1)/2 on every rank.
  const std::vector<double> sum = w.all_reduce({static_cast<double>(w.rank())}, ReduceOp::sum);
  EXPECT_EQ(sum[0], w.size() * (w.size() - 1) / 2.0);
  EXPECT_GE(w.local_rank(), 0);
  EXPECT_LT(w.local_rank(), w.size());
}

// op over n ranks of the values r + x, rank r's.
double reduced(ReduceOp op, int n, double x) {
  return op == ReduceOp::sum    ? n * x + n * (n - 1) / 2.0
         : op == ReduceOp::mean ? x + (n - 1) / 2.0
         : op == ReduceOp::min  ? x
                                : x + n - 1;
}

TEST(DistMpi, AllReducesTensorsInPlace) {
  Group& w = world();
  const int n = w.size();
  const double r = w.rank();
  for (const DType dtype : {DType::f32, DType::f64}) {
    // Element i of rank r: r + i; 3000 elements.
    std::vector<double> values(3000);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = r + static_cast<double>(i);
    const Tensor base = Tensor::from_data(values, {3000}).to(dtype);
    for (const ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::min, ReduceOp::max}) {
      Tensor t = base.clone();
      w.all_reduce(t, op);
      const std::vector<double> got = t.to(DType::f64).to_vector<double>();
      for (std::size_t i = 0; i < got.size(); i += 997) {
        EXPECT_EQ(got[i], reduced(op, n, static_cast<double>(i))) << "element " << i;
      }
    }
  }
}

TEST(DistMpi, BroadcastsFromAnyRoot) {
  Group& w = world();
  for (int root = 0; root < w.size(); ++root) {
    Tensor t = Tensor::full({7}, 10.0 * w.rank() + 1);
    w.broadcast(t, root);
    EXPECT_EQ(t.to_vector<float>(), std::vector<float>(7, static_cast<float>(10.0 * root + 1)));
    const std::string s = w.broadcast("from rank " + std::to_string(w.rank()), root);
    EXPECT_EQ(s, "from rank " + std::to_string(root));
  }
  w.barrier();
}

TEST(DistMpi, CheckSameNamesTheFieldThatDiffers) {
  Group& w = world();
  w.check_same({{"batch", "128"}, {"seed", "7"}});
  std::string message;
  try {
    w.check_same({{"batch", "128"}, {"train.rows", w.rank() == 0 ? "60000" : "30000"}});
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("ranks disagree on 'train.rows': 60000 on rank 0, 30000 on rank 1"),
            std::string::npos)
      << message;
  std::string count;
  try {
    if (w.rank() == 0)
      w.check_same({{"batch", "128"}});
    else
      w.check_same({{"batch", "128"}, {"extra", "1"}});
  } catch (const Error& e) {
    count = e.what();
  }
  EXPECT_NE(count.find("ranks disagree on their configuration"), std::string::npos) << count;
}

// find_same names the first two ranks that passed one value, on every rank alike.
TEST(DistMpi, FindSameNamesTheFirstTwoRanksWithOneValue) {
  Group& w = world();
  const int n = w.size();
  EXPECT_EQ(w.find_same("rank " + std::to_string(w.rank())), std::nullopt);
  EXPECT_EQ(w.find_same("the same"), (std::pair{0, 1}));
  // The last rank takes rank 0's value: ranks 0 and n - 1.
  const int r = w.rank() == n - 1 ? 0 : w.rank();
  EXPECT_EQ(w.find_same("gpu " + std::to_string(r)), (std::pair{0, n - 1}));
  // Ranks 1.. alike, rank 0 alone: ranks 1 and 2 where there are three.
  if (n >= 3) {
    EXPECT_EQ(w.find_same(w.rank() == 0 ? "a" : "b"), (std::pair{1, 2}));
  }
}

// A recorded all-reduce makes the MPI call again at every replay, on what the memory holds then.
TEST(DistMpi, ARecordedAllReduceReplays) {
  Group& w = world();
  Tensor t = Tensor::full({4}, 1.0 + w.rank());
  dispatch::Plan plan;
  {
    dispatch::Recorder rec(plan);
    w.all_reduce(t, ReduceOp::sum);
    rec.finish();
  }
  const int n = w.size();
  EXPECT_EQ(t.to_vector<float>()[0], n * (n + 1) / 2.0f);
  for (int k = 0; k < 3; ++k) {
    t.fill_(static_cast<double>(w.rank() * k));
    plan.replay();
    EXPECT_EQ(t.to_vector<float>()[0], k * n * (n - 1) / 2.0f) << "replay " << k;
  }
}

// The gradient of a batch mean is the mean of the ranks' gradients over their shares: averaged
// with one all-reduce, each rank holds the whole batch's gradient.
TEST(DistMpi, AveragedShareGradientsAreTheBatchGradient) {
  Group& w = world();
  Generator gen(3);  // the same data on every rank
  const Tensor x = Tensor::rand({128, 6}, gen);
  const Tensor y = Tensor::rand({128, 2}, gen);
  const Tensor w0 = Tensor::randn({2, 6}, gen);
  auto grad_of = [&](const Tensor& xs, const Tensor& ys) {
    Tensor p = w0.clone().requires_grad_();
    mse(matmul(xs, p, false, true), ys, Reduction::batch_mean).backward();
    return p.grad().clone();
  };
  const Tensor full = grad_of(x, y);
  const Share s = share(128, w.rank(), w.size());
  // The shares' means weighted by their rows (equal shares on 2 ranks, not on 3).
  Tensor mine = grad_of(x.rows(s.first, s.count), y.rows(s.first, s.count));
  mine.mul_(static_cast<double>(s.count) / 128.0);
  w.all_reduce(mine, ReduceOp::sum);
  const std::vector<float> a = full.to_vector<float>(), b = mine.to_vector<float>();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6f) << i;
}

// ---- data parallelism: W ranks with B/W rows each take the steps of one process with B rows --

// Fashion-MNIST's first training images when installed, else synthetic ones.
Tensor data_set(std::int64_t rows = 640) {
  if (testing::have_fashion_mnist()) return testing::images(Split::train, rows);
  Generator g(11);
  return Tensor::rand({rows, 784}, g);
}

// Every parameter's values, one after the other.
std::vector<float> flat_parameters(nn::Module& model) {
  std::vector<float> all;
  for (const Tensor& p : model.parameters()) {
    const std::vector<float> v = p.to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

struct Run {
  std::vector<float> params;
  std::vector<double> losses;  // the first step's loss (the rank's share), then every 10th
  std::int64_t replayed = 0;   // steps replayed from the recording
  std::string replay_error;    // why the step was not recorded ("" when it was, or not asked)
};

// `steps` steps of batch 128 drawn inside the step from a source with binarization, shuffled per
// epoch, Adam with clipping, in `group` (each rank its share, or one process the whole batch); the
// data on the model's device.
template <class Model>
Run train(Model& model, Group& group, const Tensor& data, int steps, bool replay) {
  // Adam's eps 1e-6 rather than 1e-8: with 1e-8 a parameter whose gradient is rounding noise
  // (a decoder weight of a pixel that is always 0) moves by +-lr with the noise's sign, so float
  // rounding alone (64 + 64 rows summed instead of 128) parts the runs by 1e-2 within 100 IWAE
  // steps; with 1e-6 such a gradient moves nothing and the comparison measures the sharding.
  optim::Adam opt(model.parameters(), {.lr = 1e-3, .eps = 1e-6});
  models::CompiledStep step(model, opt, {.grad_clip = 5.0, .replay = replay, .group = &group});
  data::BatchSource source(data, {.binarize = true, .seed = 3});
  Run run;
  int taken = 0;
  for (std::int64_t epoch = 0; taken < steps; ++epoch) {
    source.start_epoch(data::batches(data, {.batch = 128, .seed = 5, .epoch = epoch}).order(),
                       epoch);
    while (source.left() >= 128 && taken < steps) {
      const models::Loss loss = step(source, 128);
      if (taken % 10 == 0) run.losses.push_back(loss.total.item());
      ++taken;
    }
  }
  run.params = flat_parameters(model);
  run.replayed = step.replayed_steps();
  run.replay_error = step.replay_error();
  return run;
}

double relative_distance(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

// `make(device)` builds the model on `device`: the CPU (the collectives through MPI), or this
// rank's GPU (through NCCL, the all-reduce captured in the step's CUDA graph).
template <class Make>
void expect_ranks_train_as_one(const char* name, Make make, Device device = Device::cpu()) {
  Group& w = world();
  const Tensor data = data_set().to(device);
  auto ranks = make(device);
  const int steps = 100;
  const Run shared = train(*ranks, w, data, steps, true);
  if (device.is_cuda()) {
    // Recorded with the NCCL call inside, and replayed.
    EXPECT_EQ(shared.replay_error, "") << name;
    EXPECT_GT(shared.replayed, 0) << name;
  }
  // The same again: identical bits (on the CPU eager steps give them too; on a GPU the eager
  // steps' kernels may be other GEMMs than the captured ones', so they are compared as one
  // process's are, and the identical bits asked of a second recorded run).
  auto again = make(device);
  const Run repeat = train(*again, w, data, steps, device.is_cuda());
  EXPECT_EQ(shared.params, repeat.params) << name << ": two runs of the ranks differ";
  // One process with the whole batch, in this process.
  auto one = make(device);
  const Run alone = train(*one, self(), data, steps, true);
  const double d = relative_distance(shared.params, alone.params);
  if (w.is_root())
    std::printf("%s on %s: %d ranks vs one process, relative distance %.3g\n", name,
                device.is_cpu() ? "the CPU" : "GPUs", w.size(), d);
  EXPECT_LT(d, 1e-5) << name << ": the ranks' parameters are " << d
                     << " (relative) from one process's";
  if (device.is_cuda()) {
    auto eager_model = make(device);
    const Run eager = train(*eager_model, w, data, steps, false);
    const double e = relative_distance(eager.params, alone.params);
    EXPECT_LT(e, 1e-5) << name << ": the ranks' eager steps are " << e
                       << " (relative) from one process's";
  }
  // Every rank holds the same parameters: their spread over the ranks is 0.
  double mine = 0;
  for (const float v : shared.params) mine += v;
  const double lo = w.all_reduce({mine}, ReduceOp::min)[0];
  const double hi = w.all_reduce({mine}, ReduceOp::max)[0];
  EXPECT_EQ(lo, hi) << name << ": the ranks' parameters differ";
}

std::unique_ptr<models::VAE> make_vae(Device device) {
  return std::make_unique<models::VAE>(
      models::VAEConfig{.input = 784,
                        .hidden = {64},
                        .latent = 8,
                        .warmup = {.kind = models::KlAnneal::linear, .steps = 50},
                        .seed = 2},
      device);
}

std::unique_ptr<models::DenoisingAE> make_dae(Device device) {
  return std::make_unique<models::DenoisingAE>(
      models::DenoisingAEConfig{.input = 784,
                                .latent = 8,
                                .encoder = {.hidden = {64}},
                                .decoder = {.hidden = {64}},
                                .corruption = {.kind = models::Corruption::masking, .p = 0.3},
                                .seed = 4},
      device);
}

// Smooth hidden units (softplus): the shares' gradients are summed in another order than one
// process's, and with ReLU a difference of that size can move a unit across its kink, after which
// the runs part by a whole step. The IWAE's sample weights magnify that past 1e-5 within 100
// steps with some GEMMs (latent's own, without OpenBLAS: 4e-4 to 1e-2), while with softplus the
// runs stay within about 1e-6 for 200 steps with either GEMM.
std::unique_ptr<models::IWAE> make_iwae(Device device) {
  return std::make_unique<models::IWAE>(models::IWAEConfig{.input = 784,
                                                           .hidden = {64},
                                                           .latent = 8,
                                                           .activation = Act::softplus,
                                                           .k = 3,
                                                           .seed = 6},
                                        device);
}

std::unique_ptr<models::SparseAE> make_sparse_kl(Device device) {
  return std::make_unique<models::SparseAE>(models::SparseAEConfig{.input = 784,
                                                                   .latent = 16,
                                                                   .encoder = {.hidden = {32}},
                                                                   .decoder = {.hidden = {32}},
                                                                   .penalty = models::Sparsity::kl,
                                                                   .seed = 8},
                                            device);
}

TEST(DistMpi, VaeRanksTrainAsOneProcess) {
  expect_ranks_train_as_one("vae", make_vae);
}

TEST(DistMpi, DenoisingRanksTrainAsOneProcess) {
  expect_ranks_train_as_one("dae", make_dae);
}

TEST(DistMpi, IwaeRanksTrainAsOneProcess) {
  expect_ranks_train_as_one("iwae", make_iwae);
}

// The Trainer across the ranks: the same epochs as one process (653 rows: the last batch of 13
// rows is shared 6 + 7, a weighted average), the same train means on every rank, rank 0's
// parameters broadcast at the start (the other ranks start from other weights here). The model on
// `device`, the data sets on the host.
void expect_trainer_ranks_as_one(Device device) {
  Group& w = world();
  const Tensor train = data_set(653);
  Generator tg(12);
  const Tensor test = Tensor::rand({100, 784}, tg);
  auto fit = [&](Group& group, std::uint64_t model_seed) {
    models::VAE vae({.input = 784, .hidden = {64}, .latent = 8, .seed = model_seed}, device);
    if (group.rank() != 0) {  // other weights than rank 0's: the broadcast replaces them
      NoGradGuard no_grad;
      for (Tensor& p : vae.parameters()) p.mul_(0.5);
    }
    optim::Adam opt(vae.parameters(), {.lr = 1e-3, .eps = 1e-6});
    models::Trainer trainer(vae, opt,
                            {.epochs = 2,
                             .batch = 128,
                             .seed = 5,
                             .binarize = true,
                             .eval_batch = 30,
                             .grad_clip = 5.0,
                             .group = &group});
    const models::History h = trainer.fit(train, test);
    return std::make_pair(flat_parameters(vae), h);
  };
  auto [shared_params, shared] = fit(w, 2);
  auto [alone_params, alone] = fit(self(), 2);
  EXPECT_LT(relative_distance(shared_params, alone_params), 1e-5);
  ASSERT_EQ(shared.epochs.size(), 2u);
  for (std::size_t e = 0; e < 2; ++e) {
    const double a = shared.epochs[e].train_value("total");
    const double b = alone.epochs[e].train_value("total");
    EXPECT_NEAR(a, b, 1e-5 * std::abs(b)) << "epoch " << e + 1;
    EXPECT_EQ(w.all_reduce({a}, ReduceOp::min)[0], w.all_reduce({a}, ReduceOp::max)[0]);
    // The evaluation is shared too (100 test rows in batches of 30: the last of 10 rows shared
    // 5 + 5) and gives one process's numbers.
    for (const char* m : {"total", "kl", "recon_mse"})
      EXPECT_NEAR(shared.epochs[e].test_value(m), alone.epochs[e].test_value(m),
                  1e-5 * std::abs(alone.epochs[e].test_value(m)))
          << m;
    EXPECT_EQ(shared.epochs[e].step, alone.epochs[e].step);
  }
}

TEST(DistMpi, TrainerRanksTrainAsOneProcess) {
  expect_trainer_ranks_as_one(Device::cpu());
}

// A resumed run across the ranks: rank 0 alone reads the training state (the others are given a
// path that does not exist) and the ranks end with the bits of a run that never stopped.
TEST(DistMpi, TrainerRanksResumeFromRankZerosState) {
  Group& w = world();
  const Tensor train = data_set(300);
  const std::string path =
      w.broadcast((std::filesystem::temp_directory_path() /
                   ("latent-dist-resume-" + std::to_string(::getpid()) + ".safetensors"))
                      .string(),
                  0);
  auto make = [&](int epochs, models::VAE& vae, optim::Adam& opt) {
    return models::Trainer(
        vae, opt, {.epochs = epochs, .batch = 64, .seed = 5, .binarize = true, .group = &w});
  };
  models::VAEConfig config{.input = 784, .hidden = {32}, .latent = 4, .seed = 3};
  // Three epochs straight.
  models::VAE straight(config);
  optim::Adam straight_opt(straight.parameters(), {.lr = 1e-3});
  make(3, straight, straight_opt).fit(train);
  // Two epochs, the state saved (by rank 0), then a fresh model resumed for the third.
  {
    models::VAE first(config);
    optim::Adam opt(first.parameters(), {.lr = 1e-3});
    models::Trainer t = make(2, first, opt);
    t.fit(train);
    t.save_state(path);
  }
  w.barrier();
  EXPECT_EQ(std::filesystem::exists(path), true);
  models::VAE resumed(
      models::VAEConfig{.input = 784, .hidden = {32}, .latent = 4, .seed = w.is_root() ? 3u : 77u});
  optim::Adam opt(resumed.parameters(), {.lr = 1e-3});
  models::Trainer t = make(1, resumed, opt);
  t.load_state(w.is_root() ? path : "/nonexistent/state.safetensors");
  EXPECT_EQ(t.epochs_done(), 2);
  EXPECT_EQ(t.history().epochs.size(), 2u);
  EXPECT_EQ(opt.step_count(), t.global_step());
  EXPECT_EQ(t.global_step() * 3, straight_opt.step_count() * 2);
  const models::History h = t.fit(train);
  EXPECT_EQ(h.epochs.size(), 3u);
  EXPECT_EQ(flat_parameters(resumed), flat_parameters(straight));
  if (w.is_root()) std::filesystem::remove(path);

  // A state rank 0 cannot read fails on every rank, with rank 0's message.
  models::VAE other(config);
  optim::Adam other_opt(other.parameters(), {.lr = 1e-3});
  models::Trainer broken = make(1, other, other_opt);
  std::string message;
  try {
    broken.load_state(path);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find(path), std::string::npos) << message;
  if (!w.is_root()) {
    EXPECT_NE(message.find("rank 0 could not resume"), std::string::npos) << message;
  }

  // A rank whose model is built otherwise than rank 0's: every rank throws, naming it.
  if (w.is_root()) {
    models::VAE first(config);
    optim::Adam opt0(first.parameters(), {.lr = 1e-3});
    models::Trainer t0 = make(1, first, opt0);
    t0.save_state(path);
  }
  models::VAE odd(
      models::VAEConfig{.input = 784, .hidden = {w.is_root() ? 32 : 16}, .latent = 4, .seed = 3});
  optim::Adam odd_opt(odd.parameters(), {.lr = 1e-3});
  models::Trainer odd_trainer = make(1, odd, odd_opt);
  message.clear();
  try {
    odd_trainer.load_state(path);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("rank 1 could not resume"), std::string::npos) << message;
  if (w.is_root()) std::filesystem::remove(path);
}

// The evaluation functions shared by the ranks give one process's numbers on every rank (100
// rows in batches of 30: the last batch of 10 is shared 5 + 5; batches of 1: one rank idle).
TEST(DistMpi, EvaluationIsSharedAndGivesOneProcesssNumbers) {
  Group& w = world();
  Generator g(21);
  const Tensor x = bernoulli(Tensor::rand({100, 784}, g), g);
  models::VAE vae({.input = 784, .hidden = {32}, .latent = 6, .seed = 4});
  auto same_everywhere = [&](double v) {
    EXPECT_EQ(w.all_reduce({v}, ReduceOp::min)[0], w.all_reduce({v}, ReduceOp::max)[0]);
  };
  // Float sums over shares of the rows instead of whole batches: equal up to their rounding.
  auto near = [](double a, double b) { EXPECT_NEAR(a, b, 1e-6 * std::max(1.0, std::abs(b))); };
  for (const std::int64_t batch : {30, 1}) {
    const models::EvalOptions shared{.batch = batch, .seed = 9, .group = &w};
    const models::EvalOptions alone{.batch = batch, .seed = 9};
    const auto e1 = models::elbo(vae, x, 2, shared), e0 = models::elbo(vae, x, 2, alone);
    near(e1.elbo, e0.elbo);
    near(e1.kl, e0.kl);
    same_everywhere(e1.elbo);
    const auto r1 = models::reconstruction_error(vae, x, shared);
    const auto r0 = models::reconstruction_error(vae, x, alone);
    near(r1.nll, r0.nll);
    near(r1.squared_error, r0.squared_error);
    same_everywhere(r1.nll);
    const auto a1 = models::active_units(vae, x, 0.0, shared);
    const auto a0 = models::active_units(vae, x, 0.0, alone);
    EXPECT_EQ(a1.count, a0.count);
    const std::vector<float> v1 = a1.variance.to_vector<float>(),
                             v0 = a0.variance.to_vector<float>();
    for (std::size_t j = 0; j < v0.size(); ++j) EXPECT_NEAR(v1[j], v0[j], 1e-6 * v0[j]) << j;
    const std::vector<float> k1 = models::kl_per_dim(vae, x, shared).to_vector<float>();
    const std::vector<float> k0 = models::kl_per_dim(vae, x, alone).to_vector<float>();
    for (std::size_t j = 0; j < k0.size(); ++j) EXPECT_NEAR(k1[j], k0[j], 1e-6 * k0[j]) << j;
  }
  const double l1 = models::log_likelihood(
      vae, x.rows(0, 23), {.k = 50, .chunk = 16, .batch = 7, .seed = 2, .group = &w});
  const double l0 =
      models::log_likelihood(vae, x.rows(0, 23), {.k = 50, .chunk = 16, .batch = 7, .seed = 2});
  near(l1, l0);
  same_everywhere(l1);
}

TEST(DistMpi, TrainerRanksWithOtherSettingsAreRefused) {
  Group& w = world();
  const Tensor train = data_set(256);
  models::VAE vae({.input = 784, .hidden = {16}, .latent = 4, .seed = 1});
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  models::Trainer trainer(vae, opt, {.epochs = 1, .batch = w.rank() == 0 ? 128 : 64});
  std::string message;
  try {
    trainer.fit(train);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("ranks disagree on 'batch': 128 on rank 0, 64 on rank 1"),
            std::string::npos)
      << message;
}

// Every rank takes at least one row of each batch: a batch or a training set with fewer rows than
// ranks is refused on every rank, rather than training on nothing.
TEST(DistMpi, TrainerRefusesFewerRowsThanRanks) {
  Group& w = world();
  models::VAE vae({.input = 784, .hidden = {16}, .latent = 4, .seed = 1});
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  auto message_of = [&](std::int64_t batch, std::int64_t rows) {
    models::Trainer trainer(vae, opt, {.epochs = 1, .batch = batch, .group = &w});
    try {
      trainer.fit(data_set(rows));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::int64_t n = w.size();
  const std::string batch = message_of(n - 1, 64);
  EXPECT_NE(
      batch.find(detail::cat("a batch of ", n - 1, " rows cannot be shared by ", n, " ranks")),
      std::string::npos)
      << batch;
  const std::string rows = message_of(64, n - 1);
  EXPECT_NE(rows.find(detail::cat("a training set of ", n - 1, " rows cannot be shared by ", n,
                                  " ranks")),
            std::string::npos)
      << rows;
  EXPECT_EQ(opt.step_count(), 0);
}

// Losses on the whole batch's statistics (the sparse AE's KL penalty on the mean activation, free
// bits on the mean KL per dimension): the shares' means are reduced inside the step
// (dist::whole_batch_mean), so the ranks still train as one process.
TEST(DistMpi, SparseKlRanksTrainAsOneProcess) {
  expect_ranks_train_as_one("sae-kl", make_sparse_kl);
}

// The penalty's value on a share is the whole batch's (the loss each rank reports).
TEST(DistMpi, SparseKlPenaltyOfAShareIsTheWholeBatchs) {
  Group& w = world();
  models::SparseAE sae({.input = 20, .latent = 6, .penalty = models::Sparsity::kl, .seed = 2});
  Generator g(5);
  const Tensor code = sigmoid(Tensor::randn({9, 6}, g));
  const double whole = sae.penalty(code).item();
  const Share s = share(9, w.rank(), w.size());
  RowShardScope scope(RowShard{.first = s.first, .count = s.count, .total = 9, .group = &w});
  EXPECT_NEAR(sae.penalty(code.rows(s.first, s.count)).item(), whole, 1e-5 * std::abs(whole));
}

TEST(DistMpi, FreeBitsRanksTrainAsOneProcess) {
  expect_ranks_train_as_one("vae-free-bits", [](Device device) {
    return std::make_unique<models::VAE>(
        models::VAEConfig{.input = 784, .hidden = {64}, .latent = 8, .free_bits = 0.5, .seed = 9},
        device);
  });
}

// The ranks on this machine, counted by host name here (by name and boot id in the Session), and
// each rank's CPU threads: OMP_NUM_THREADS where it is set (the other tests), else its share of
// the machine (the test dist_threads_np2, started without it).
TEST(DistMpi, RanksShareTheMachinesProcessors) {
  Group& w = world();
  int here = 0;
  for (int r = 0; r < w.size(); ++r) here += w.broadcast(host_name(), r) == host_name() ? 1 : 0;
  EXPECT_EQ(w.local_size(), here);
  const int threads = kernels::cpu::cpu_threads();
  if (const char* v = std::getenv("OMP_NUM_THREADS")) {
    EXPECT_EQ(threads, std::atoi(v));
  } else {
    EXPECT_EQ(threads, rank_cpu_threads(kernels::cpu::online_processors(),
                                        kernels::cpu::usable_processors(), here));
    EXPECT_LE(threads * here, std::max(kernels::cpu::online_processors(), here));
  }
}

// The whole batch's mean from the shares (weighted by their rows: 128 rows shared 64 + 64, and a
// batch of 7 shared 3 + 4), with the share's own gradient.
TEST(DistMpi, WholeBatchMeanReducesTheShares) {
  Group& w = world();
  for (const std::int64_t total : {128, 7}) {
    const Share s = share(total, w.rank(), w.size());
    Generator g(31);
    const Tensor all = Tensor::rand({total, 5}, g);
    const std::vector<float> want = mean(all, 0).to_vector<float>();
    Tensor x = all.rows(s.first, s.count).clone();
    x.requires_grad_(true);
    Tensor m;
    {
      RowShardScope scope(
          RowShard{.first = s.first, .count = s.count, .total = total, .group = &w});
      m = whole_batch_mean(mean(x, 0));
    }
    const std::vector<float> got = m.to_vector<float>();
    for (std::size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(got[j], want[j], 1e-6) << j;
    sum(m).backward();
    for (const float v : x.grad().to_vector<float>())
      EXPECT_FLOAT_EQ(v, 1.0f / static_cast<float>(s.count));
    // Outside a shared scope: the tensor itself.
    const Tensor local = mean(x, 0);
    EXPECT_EQ(whole_batch_mean(local).to_vector<float>(), local.to_vector<float>());
  }
}

// ---- on GPUs: the same through NCCL ----------------------------------------------------------
// Where every rank has a GPU of its own (mpirun -np 2 on a machine with two GPUs, or ranks on
// machines of their own), the collectives on GPU tensors go between the ranks through NCCL: its
// unique id broadcast over MPI, the step's all-reduce captured in its CUDA graph. Elsewhere (no
// GPU; fewer GPUs than ranks on a machine) the suite skips itself on every rank alike, saying why.

// This rank's GPU (rank_device: cuda:<local rank>, refused where two ranks would share one), or
// why the ranks have none each: the same answer on every rank.
struct OwnGpu {
  std::optional<Device> device;
  std::string why;
};
const OwnGpu& own_gpu() {
  static const OwnGpu gpu = [] {
    if (world().size() == 1) return OwnGpu{std::nullopt, "a world of one: run under mpirun -np 2"};
    if (!built_with_nccl()) return OwnGpu{std::nullopt, "this latent was built without NCCL"};
    try {
      return OwnGpu{rank_device("cuda", "the GPU tests", ""), ""};
    } catch (const SharedError& e) {
      return OwnGpu{std::nullopt, e.what()};
    }
  }();
  return gpu;
}
#define LATENT_REQUIRE_OWN_GPU() \
  if (!own_gpu().device) GTEST_SKIP() << own_gpu().why

// A GPU asked of ranks that see none: refused on every rank alike, naming the first such rank
// (none left waiting in a collective for a rank that threw alone).
TEST(DistMpi, AGpuNoRankSeesIsRefusedOnEveryRank) {
  Group& w = world();
  const double most = w.all_reduce({static_cast<double>(cuda_device_count())}, ReduceOp::max)[0];
  if (most > 0) GTEST_SKIP() << "a rank sees a GPU";
  std::string message;
  try {
    rank_device("cuda", "train", "--device");
  } catch (const SharedError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("--device cuda: rank 0 sees no CUDA GPU"), std::string::npos) << message;
  // On the CPU, the ranks go on together.
  EXPECT_TRUE(rank_device("cpu", "train", "--device").is_cpu());
}

// A value one rank cannot take (a GPU index it lacks, a word that is no device): refused on every
// rank alike, with that rank's reason.
TEST(DistMpi, ADeviceOneRankCannotTakeIsRefusedOnEveryRank) {
  Group& w = world();
  std::string message;
  try {
    rank_device(w.rank() == 1 ? "gpu" : "cpu", "train", "--device");
  } catch (const SharedError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("rank 1: [device] unknown device 'gpu'"), std::string::npos) << message;
  EXPECT_EQ(w.all_reduce({message.empty() ? 0.0 : 1.0}, ReduceOp::min)[0], 1.0);
}

TEST(DistMpiGpu, AllReducesThroughNccl) {
  LATENT_REQUIRE_OWN_GPU();
  const Device gpu = *own_gpu().device;
  Group& w = world();
  const int n = w.size();
  const double r = w.rank();
  // 3000 values, and 2^21 + 7 (NCCL cuts it in pieces, the last a short one). Element i of rank r:
  // r + i mod 1000, whose sums are exact in float32.
  for (const std::int64_t count : {std::int64_t{3000}, std::int64_t{(1 << 21) + 7}}) {
    std::vector<double> values(static_cast<std::size_t>(count));
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = r + static_cast<double>(i % 1000);
    const Tensor base = Tensor::from_data(values, {count}).to(gpu);
    for (const ReduceOp op : {ReduceOp::sum, ReduceOp::mean, ReduceOp::min, ReduceOp::max}) {
      Tensor t = base.clone();
      w.all_reduce(t, op);
      const std::vector<float> got = t.to(Device::cpu()).to_vector<float>();
      auto check_at = [&](std::size_t i) {
        EXPECT_FLOAT_EQ(got[i], static_cast<float>(reduced(op, n, static_cast<double>(i % 1000))))
            << count << " values, element " << i;
      };
      for (std::size_t i = 0; i < got.size(); i += 4099) check_at(i);
      check_at(got.size() - 1);
    }
  }
  EXPECT_EQ(w.nccl_error(), "");  // what the Session's watchdog asks every second
}

TEST(DistMpiGpu, BroadcastsThroughNcclFromAnyRoot) {
  LATENT_REQUIRE_OWN_GPU();
  const Device gpu = *own_gpu().device;
  Group& w = world();
  for (int root = 0; root < w.size(); ++root) {
    Tensor t = Tensor::full({5000}, 10.0 * w.rank() + 1).to(gpu);
    w.broadcast(t, root);
    EXPECT_EQ(t.to(Device::cpu()).to_vector<float>(),
              std::vector<float>(5000, static_cast<float>(10.0 * root + 1)));
  }
}

// An all-reduce captured in a CUDA graph (the communicator made before, by an eager one): every
// replay reduces what the memory holds then.
TEST(DistMpiGpu, ACapturedAllReduceReplays) {
  LATENT_REQUIRE_OWN_GPU();
  const Device gpu = *own_gpu().device;
  Group& w = world();
  const int n = w.size();
  Tensor t = Tensor::full({4}, 1.0 + w.rank()).to(gpu);
  w.all_reduce(t, ReduceOp::sum);
  EXPECT_EQ(t.to(Device::cpu()).to_vector<float>()[0], n * (n + 1) / 2.0f);
  dispatch::Plan plan;
  {
    dispatch::Recorder rec(plan, gpu);
    w.all_reduce(t, ReduceOp::sum);
    rec.finish();
  }
  ASSERT_TRUE(plan.is_graph());
  for (int k = 0; k < 3; ++k) {
    t.fill_(static_cast<double>(w.rank() * k));
    plan.replay();
    EXPECT_EQ(t.to(Device::cpu()).to_vector<float>()[0], k * n * (n - 1) / 2.0f) << "replay " << k;
  }
}

TEST(DistMpiGpu, VaeRanksTrainAsOneProcess) {
  LATENT_REQUIRE_OWN_GPU();
  expect_ranks_train_as_one("vae", make_vae, *own_gpu().device);
}

TEST(DistMpiGpu, IwaeRanksTrainAsOneProcess) {
  LATENT_REQUIRE_OWN_GPU();
  expect_ranks_train_as_one("iwae", make_iwae, *own_gpu().device);
}

// The whole batch's statistics reduced inside the captured step (dist::whole_batch_mean).
TEST(DistMpiGpu, SparseKlRanksTrainAsOneProcess) {
  LATENT_REQUIRE_OWN_GPU();
  expect_ranks_train_as_one("sae-kl", make_sparse_kl, *own_gpu().device);
}

TEST(DistMpiGpu, TrainerRanksTrainAsOneProcess) {
  LATENT_REQUIRE_OWN_GPU();
  expect_trainer_ranks_as_one(*own_gpu().device);
}

}  // namespace
}  // namespace latent::dist

int main(int argc, char** argv) {
  latent::dist::Session session(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  // The job fails when any rank failed (every rank gets here: the tests make the same calls).
  const std::vector<double> worst =
      latent::dist::world().all_reduce({static_cast<double>(rc)}, latent::dist::ReduceOp::max);
  return worst[0] != 0 ? 1 : 0;
}
