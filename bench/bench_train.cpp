// Training throughput of the autoencoders: the VAE 784-512-256-32 with a Bernoulli likelihood
// (relu hidden layers; recon = BCE with logits summed over pixels, batch mean; + analytic KL)
// and the AE with the same sizes (784-512-256-32-256-512-784, BCE with logits), with Adam
// (lr 1e-3), at batch 128, 1024 and 4096 (and 65536 without --quick) on the GPU; with --cpu at
// 128 and 1024 on the CPU. One step is forward,
// loss, zero_grad, backward and the optimizer step; nothing reads a value back inside it.
//
// Each configuration first checks that it trains: `check_steps` steps reading the loss after each
// one, and the mean of the last three must be below the first. A configuration that does not
// train prints {"bench":"train",...,"error":...} and the binary exits with status 1 at the end.
// Then it is timed: warm-up, then the median over `runs` samples of back-to-back steps (CUDA
// events on the device's stream on the GPU, the host clock on the CPU; bench_util.h). One JSON
// line per configuration:
//   {"bench":"train","model":"vae","shape":"784-512-256-32","batch":128,"math":"fp32",
//    "device":"NVIDIA H100 80GB HBM3","commit":"...","median_ms":...,"steps_per_s":...,
//    "samples_per_s":...,"tflops":...,"peak_fraction":...,"loss_first":...,"loss_last":...}
// tflops counts the GEMMs only (2 N in out per layer for the forward, as much again for dW and for
// dx, except the first layer's dx, which nobody needs); peak_fraction is against the FP32 peak
// (null for TF32, whose tensor-core peak the runtime does not report).
// "math":"tf32" runs the GEMMs on TF32 tensor cores (latent::set_tf32), at batch 1024 only, where
// the step is GEMM-bound. The same models in PyTorch: bench/pytorch/.
//
// Data: 8 batches of consecutive Fashion-MNIST training images when the files are found
// ($LATENT_FASHION_MNIST or Debian's folder), else synthetic striped images (8192 of them),
// wrapping around when a batch size needs more; the steps cycle over those batches, already on the
// device. "data" says which.
//
// Without a GPU: {"bench":"train","skipped":"no CUDA GPU"} (and the CPU lines with --cpu), status
// 0. Options: --cpu, --quick (fewer steps and samples).
// With --dist (under mpirun or srun; bench/README.md): data-parallel scaling. For each model and
// global batch, the recorded training step (models::CompiledStep, one all-reduce of the gradients
// per step) is timed on one rank alone (rank 0; the others wait asleep) and then on all the ranks
// sharing every batch, each rank on the GPU of its local rank (--cpu: on the CPU). One line per
// world size: {"bench":"train_dist",...,"world_size":2,"batch":128,"batch_per_rank":64,
// "samples_per_s":...,"scaling_efficiency":...}, printed by rank 0; scaling_efficiency is
// samples/s over world_size times the samples/s of one rank at the same global batch.
// "mode" is "eager" (define-by-run: the graph built and walked every step) or, for models whose
// step is replayable (every model of the family), "replayed": the step recorded once (a CUDA graph
// on a GPU) and its kernel calls made again on the same memory (dispatch::Plan), with
// "speedup_vs_eager".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/backend.h"
#include "core/dispatch.h"
#include "core/dist/dist.h"
#include "core/latent.h"
#include "kernels/cpu_vmath.h"
#include "kernels/gemm.h"
#include "models/autoencoder.h"
#include "models/compiled_step.h"
#include "models/vae.h"

namespace {

using namespace latent;
using bench::JsonLine;

constexpr std::int64_t kPool = 8;  // batches the steps cycle over
constexpr std::int64_t kPixels = 784;
const std::vector<std::int64_t> kHidden = {512, 256};
constexpr std::int64_t kLatent = 32;

struct Options {
  bool cpu = false;
  bool quick = false;
  bool dist = false;
};

struct Config {
  std::string model;  // "vae" or "ae"
  std::int64_t batch;
  bool tf32;
};

struct Data {
  Tensor images;  // [rows, 784] on the CPU, in [0, 1]
  std::string source;
};

// Images of sinusoidal stripes, 0.5 + 0.5 sin(2 pi f_r r / 28 + phase) cos(2 pi f_c c / 28), with
// integer frequencies 1..3 and a phase per image: structured enough that a model's loss falls.
Tensor synthetic_images(std::int64_t rows) {
  std::vector<float> v(static_cast<std::size_t>(rows * kPixels));
  std::uint32_t s = 2463534242u;
  auto next = [&s] {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  };
  const double two_pi = 2.0 * std::numbers::pi;
  for (std::int64_t n = 0; n < rows; ++n) {
    const double fr = 1 + next() % 3, fc = 1 + next() % 3;
    const double phase = two_pi * (next() % 1000) / 1000.0;
    for (std::int64_t r = 0; r < 28; ++r)
      for (std::int64_t c = 0; c < 28; ++c)
        v[static_cast<std::size_t>(n * kPixels + r * 28 + c)] =
            static_cast<float>(0.5 + 0.5 * std::sin(two_pi * fr * r / 28.0 + phase) *
                                         std::cos(two_pi * fc * c / 28.0));
  }
  return Tensor::from_data(std::span<const float>(v), {rows, kPixels});
}

Data load_data(std::int64_t rows) {
  try {
    return {data::fashion_mnist(Split::train, {.limit = rows}).images, "fashion-mnist"};
  } catch (const Error&) {
    return {synthetic_images(rows), "synthetic"};
  }
}

std::unique_ptr<models::Autoencoder> make_model(const std::string& name, Device device) {
  if (name == "vae")
    return std::make_unique<models::VAE>(
        models::VAEConfig{.input = kPixels,
                          .hidden = kHidden,
                          .latent = kLatent,
                          .likelihood = models::Likelihood::bernoulli,
                          .beta = 1.0,
                          .seed = 0},
        device);
  return std::make_unique<models::AE>(
      models::AEConfig{
          .input = kPixels,
          .latent = kLatent,
          .encoder = {.hidden = kHidden},
          .decoder = {.hidden = std::vector<std::int64_t>(kHidden.rbegin(), kHidden.rend())},
          .likelihood = {.kind = models::Likelihood::bernoulli},
          .seed = 0},
      device);
}

// GEMM flops of one training step (see the header comment).
double step_flops(const std::string& model, std::int64_t batch) {
  std::vector<std::int64_t> sizes = {kPixels};
  sizes.insert(sizes.end(), kHidden.begin(), kHidden.end());
  sizes.push_back(model == "vae" ? 2 * kLatent : kLatent);
  std::vector<std::int64_t> decoder = {kLatent};
  decoder.insert(decoder.end(), kHidden.rbegin(), kHidden.rend());
  decoder.push_back(kPixels);
  double per_row = 0;
  for (const auto* net : {&sizes, &decoder})
    for (std::size_t l = 0; l + 1 < net->size(); ++l)
      per_row += 3.0 * 2.0 * double((*net)[l]) * double((*net)[l + 1]);
  per_row -= 2.0 * double(kPixels) * double(kHidden.front());  // no dx for the input
  return per_row * double(batch);
}

class Bench {
 public:
  Bench(const Options& opt, Device device, std::string device_name, double peak_tflops)
      : opt_(opt),
        device_(device),
        device_name_(std::move(device_name)),
        peak_tflops_(peak_tflops) {}

  bool failed() const { return failed_; }
  void run(const Config& c, const Data& data);

 private:
  JsonLine line(const Config& c) const {
    JsonLine j;
    j.str("bench", "train")
        .str("model", c.model)
        .str("shape", "784-512-256-32")
        .str("likelihood", "bernoulli")
        .integer("batch", c.batch)
        .str("math", c.tf32 ? "tf32" : "fp32")
        .str("device", device_name_)
        .str("commit", bench::commit());
    if (device_.is_cpu())
      j.integer("threads", bench::thread_count())
          .str("gemm",
               kernels::cpu::gemm_impl() == kernels::cpu::GemmImpl::blas ? "openblas" : "own")
          .boolean("sleef", kernels::cpu::vmath::has_sleef());
    return j;
  }

  Options opt_;
  Device device_;
  std::string device_name_;
  double peak_tflops_;
  bool failed_ = false;
};

void Bench::run(const Config& c, const Data& data) {
  set_tf32(c.tf32);
  try {
    auto model = make_model(c.model, device_);
    model->train();
    optim::Adam opt(model->parameters(), {.lr = 1e-3});
    std::vector<Tensor> pool;
    // Batches of consecutive rows, wrapping around the data (large batches repeat images).
    const std::int64_t available = data.images.dim(0);
    for (std::int64_t i = 0; i < kPool; ++i) {
      std::vector<Tensor> parts;
      for (std::int64_t start = i * c.batch % available, left = c.batch; left > 0;) {
        const std::int64_t take = std::min(left, available - start);
        parts.push_back(data.images.rows(start, take));
        left -= take;
        start = 0;
      }
      const Tensor batch = parts.size() == 1 ? parts.front() : concat_rows(parts);
      pool.push_back(batch.to(device_));
    }
    std::size_t next = 0;
    Tensor loss;
    auto step = [&] {
      const Tensor& x = pool[next++ % pool.size()];
      loss = model->compute_loss(x).total;
      opt.zero_grad();
      loss.backward();
      opt.step();
    };

    // It must train before it is worth timing.
    const int check_steps = device_.is_cpu() || opt_.quick ? 10 : 30;
    std::vector<double> losses;
    for (int i = 0; i < check_steps; ++i) {
      step();
      losses.push_back(loss.item());
    }
    const double first = losses.front();
    const double last =
        (losses[losses.size() - 1] + losses[losses.size() - 2] + losses[losses.size() - 3]) / 3.0;
    if (!(last < first) || !std::isfinite(last)) {
      failed_ = true;
      line(c)
          .str("error",
               "the loss did not fall: " + std::to_string(first) + " -> " + std::to_string(last))
          .print();
      set_tf32(false);
      return;
    }

    // Kernel calls of one (warm) step, as the dispatcher counts them on any device.
    const dispatch::KernelCounts before = dispatch::kernel_counts();
    step();
    const dispatch::KernelCounts after = dispatch::kernel_counts();

    bench::Timing t;
    if (device_.is_cuda()) {
      t = bench::time_cuda(device_, step,
                           {.warmup = 10, .runs = opt_.quick ? 5 : 21, .min_sample_ms = 50});
    } else {
      t = bench::time_host(step, {.warmup = 2, .runs = opt_.quick ? 5 : 7, .min_sample_ms = 100});
    }
    const double seconds = t.median_ms * 1e-3;
    const double tflops = step_flops(c.model, c.batch) / seconds / 1e12;
    JsonLine j = line(c);
    j.num("median_ms", t.median_ms, 4)
        .num("min_ms", t.min_ms, 4)
        .integer("iters", t.iters)
        .integer("runs", t.runs)
        .num("steps_per_s", 1.0 / seconds, 1)
        .num("samples_per_s", double(c.batch) / seconds, 1)
        .num("tflops", tflops, 3)
        .integer("kernel_calls", after.calls - before.calls)
        .integer("gemms", after.gemms - before.gemms);
    if (device_.is_cuda() && !c.tf32)
      j.num("peak_fraction", tflops / peak_tflops_, 4);
    else
      j.null("peak_fraction");
    j.num("loss_first", first, 3)
        .num("loss_last", last, 3)
        .integer("check_steps", check_steps)
        .str("data", data.source)
        .str("mode", "eager")
        .print();

    // The same step recorded once and replayed (dispatch::Plan; models whose step is
    // replayable): each replay writes the next batch into the recorded input, then makes the
    // recorded kernel calls again on the CPU, or launches the captured CUDA graph on a GPU.
    if (model->replayable_step()) {
      Tensor input = pool[0].clone();
      dispatch::Plan plan;
      {
        dispatch::Recorder rec(plan, device_);
        loss = model->compute_loss(input).total;
        opt.zero_grad();
        loss.backward();
        opt.step();
        rec.finish();
      }
      if (plan.is_graph()) plan.replay();  // the capture ran nothing: this is the step
      auto replay = [&] {
        input.copy_(pool[next++ % pool.size()]);
        plan.replay();
      };
      const bench::Timing r =
          device_.is_cuda()
              ? bench::time_cuda(device_, replay,
                                 {.warmup = 10, .runs = opt_.quick ? 5 : 21, .min_sample_ms = 50})
              : bench::time_host(replay,
                                 {.warmup = 2, .runs = opt_.quick ? 5 : 7, .min_sample_ms = 100});
      const double rs = r.median_ms * 1e-3;
      line(c)
          .num("median_ms", r.median_ms, 4)
          .num("min_ms", r.min_ms, 4)
          .integer("iters", r.iters)
          .integer("runs", r.runs)
          .num("steps_per_s", 1.0 / rs, 1)
          .num("samples_per_s", double(c.batch) / rs, 1)
          .num("tflops", step_flops(c.model, c.batch) / rs / 1e12, 3)
          .integer("kernel_calls", static_cast<std::int64_t>(plan.size()))
          .null("peak_fraction")
          .num("loss_after", loss.item(), 3)
          .str("data", data.source)
          .str("mode", "replayed")
          .num("speedup_vs_eager", t.median_ms / r.median_ms, 3)
          .print();
    }
  } catch (const std::exception& e) {
    failed_ = true;
    line(c).str("error", e.what()).print();
    std::fprintf(stderr, "bench_train: %s batch %lld: %s\n", c.model.c_str(),
                 static_cast<long long>(c.batch), e.what());
  }
  set_tf32(false);
}

// ---- Data-parallel scaling (--dist) -------------------------------------------------------------

// The recorded step of `model_name` at global batch `batch` shared by the ranks of `group`: the
// steps per second (the slowest rank's sample each time), or an error message. Every rank of
// `group` calls it with the same arguments; nothing outside `group` may.
struct DistResult {
  double median_ms = 0;
  double min_ms = 0;
  int iters = 0;
  int runs = 0;
  double loss_first = 0, loss_last = 0;
  bool replayed = false;
  std::string error;
};

DistResult time_dist(dist::Group& group, const std::string& model_name, std::int64_t batch,
                     Device device, const Data& data, bool quick) {
  DistResult out;
  auto model = make_model(model_name, device);
  model->train();
  // The same start on every rank, as the Trainer does it.
  for (const Tensor& p : model->parameters()) group.broadcast(p, 0);
  optim::Adam opt(model->parameters(), {.lr = 1e-3});
  models::CompiledStep step(*model, opt, {.group = &group});
  std::vector<Tensor> pool;
  const std::int64_t available = data.images.dim(0);
  for (std::int64_t i = 0; i < kPool; ++i) {
    std::vector<Tensor> parts;
    for (std::int64_t start = i * batch % available, left = batch; left > 0;) {
      const std::int64_t take = std::min(left, available - start);
      parts.push_back(data.images.rows(start, take));
      left -= take;
      start = 0;
    }
    pool.push_back((parts.size() == 1 ? parts.front() : concat_rows(parts)).to(device));
  }
  std::size_t next = 0;
  models::Loss loss;
  auto one = [&] { loss = step(pool[next++ % pool.size()]); };
  // The loss of the whole batch: the ranks' shares' losses averaged (equal shares here).
  auto batch_loss = [&] {
    return group.all_reduce(std::vector<double>{loss.total.item()}, dist::ReduceOp::mean)[0];
  };

  // It must train before it is worth timing.
  const int check_steps = 10;
  std::vector<double> losses;
  for (int i = 0; i < check_steps; ++i) {
    one();
    losses.push_back(batch_loss());
  }
  out.loss_first = losses.front();
  out.loss_last = (losses[check_steps - 1] + losses[check_steps - 2] + losses[check_steps - 3]) / 3;
  if (!(out.loss_last < out.loss_first) || !std::isfinite(out.loss_last)) {
    out.error = "the loss did not fall: " + std::to_string(out.loss_first) + " -> " +
                std::to_string(out.loss_last);
    return out;
  }
  out.replayed = step.replayed_last();

  // Every rank must take the same number of steps (each one is a collective): the steps per
  // sample come from the slowest rank's estimate, shared by all.
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  auto wait = [&] {
    if (device.is_cuda()) backend::synchronize(device);
  };
  const double target_ms = quick ? 100.0 : 300.0;
  wait();
  auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) one();
  wait();
  const double estimate =
      group.all_reduce(std::vector<double>{ms_since(t0) / 3.0}, dist::ReduceOp::max)[0];
  const int iters = static_cast<int>(std::clamp(std::ceil(target_ms / estimate), 1.0, 1000.0));
  const int runs = quick ? 3 : 7;
  std::vector<double> samples;
  for (int r = 0; r < runs; ++r) {
    group.barrier();
    t0 = Clock::now();
    for (int i = 0; i < iters; ++i) one();
    wait();
    samples.push_back(ms_since(t0) / iters);
  }
  samples = group.all_reduce(samples, dist::ReduceOp::max);
  out.median_ms = bench::median(samples);
  out.min_ms = *std::min_element(samples.begin(), samples.end());
  out.iters = iters;
  out.runs = runs;
  return out;
}

// bench_train --dist: every model and global batch on one rank, then on all of them.
bool run_dist(const Options& opt) {
  dist::Group& world = dist::world();
  // The device as `latent train --device auto` (or cpu) picks it, refused alike.
  Device device = Device::cpu();
  try {
    device = dist::rank_device(opt.cpu ? "cpu" : "auto", "bench_train --dist", "");
  } catch (const dist::SharedError& e) {
    if (world.is_root()) std::fprintf(stderr, "bench_train: %s\n", e.what());
    world.barrier();
    return false;
  } catch (const std::exception& e) {
    dist::abort(1, std::string("bench_train --dist: ") + e.what());
  }
  const bool use_gpu = device.is_cuda();
  const std::string device_name =
      use_gpu ? bench::gpu_info(device.index()).name : "cpu: " + bench::cpu_name();
  const std::vector<std::int64_t> batches =
      use_gpu ? (opt.quick ? std::vector<std::int64_t>{1024, 4096}
                           : std::vector<std::int64_t>{1024, 4096, 65536})
              : (opt.quick ? std::vector<std::int64_t>{128} : std::vector<std::int64_t>{128, 1024});
  const std::vector<std::string> models =
      opt.quick ? std::vector<std::string>{"vae"} : std::vector<std::string>{"vae", "ae"};
  const Data data = load_data(kPool * 1024);
  // The NCCL library GPU ranks reduce through (its version, or why it cannot be loaded).
  std::string nccl;
  if (use_gpu && world.size() > 1) {
    try {
      nccl = dist::nccl_version();
    } catch (const std::exception& e) {
      nccl = std::string("unavailable: ") + e.what();
    }
  }
  bool failed = false;
  for (const std::string& model : models) {
    for (const std::int64_t batch : batches) {
      double one_rank_samples = 0;
      std::vector<int> sizes = {1};
      if (world.size() > 1) sizes.push_back(world.size());
      for (const int size : sizes) {
        dist::Group& group = size == 1 ? dist::self() : world;
        DistResult r;
        if (size == world.size() || world.rank() == 0) {
          try {
            r = time_dist(group, model, batch, device, data, opt.quick);
          } catch (const std::exception& e) {
            if (size > 1) dist::abort(1, std::string("bench_train --dist: ") + e.what());
            r.error = e.what();
          }
        }
        world.barrier();  // the ranks that sat out wait here, asleep
        if (!world.is_root()) continue;
        JsonLine j;
        j.str("bench", "train_dist")
            .str("model", model)
            .str("shape", "784-512-256-32")
            .integer("batch", batch)
            .integer("world_size", size)
            .integer("batch_per_rank", batch / size)
            .integer("ranks_launched", world.size())
            .str("backend", size == 1 ? "none"
                            : use_gpu ? "nccl"
                                      : "mpi")
            .str("device", device_name)
            .str("commit", bench::commit());
        if (!use_gpu) j.integer("threads_per_rank", bench::thread_count());
        if (size > 1 && use_gpu) j.str("nccl", nccl);
        if (!r.error.empty()) {
          failed = true;
          j.str("error", r.error).print();
          continue;
        }
        const double samples = double(batch) / (r.median_ms * 1e-3);
        if (size == 1) one_rank_samples = samples;
        j.num("median_ms", r.median_ms, 4)
            .num("min_ms", r.min_ms, 4)
            .integer("iters", r.iters)
            .integer("runs", r.runs)
            .num("steps_per_s", 1e3 / r.median_ms, 1)
            .num("samples_per_s", samples, 1)
            .num_or_null("scaling_efficiency",
                         one_rank_samples > 0
                             ? std::optional<double>(samples / (size * one_rank_samples))
                             : std::nullopt,
                         3)
            .num("loss_first", r.loss_first, 3)
            .num("loss_last", r.loss_last, 3)
            .str("data", data.source)
            .str("mode", r.replayed ? "replayed" : "eager")
            .print();
      }
    }
  }
  // Every rank returns the same status.
  return world.all_reduce(std::vector<double>{failed ? 1.0 : 0.0}, dist::ReduceOp::max)[0] == 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--cpu") == 0) {
      opt.cpu = true;
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      opt.quick = true;
    } else if (std::strcmp(argv[i], "--dist") == 0) {
      opt.dist = true;
    } else {
      std::fprintf(stderr, "usage: %s [--cpu] [--quick] [--dist]\n", argv[0]);
      return 2;
    }
  }
  if (opt.dist) {
    try {
      dist::Session session(&argc, &argv);
      try {
        return run_dist(opt) ? 0 : 1;
      } catch (const std::exception& e) {
        dist::abort(1, std::string("bench_train --dist: ") + e.what());
      }
    } catch (const std::exception& e) {
      JsonLine().str("bench", "train_dist").str("error", e.what()).print();
      return 1;
    }
  }

  std::vector<Config> gpu_configs, cpu_configs;
  for (const char* model : {"vae", "ae"}) {
    gpu_configs.push_back({model, 128, false});
    gpu_configs.push_back({model, 1024, false});
    gpu_configs.push_back({model, 1024, true});
    gpu_configs.push_back({model, 4096, false});
    if (!opt.quick) gpu_configs.push_back({model, 65536, false});
    cpu_configs.push_back({model, 128, false});
    cpu_configs.push_back({model, 1024, false});
    // The large batches take seconds per step on a few cores: only in a full run.
    if (!opt.quick) {
      cpu_configs.push_back({model, 4096, false});
      cpu_configs.push_back({model, 65536, false});
    }
  }
  bool failed = false;
  try {
    const Data data = load_data(kPool * 1024);
    if (cuda_available()) {
      const bench::GpuInfo gpu = bench::gpu_info(0);
      Bench b(opt, Device::cuda(0), gpu.name, gpu.peak_fp32_tflops);
      for (const Config& c : gpu_configs) b.run(c, data);
      failed = failed || b.failed();
    } else {
      JsonLine()
          .str("bench", "train")
          .str("skipped", "no CUDA GPU")
          .str("commit", bench::commit())
          .print();
    }
    if (opt.cpu) {
      Bench b(opt, Device::cpu(), "cpu: " + bench::cpu_name(), 0.0);
      for (const Config& c : cpu_configs) b.run(c, data);
      failed = failed || b.failed();
    }
  } catch (const std::exception& e) {
    JsonLine().str("bench", "train").str("error", e.what()).str("commit", bench::commit()).print();
    return 1;
  }
  return failed ? 1 : 0;
}
