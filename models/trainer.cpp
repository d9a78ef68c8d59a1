#include "models/trainer.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <optional>
#include <sstream>

#include "core/backend.h"
#include "core/data/file_util.h"
#include "core/dispatch.h"
#include "kernels/axpy.h"

namespace latent::models {

namespace {

constexpr const char* kWhere = "trainer";

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Decorrelates the generator keys the Trainer derives from one seed: the batch permutations use
// Philox(seed) itself, so the binarization streams need keys of their own.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t salt) {
  std::uint64_t z = seed + salt * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double lookup(const Metrics& m, const std::string& name, const char* which) {
  std::string known;
  for (const auto& [n, v] : m) {
    if (n == name) return v;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error(kWhere, detail::cat("no ", which, " metric '", name,
                                  "' (known: ", known.empty() ? "none" : known, ")"));
}

// Restores the model's training/evaluation mode on every exit path.
class ModeGuard {
 public:
  explicit ModeGuard(nn::Module& m) : m_(m), was_training_(m.is_training()) {}
  ~ModeGuard() { m_.train(was_training_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  nn::Module& m_;
  bool was_training_;
};

// Sums of "total" and every loss term weighted by batch rows. On the CPU the values are read at
// once into doubles; on a GPU one kernel adds them all to sums in device memory (in double), so a
// step does not wait for the host, and the host reads the sums once, at the epoch's end.
class TermSums {
 public:
  void add(const Loss& loss, std::int64_t rows) {
    std::vector<const Tensor*> values{&loss.total};
    std::vector<std::string> names{"total"};
    for (const auto& [n, t] : loss.terms) {
      values.push_back(&t);
      names.push_back(n);
    }
    if (names_.empty()) {
      names_ = names;
      host_.assign(names_.size(), 0.0);
    }
    check(names == names_, kWhere, "the model's loss terms changed between batches: ", join(names_),
          " then ", join(names));
    for (std::size_t i = 0; i < values.size(); ++i)
      check(values[i]->numel() == 1, kWhere, "loss term '", names_[i],
            "' is not a scalar: ", values[i]->str());
    NoGradGuard no_grad;
    const Tensor& first = loss.total;
    if (first.device().is_cpu() || first.dtype() != DType::f32 ||
        values.size() > static_cast<std::size_t>(kernels::kMaxScalars)) {
      for (std::size_t i = 0; i < values.size(); ++i)
        host_[i] += values[i]->detach().item() * static_cast<double>(rows);
    } else {
      if (!device_.defined()) {
        device_ = Tensor::zeros({2 * static_cast<std::int64_t>(names_.size())},
                                {.device = first.device()});
      }
      kernels::ScalarList<float> list;
      for (const Tensor* v : values) {
        check(v->device() == first.device() && v->dtype() == DType::f32, kWhere, "loss term ",
              v->str(), " is not on ", first.device().str(), " in float32 like the total");
        list.v[list.count++] = v->data<float>();
      }
      dispatch::run("trainer", first, [&](auto, auto be) {
        dispatch::call(be, LATENT_KERNEL(accumulate_scalars), dispatch::as_doubles(device_), list,
                       static_cast<double>(rows));
      });
    }
    rows_ += rows;
  }

  // The terms whose running sums on the host are not finite (a non-finite term makes its sum so).
  std::vector<std::string> non_finite_on_host() const {
    std::vector<std::string> bad;
    for (std::size_t i = 0; i < host_.size(); ++i)
      if (!std::isfinite(host_[i])) bad.push_back(names_[i]);
    return bad;
  }
  // A read of the device's running sums that does not wait for the step (none on the CPU, and
  // only the first ReadBack::kMaxBytes of them), for non_finite_in().
  std::optional<backend::ReadBack> read_device_sums() const {
    if (!device_.defined()) return std::nullopt;
    const std::size_t bytes =
        std::min(names_.size() * sizeof(double), backend::ReadBack::kMaxBytes);
    return backend::ReadBack(dispatch::as_doubles(device_), device_.device(), bytes);
  }
  std::vector<std::string> non_finite_in(const void* sums) const {
    std::vector<std::string> bad;
    const std::size_t n = std::min(names_.size(), backend::ReadBack::kMaxBytes / sizeof(double));
    for (std::size_t i = 0; i < n; ++i) {
      double v = 0;
      std::memcpy(&v, static_cast<const unsigned char*>(sums) + i * sizeof v, sizeof v);
      if (!std::isfinite(v)) bad.push_back(names_[i]);
    }
    return bad;
  }

  // The means over the rows added here, or over the rows every rank of `group` added.
  Metrics means(dist::Group& group) const {
    std::vector<double> device(names_.size(), 0.0);
    if (device_.defined())
      backend::copy(device.data(), Device::cpu(), dispatch::as_doubles(device_), device_.device(),
                    device.size() * sizeof(double));
    std::vector<double> sums(names_.size() + 1);
    for (std::size_t i = 0; i < names_.size(); ++i) sums[i] = host_[i] + device[i];
    sums.back() = static_cast<double>(rows_);
    if (group.size() > 1) {
      const double terms = static_cast<double>(names_.size());
      check(group.all_reduce({terms}, dist::ReduceOp::min)[0] ==
                group.all_reduce({terms}, dist::ReduceOp::max)[0],
            kWhere, "the ranks' models report different loss terms");
      sums = group.all_reduce(sums, dist::ReduceOp::sum);
    }
    const double rows = sums.back();
    Metrics m;
    for (std::size_t i = 0; i < names_.size(); ++i)
      m.emplace_back(names_[i],
                     rows > 0 ? sums[i] / rows : std::numeric_limits<double>::quiet_NaN());
    return m;
  }

 private:
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
    return "(" + s + ")";
  }

  std::vector<std::string> names_;
  std::vector<double> host_;
  Tensor device_;  // the device's sums, one double each (in float32 storage)
  std::int64_t rows_ = 0;
};

// The loss's values without the graph. A replayed step writes into the same tensors every time,
// so its values are copied (`own`): what a step callback keeps stays that step's.
Loss detached(const Loss& loss, bool own) {
  auto value = [own](const Tensor& t) { return own ? t.detach().clone() : t.detach(); };
  Loss d{.total = value(loss.total), .terms = {}};
  for (const auto& [n, t] : loss.terms) d.terms.emplace_back(n, value(t));
  return d;
}

std::string format_metrics(const Metrics& m) {
  std::ostringstream os;
  for (const auto& [n, v] : m) os << ' ' << n << ' ' << v;
  return os.str();
}

}  // namespace

double EpochRow::train_value(const std::string& name) const {
  return lookup(train, name, "train");
}

double EpochRow::test_value(const std::string& name) const {
  return lookup(test, name, "test");
}

const EpochRow& History::last() const {
  check(!epochs.empty(), kWhere, "the history is empty: no epoch has been trained");
  return epochs.back();
}

Trainer::Trainer(Autoencoder& model, optim::Optimizer& opt, TrainerConfig config,
                 std::optional<optim::LrSchedule> schedule)
    : model_(model),
      opt_(opt),
      config_(std::move(config)),
      group_(config_.group ? *config_.group : dist::world()),
      schedule_(std::move(schedule)),
      binarize_gen_(mix_seed(config_.seed, 1)),
      step_fn_(model_, opt_,
               {.grad_clip = config_.grad_clip, .replay = config_.replay, .group = &group_}) {
  check(config_.epochs >= 1, kWhere, "epochs must be >= 1, got ", config_.epochs);
  check(config_.batch >= 1, kWhere, "batch must be >= 1, got ", config_.batch);
  check(config_.eval_batch >= 1, kWhere, "eval_batch must be >= 1, got ", config_.eval_batch);
  check(config_.log_every >= 0, kWhere, "log_every must be >= 0 (0: silent), got ",
        config_.log_every);
  check(std::isfinite(config_.grad_clip) && config_.grad_clip >= 0, kWhere,
        "grad_clip must be finite and >= 0 (0: off), got ", config_.grad_clip);
}

void Trainer::check_data(const Tensor& x, const char* what) const {
  check(x.defined(), kWhere, "the ", what, " is an undefined tensor");
  check(x.ndim() == 2, kWhere, "the ", what, " must be [N, ", model_.input_dim(), "], got ",
        x.shape().str());
  check(x.dim(0) > 0, kWhere, "the ", what, " is empty: ", x.shape().str());
  check(x.dim(1) == model_.input_dim(), kWhere, "the ", what, " has rows of width ", x.dim(1),
        " but the model ", model_.name(), " takes inputs of width ", model_.input_dim(), " (",
        x.shape().str(), ")");
}

void Trainer::join_ranks(const Tensor& train, const Tensor& test) {
  if (group_.size() == 1) return;
  auto str = [](auto v) {
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
  };
  std::int64_t numel = 0;
  for (const Tensor& p : model_.parameters()) numel += p.numel();
  group_.check_same({{"epochs", str(config_.epochs)},
                     {"batch", str(config_.batch)},
                     {"shuffle", str(config_.shuffle)},
                     {"seed", str(config_.seed)},
                     {"binarize", str(config_.binarize)},
                     {"data_on_device", str(config_.data_on_device)},
                     {"eval_batch", str(config_.eval_batch)},
                     {"grad_clip", str(config_.grad_clip)},
                     {"replay", str(config_.replay)},
                     {"model", model_.name()},
                     {"model.parameters", str(numel)},
                     {"model.seed", str(model_.generator().seed())},
                     // GPU ranks reduce through NCCL, CPU ranks through MPI: one kind for all.
                     {"device", model_.device().is_cuda() ? "cuda" : "cpu"},
                     {"optimizer", opt_.name()},
                     {"optimizer.lr", str(opt_.lr())},
                     {"step", str(step_)},
                     {"epoch", str(epoch_)},
                     {"train.rows", str(train.dim(0))},
                     {"train.cols", str(train.dim(1))},
                     {"train.fingerprint", str(dist::fingerprint({train}))},
                     {"test.rows", str(test.defined() ? test.dim(0) : 0)},
                     {"test.fingerprint", test.defined() ? str(dist::fingerprint({test})) : ""}});
  // Rank 0's parameters and optimizer state (moments, step counts) everywhere.
  NoGradGuard no_grad;
  for (const Tensor& p : model_.parameters()) group_.broadcast(p);
  optim::NamedTensors state = opt_.state();
  for (auto& [name, t] : state) {
    t = t.clone();
    group_.broadcast(t);
  }
  opt_.load_state(state);
}

History Trainer::fit(const Tensor& train, const Tensor& test) {
  check_data(train, "training set");
  if (test.defined()) check_data(test, "test set");
  join_ranks(train, test);
  // Every rank takes at least one row of each batch (a shorter last batch is left out).
  const int ranks = group_.size();
  check(config_.batch >= ranks, kWhere, "a batch of ", config_.batch, " rows cannot be shared by ",
        ranks, " ranks: each takes at least one row; make the batch ", ranks, " or more");
  check(train.dim(0) >= ranks, kWhere, "a training set of ", train.dim(0),
        " rows cannot be shared by ", ranks, " ranks: each takes at least one row of every batch");
  if (!config_.metrics_csv.empty() && group_.is_root()) {
    // Fails now, before any training, when the folder is missing or not writable; the temporary
    // file is removed again by the destructor.
    data::AtomicWriter probe(config_.metrics_csv, kWhere);
  }

  Tensor test_eval = test;
  if (test.defined() && config_.binarize) {
    // One fixed draw per fit(), so that every epoch is evaluated on the same binary test set.
    Generator test_gen(mix_seed(config_.seed, 2));
    NoGradGuard no_grad;
    test_eval = bernoulli(test, test_gen);
  }

  // The same training set as the last fit (the same tensor, not written since): checked already.
  const bool same_train =
      last_train_.impl() == train.impl() && last_train_version_ == train.impl()->storage->version;
  const bool categorical = model_.likelihood().kind == Likelihood::categorical;
  if (config_.binarize || categorical) {
    // Grey levels are probabilities to binarize and intensities to quantize: a value outside
    // [0, 1] would be silently clipped by the draw, or a NaN loss.
    const char* why = config_.binarize ? "binarize needs values in [0, 1] (probabilities)"
                                       : "a categorical likelihood needs values in [0, 1]";
    auto check_range = [&](const Tensor& x, const char* what) {
      constexpr std::int64_t kChunk = 4096;  // rows read at a time
      for (std::int64_t start = 0; start < x.dim(0); start += kChunk) {
        const std::int64_t n = std::min(kChunk, x.dim(0) - start);
        const std::vector<double> v = x.rows(start, n).to_vector<double>();
        for (std::size_t i = 0; i < v.size(); ++i)
          check(v[i] >= 0.0 && v[i] <= 1.0, kWhere, why, "; row ",
                start + static_cast<std::int64_t>(i) / x.dim(1), " of the ", what, " ",
                x.shape().str(), " holds ", v[i]);
      }
    };
    if (!same_train) check_range(train, "training set");
    if (test.defined()) check_range(test, "test set");
  }
  if (config_.data_on_device) {
    // The same data as the last fit: its copy on the device and the recorded step that draws
    // from it are kept.
    if (!(same_train && source_ && source_->data().device() == model_.device())) {
      source_.reset();
      source_.emplace(train.to(model_.device()),
                      data::BatchSourceOptions{.binarize = config_.binarize,
                                               .seed = mix_seed(config_.seed, 1)});
    }
  } else {
    source_.reset();
  }
  last_train_ = train;
  last_train_version_ = train.impl()->storage->version;

  // The schedule is evaluated by the optimizer at each step from its own count: its next step is
  // this trainer's step_.
  if (schedule_) schedule_->attach(opt_, step_);
  ModeGuard mode(model_);
  const int last_epoch = epoch_ + config_.epochs;
  bool stop = false;
  for (int e = 0; e < config_.epochs && !stop; ++e) {
    const auto t0 = Clock::now();
    ++epoch_;
    EpochRow row;
    row.epoch = epoch_;
    train_epoch(train, last_epoch, row, stop);
    if (test_eval.defined()) row.test = evaluate(test_eval);
    row.step = step_;
    row.seconds = seconds_since(t0);
    history_.epochs.push_back(row);
    if (!config_.metrics_csv.empty() && group_.is_root()) write_csv();
    if (config_.log_every > 0 && group_.is_root()) {
      std::fprintf(stderr, "[trainer] epoch %d done in %.2f s: train%s | test%s\n", row.epoch,
                   row.seconds, format_metrics(row.train).c_str(),
                   row.test.empty() ? " -" : format_metrics(row.test).c_str());
    }
    if (on_epoch_)
      on_epoch_(EpochInfo{.row = history_.epochs.back(), .epochs = config_.epochs, .stop_ = &stop});
  }
  history_.stopped_early = stop;
  return history_;
}

void Trainer::train_epoch(const Tensor& train, int last_epoch, EpochRow& row, bool& stop) {
  const data::Batches batches = data::batches(train, {.batch = config_.batch,
                                                      .shuffle = config_.shuffle,
                                                      .seed = config_.seed,
                                                      .epoch = row.epoch - 1});
  const std::int64_t count = batches.count();
  const Device device = model_.device();
  if (source_) source_->start_epoch(batches.order(), row.epoch - 1);
  TermSums sums;
  auto log_t0 = Clock::now();
  std::int64_t log_rows = 0;
  // Progress lines waiting for their loss value, in order.
  struct Progress {
    std::string format;
    DType dtype;
    backend::ReadBack loss;
  };
  std::deque<Progress> progress;
  auto print_progress = [&progress](bool wait) {
    while (!progress.empty() && (wait || progress.front().loss.ready())) {
      Progress& p = progress.front();
      const void* v = p.loss.value();
      double loss = 0.0;
      if (p.dtype == DType::f32) {
        float f = 0.0f;
        std::memcpy(&f, v, sizeof f);
        loss = f;
      } else {
        std::memcpy(&loss, v, sizeof loss);
      }
      std::fprintf(stderr, p.format.c_str(), loss);
      progress.pop_front();
    }
  };
  // A non-finite loss stops training at the step where it appears: on the CPU at once, on a GPU
  // when the running sums of that step have come back (read without waiting, a few steps later
  // at most), naming the step and the terms.
  struct SumsRead {
    std::int64_t step, batch;
    backend::ReadBack sums;
  };
  std::deque<SumsRead> sums_reads;
  auto stop_on = [&](const std::vector<std::string>& terms, std::int64_t step, std::int64_t batch) {
    std::string names;
    for (const std::string& t : terms) names += (names.empty() ? "" : ", ") + t;
    throw Error(kWhere, detail::cat("the loss is not finite at global step ", step, " (epoch ",
                                    row.epoch, ", batch ", batch + 1, " of ", count, "; term",
                                    terms.size() > 1 ? "s " : " ", names,
                                    "): training stopped there, as the parameters are no longer "
                                    "finite (a smaller learning rate, gradient clipping or another "
                                    "likelihood may help)"));
  };
  auto check_sums = [&](bool wait) {
    while (!sums_reads.empty() &&
           (wait || sums_reads.size() > 4 || sums_reads.front().sums.ready())) {
      SumsRead& r = sums_reads.front();
      const std::vector<std::string> bad = sums.non_finite_in(r.sums.value());
      if (!bad.empty()) stop_on(bad, r.step, r.batch);
      sums_reads.pop_front();
    }
  };
  model_.train();
  for (std::int64_t i = 0; i < count && !stop; ++i) {
    const std::int64_t rows = std::min(config_.batch, train.dim(0) - i * config_.batch);
    // Fewer rows than ranks (only the last batch can have them): left out on every rank.
    if (rows < group_.size()) break;
    Tensor x;
    if (!source_) {
      x = batches.batch(i);
      if (config_.binarize) {
        NoGradGuard no_grad;
        x = bernoulli(x, binarize_gen_);
      }
      x = x.to(device);
    }

    model_.on_train_step(step_);
    // The optimizer evaluates the attached schedule itself (fit() attached it at this step).
    const double lr = schedule_ ? schedule_->lr_at(step_) : opt_.lr();

    Loss loss;
    try {
      loss = source_ ? step_fn_(*source_, rows) : step_fn_(x);
    } catch (const Error& e) {
      throw Error(kWhere,
                  detail::cat(e.what(), " (epoch ", row.epoch, ", global step ", step_, ")"));
    }
    // The norm is read (waiting for the step) only for a callback that asks for it.
    const double norm = on_step_ && step_needs_.grad_norm
                            ? step_fn_.last_grad_norm()
                            : std::numeric_limits<double>::quiet_NaN();
    // A callback may keep the values: a replay's tensors are rewritten by the next one, so they
    // are copied for it. The sums read (or add on the device) before the next step runs.
    const Loss values = detached(loss, step_fn_.from_plan_last() && on_step_ && step_needs_.loss);
    // The loss is this rank's share's: weighted by its rows, reduced over the ranks at the end.
    sums.add(values, dist::share(rows, group_.rank(), group_.size()).count);
    if (const std::vector<std::string> bad = sums.non_finite_on_host(); !bad.empty())
      stop_on(bad, step_, i);
    if (std::optional<backend::ReadBack> r = sums.read_device_sums())
      sums_reads.push_back({step_, i, std::move(*r)});
    check_sums(false);
    row.lr = lr;
    log_rows += rows;
    if (on_step_) {
      on_step_(StepInfo{.epoch = row.epoch,
                        .step = step_,
                        .epoch_step = i,
                        .steps_per_epoch = count,
                        .batch_size = rows,
                        .lr = lr,
                        .grad_norm = norm,
                        .loss = step_needs_.loss ? values : Loss(),
                        .stop_ = &stop});
    }
    if (config_.log_every > 0 && group_.is_root() && (step_ + 1) % config_.log_every == 0) {
      // The line is printed once the loss has come back (read without waiting for the step).
      const double dt = seconds_since(log_t0);
      const Tensor total = values.total.detach();
      char text[256];
      std::snprintf(text, sizeof text,
                    "[trainer] epoch %d/%d  step %lld (%lld/%lld)  loss %%.4f  lr %.3g  %.0f "
                    "samples/s\n",
                    row.epoch, last_epoch, static_cast<long long>(step_ + 1),
                    static_cast<long long>(i + 1), static_cast<long long>(count), lr,
                    dt > 0 ? static_cast<double>(log_rows) / dt : 0.0);
      progress.push_back({text, total.dtype(),
                          backend::ReadBack(total.dtype() == DType::f32
                                                ? static_cast<const void*>(total.data<float>())
                                                : static_cast<const void*>(total.data<double>()),
                                            total.device(), total.dtype() == DType::f32 ? 4 : 8)});
      log_t0 = Clock::now();
      log_rows = 0;
    }
    print_progress(false);
    ++step_;
  }
  print_progress(true);
  check_sums(true);
  if (config_.grad_clip > 0) {
    try {
      step_fn_.last_grad_norm();  // every step's norm checked (they are read as they land)
    } catch (const Error& e) {
      throw Error(kWhere, detail::cat(e.what(), " (epoch ", row.epoch, ")"));
    }
  }
  row.train = sums.means(group_);
}

Metrics Trainer::evaluate(const Tensor& x) {
  check_data(x, "evaluation set");
  ModeGuard mode(model_);
  model_.eval();
  NoGradGuard no_grad;
  const Device device = model_.device();
  const std::int64_t n = x.dim(0);
  TermSums sums;
  double squared = 0.0;
  const int ranks = group_.size();
  for (std::int64_t start = 0; start < n; start += config_.eval_batch) {
    const std::int64_t rows = std::min(config_.eval_batch, n - start);
    // Across processes each rank evaluates its share of the batch, drawing as the whole batch
    // would; a batch with fewer rows than ranks is evaluated whole by every rank (so that their
    // generators move alike) and counted by rank 0.
    const bool shared = ranks > 1 && rows >= ranks;
    const dist::Share s = shared ? dist::share(rows, group_.rank(), ranks) : dist::Share{0, rows};
    std::optional<RowShardScope> scope;
    if (shared)
      scope.emplace(RowShard{.first = s.first, .count = s.count, .total = rows, .group = &group_});
    const Tensor xb = x.rows(start + s.first, s.count).to(device);
    const Loss loss = model_.compute_loss(xb);
    const double err = mse(model_.reconstruct(xb), xb, Reduction::mean).item();
    const std::int64_t counted = shared || group_.is_root() ? s.count : 0;
    sums.add(loss, counted);
    squared += err * static_cast<double>(counted);
  }
  Metrics m = sums.means(group_);
  const double total_squared =
      ranks > 1 ? group_.all_reduce({squared}, dist::ReduceOp::sum)[0] : squared;
  m.emplace_back("recon_mse", total_squared / static_cast<double>(n));
  return m;
}

namespace {

std::string g17(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// History rows as text: one line per epoch, "epoch step lr seconds|name=v;...|name=v;..." (the
// train then the test metrics), doubles with 17 significant digits (they read back exactly).
std::string history_text(const History& h) {
  std::string out;
  auto metrics = [](const Metrics& m) {
    std::string s;
    for (const auto& [n, v] : m) s += (s.empty() ? "" : ";") + n + "=" + g17(v);
    return s;
  };
  for (const EpochRow& r : h.epochs)
    out += std::to_string(r.epoch) + " " + std::to_string(r.step) + " " + g17(r.lr) + " " +
           g17(r.seconds) + "|" + metrics(r.train) + "|" + metrics(r.test) + "\n";
  return out;
}

History parse_history(const std::string& text, const std::string& path) {
  History h;
  auto bad = [&](const std::string& line) -> Error {
    return Error(kWhere, path + ": malformed training history line '" + line + "'");
  };
  auto metrics = [&](const std::string& s, const std::string& line) {
    Metrics m;
    for (std::size_t pos = 0; pos < s.size();) {
      const std::size_t end = std::min(s.find(';', pos), s.size());
      const std::string item = s.substr(pos, end - pos);
      const std::size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0) throw bad(line);
      char* stop = nullptr;
      const double v = std::strtod(item.c_str() + eq + 1, &stop);
      if (stop != item.c_str() + item.size()) throw bad(line);
      m.emplace_back(item.substr(0, eq), v);
      pos = end + 1;
    }
    return m;
  };
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const std::size_t a = line.find('|'), b = line.find('|', a + 1);
    if (a == std::string::npos || b == std::string::npos) throw bad(line);
    EpochRow r;
    std::istringstream head(line.substr(0, a));
    if (!(head >> r.epoch >> r.step >> r.lr >> r.seconds)) throw bad(line);
    r.train = metrics(line.substr(a + 1, b - a - 1), line);
    r.test = metrics(line.substr(b + 1), line);
    h.epochs.push_back(std::move(r));
  }
  return h;
}

}  // namespace

void Trainer::save_state(const std::string& path, const Metadata& extra) {
  if (!group_.is_root()) return;  // every rank holds the same state: rank 0 writes it
  Metadata m = extra;
  m["latent.trainer.step"] = std::to_string(step_);
  m["latent.trainer.epoch"] = std::to_string(epoch_);
  m["latent.trainer.history"] = history_text(history_);
  m["latent.trainer.binarize_seed"] = std::to_string(binarize_gen_.seed());
  m["latent.trainer.binarize_offset"] = std::to_string(binarize_gen_.offset());
  const std::vector<Generator*> gens = model_.generators();
  m["latent.trainer.generators"] = std::to_string(gens.size());
  for (std::size_t i = 1; i < gens.size(); ++i) {
    m["latent.trainer.generator." + std::to_string(i) + ".seed"] = std::to_string(gens[i]->seed());
    m["latent.trainer.generator." + std::to_string(i) + ".offset"] =
        std::to_string(gens[i]->offset());
  }
  save_training_state(path, model_, opt_, *gens.front(), step_, m);
}

namespace {

// Strings as "<length>:<bytes>", back to back: what rank 0 sends the others when a run resumes.
void pack(std::string& out, const std::string& s) {
  out += std::to_string(s.size());
  out += ':';
  out += s;
}

std::string unpack(const std::string& in, std::size_t& at) {
  const std::size_t colon = in.find(':', at);
  check(colon != std::string::npos, kWhere, "malformed training state from rank 0");
  const std::size_t n = std::stoull(in.substr(at, colon - at));
  check(colon + 1 + n <= in.size(), kWhere, "malformed training state from rank 0");
  at = colon + 1 + n;
  return in.substr(colon + 1, n);
}

// A decimal count, or nothing when s is not one in full.
std::optional<std::uint64_t> decimal(const std::string& s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::uint64_t parse_u64(const std::string& s) {
  const std::optional<std::uint64_t> v = decimal(s);
  check(v.has_value(), kWhere, "malformed number '", s, "' in the training state from rank 0");
  return *v;
}

}  // namespace

Metadata Trainer::load_state(const std::string& path) {
  if (group_.size() == 1) return load_state_here(path);
  // Across processes rank 0 alone reads the file (the others need not see it: another machine's
  // disk) and sends what it read: the metadata (this trainer's counts and history, the
  // generators, the learning rate), the parameters and the optimizer's state.
  std::string failure;
  std::exception_ptr error;
  Metadata m;
  if (group_.is_root()) {
    try {
      m = load_state_here(path);
    } catch (const std::exception& e) {
      failure = e.what();
      error = std::current_exception();
    }
  }
  failure = group_.broadcast(failure, 0);
  if (!failure.empty()) {
    if (error) std::rethrow_exception(error);
    throw Error(kWhere, detail::cat("rank 0 could not resume from ", path, ": ", failure));
  }
  // Every rank throws when one failed (naming it and why), so that none is left behind in a
  // collective: after each part a rank can fail on its own.
  auto agree = [&](const std::string& mine) {
    // The first rank that failed is named.
    if (const auto failed = group_.first_problem(mine))
      throw Error(kWhere,
                  detail::cat("rank ", failed->first,
                              " could not resume from rank 0's training state: ", failed->second));
  };
  NoGradGuard no_grad;
  // The metadata, the parameters' sizes, then every optimizer-state tensor's name, dtype and
  // shape.
  const std::vector<Tensor> params = model_.parameters();
  optim::NamedTensors state;
  std::string packed;
  if (group_.is_root()) {
    pack(packed, std::to_string(m.size()));
    for (const auto& [k, v] : m) {
      pack(packed, k);
      pack(packed, v);
    }
    pack(packed, std::to_string(params.size()));
    for (const Tensor& p : params)
      pack(packed, std::to_string(p.numel() * static_cast<std::int64_t>(dtype_size(p.dtype()))));
    state = opt_.state();
    pack(packed, std::to_string(state.size()));
    for (auto& [name, t] : state) {
      t = t.to(Device::cpu()).clone();
      pack(packed, name);
      pack(packed, t.dtype() == DType::f64 ? "f64" : "f32");
      pack(packed, std::to_string(t.ndim()));
      for (int d = 0; d < t.ndim(); ++d) pack(packed, std::to_string(t.dim(d)));
    }
  }
  packed = group_.broadcast(packed, 0);
  std::string mine;
  if (!group_.is_root()) {
    try {
      std::size_t at = 0;
      for (std::uint64_t i = 0, n = parse_u64(unpack(packed, at)); i < n; ++i) {
        std::string k = unpack(packed, at);
        m[k] = unpack(packed, at);
      }
      const std::uint64_t count = parse_u64(unpack(packed, at));
      check(count == params.size(), kWhere, "rank 0's model has ", count,
            " parameter tensors, this rank's ", params.size());
      for (std::size_t i = 0; i < params.size(); ++i) {
        const std::uint64_t n = parse_u64(unpack(packed, at));
        const auto bytes = static_cast<std::uint64_t>(params[i].numel()) *
                           static_cast<std::uint64_t>(dtype_size(params[i].dtype()));
        check(n == bytes, kWhere, "parameter ", i, " has ", n, " bytes in rank 0's model, ", bytes,
              " in this rank's");
      }
      for (std::uint64_t i = 0, n = parse_u64(unpack(packed, at)); i < n; ++i) {
        std::string name = unpack(packed, at);
        const DType dtype = unpack(packed, at) == "f64" ? DType::f64 : DType::f32;
        std::vector<std::int64_t> dims(parse_u64(unpack(packed, at)));
        for (std::int64_t& d : dims) d = static_cast<std::int64_t>(parse_u64(unpack(packed, at)));
        state.emplace_back(
            std::move(name),
            Tensor::zeros(Shape(std::span<const std::int64_t>(dims)), {.dtype = dtype}));
      }
    } catch (const std::exception& e) {
      mine = e.what();
    }
  }
  agree(mine);
  for (const Tensor& p : params) group_.broadcast(p);
  for (auto& [name, t] : state) group_.broadcast(t);
  // What rank 0 sent is applied (a rank whose optimizer was built otherwise refuses it).
  if (!group_.is_root()) {
    try {
      apply_trainer_metadata(m, path);
      apply_training_state(path + " (read by rank 0)", m, state, opt_,
                           *model_.generators().front());
    } catch (const std::exception& e) {
      mine = e.what();
    }
  }
  agree(mine);
  return m;
}

Metadata Trainer::load_state_here(const std::string& path) {
  // Read (and checked) before anything changes.
  const Metadata m = read_metadata(path);
  apply_trainer_metadata(m, path, /*check_only=*/true);
  load_training_state(path, model_, opt_, *model_.generators().front());
  apply_trainer_metadata(m, path);
  return m;
}

// Checks the trainer's keys of a state's metadata and, unless check_only, sets this trainer's
// counts, history and generators from them.
void Trainer::apply_trainer_metadata(const Metadata& m, const std::string& path, bool check_only) {
  const std::vector<Generator*> gens = model_.generators();
  auto text = [&](const std::string& key) -> const std::string& {
    const auto it = m.find("latent.trainer." + key);
    check(it != m.end(), kWhere, path, ": not a trainer's state (no \"latent.trainer.", key, "\")");
    return it->second;
  };
  auto integer = [&](const std::string& key) {
    const std::string& s = text(key);
    const std::optional<std::uint64_t> v = decimal(s);
    check(v.has_value(), kWhere, path, ": \"latent.trainer.", key, "\" is '", s, "', not a count");
    return *v;
  };
  const std::uint64_t count = integer("generators");
  check(count == gens.size(), kWhere, path, ": the saved model drew from ", count,
        " generators, this one from ", gens.size());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> states;
  for (std::size_t i = 1; i < gens.size(); ++i)
    states.emplace_back(integer("generator." + std::to_string(i) + ".seed"),
                        integer("generator." + std::to_string(i) + ".offset"));
  const History history = parse_history(text("history"), path);
  const auto epoch = integer("epoch"), step = integer("step");
  const auto bin_seed = integer("binarize_seed"), bin_offset = integer("binarize_offset");
  check(epoch <= 1000000000 && step <= (std::uint64_t{1} << 62), kWhere, path,
        ": implausible epoch or step count");
  if (check_only) return;
  for (std::size_t i = 1; i < gens.size(); ++i)
    gens[i]->set_state(states[i - 1].first, states[i - 1].second);
  binarize_gen_.set_state(bin_seed, bin_offset);
  step_ = static_cast<std::int64_t>(step);
  epoch_ = static_cast<int>(epoch);
  history_ = history;
}

void Trainer::write_csv() const {
  // Columns from the first row; a later row lacking a column leaves its cell empty.
  const EpochRow& first = history_.epochs.front();
  std::ostringstream os;
  os.precision(10);
  os << "epoch,step,lr";
  for (const auto& [n, v] : first.train) os << ",train_" << n;
  for (const auto& [n, v] : first.test) os << ",test_" << n;
  os << ",seconds\n";
  auto cell = [&os](const Metrics& m, const std::string& name) {
    os << ',';
    for (const auto& [n, v] : m)
      if (n == name) {
        os << v;
        return;
      }
  };
  for (const EpochRow& r : history_.epochs) {
    os << r.epoch << ',' << r.step << ',' << r.lr;
    for (const auto& [n, v] : first.train) cell(r.train, n);
    for (const auto& [n, v] : first.test) cell(r.test, n);
    os << ',' << r.seconds << '\n';
  }
  data::write_file_atomic(config_.metrics_csv, os.str(), kWhere);
}

}  // namespace latent::models
