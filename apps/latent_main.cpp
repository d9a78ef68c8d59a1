// latent: the command-line tool.
//
//   latent train [options]     train a VAE (or beta-VAE, IWAE) on Fashion-MNIST and write
//                              pictures, metrics and a summary into --out
//   latent sample --checkpoint F  decode draws from the prior of a saved VAE (PNG grid + .npy)
//   latent eval --checkpoint F    test-set metrics of a saved VAE, as JSON
//   latent --help / latent <command> --help
//
// Exit codes: 0 success, 1 a failure (bad data, an error from the engine), 2 a usage error.
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

#include "apps/inspect.h"
#include "apps/picture.h"
#include "apps/report_html.h"
#include "apps/run_owner.h"
#include "apps/run_signal.h"
#include "apps/user_data.h"
#include "core/data.h"
#include "core/data/file_util.h"
#include "core/latent.h"
#include "models/evaluate.h"
#include "models/generate.h"
#include "models/iwae.h"
#include "models/report.h"
#include "models/serialize.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace fs = std::filesystem;
using namespace latent;

namespace {

// ---- flag checks: a bad value is a usage error (exit 2) naming the flag -------------------------

// A finite number, > 0 (or >= 0 with zero_ok).
CLI::Validator finite_number(bool zero_ok) {
  return CLI::Validator(
      [zero_ok](std::string& s) -> std::string {
        double v = 0;
        std::size_t used = 0;
        try {
          v = std::stod(s, &used);
        } catch (const std::exception&) {
          return "not a number: '" + s + "'";
        }
        if (used != s.size() || !std::isfinite(v)) return "not a finite number: '" + s + "'";
        if (zero_ok ? v < 0 : v <= 0)
          return std::string("must be ") + (zero_ok ? ">= 0" : "> 0") + ", got " + s;
        return "";
      },
      zero_ok ? "FINITE>=0" : "FINITE>0");
}

// A seed: decimal digits only, no sign, no leading zero (010 is not 8 here), at most 2^64 - 1.
const CLI::Validator kDecimalSeed(
    [](std::string& s) -> std::string {
      const bool digits = !s.empty() && std::all_of(s.begin(), s.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || (s.size() > 1 && s[0] == '0'))
        return "must be a decimal integer from 0 to 18446744073709551615 without a sign or a "
               "leading zero, got '" +
               s + "'";
      std::uint64_t v = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || end != s.data() + s.size())
        return "is larger than 18446744073709551615: " + s;
      return "";
    },
    "SEED");

// Comma-separated widths, each an integer in [1, 1000000]; no empty items. Empty when the text is
// not such a list.
std::vector<std::int64_t> parse_widths(const std::string& s) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = s.find(',', start);
    const std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || v < 1 ||
        v > 1000000)
      return {};
    out.push_back(v);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

const CLI::Validator kWidths(
    [](std::string& s) -> std::string {
      return parse_widths(s).empty()
                 ? "widths are integers from 1 to 1000000 separated by commas, got '" + s + "'"
                 : "";
    },
    "W1,W2,...");

// The largest sample grid a picture holds (16 columns of 28x28 images at zoom 2: 282 rows).
constexpr std::int64_t kMaxSamples = 4096;
// The importance samples the log-likelihood takes at most (models::LogLikelihoodOptions).
constexpr std::int64_t kMaxLlK = 5000;

struct TrainArgs {
  std::string model = "vae";
  std::int64_t latent = 32;
  std::vector<std::int64_t> hidden = {512, 256};
  std::string likelihood = "bernoulli";
  int epochs = 10;
  std::int64_t batch = 128;
  double lr = 1e-3;
  std::string optimizer = "adam";
  double weight_decay = -1;  // unset: 0 (adam, sgd) or 0.01 (adamw)
  double momentum = 0.0;     // sgd
  double grad_clip = 0.0;
  std::string activation = "relu";  // of the hidden layers
  double beta = 1.0;
  std::int64_t warmup = 0;
  std::int64_t samples = 1;
  std::int64_t k = 5;
  // dae
  std::string corruption = "masking";
  double corruption_level = -1;  // unset: 0.25 (masking, salt-and-pepper) or 0.1 (gaussian)
  // sae
  std::string sparsity = "l1";
  double sparsity_weight = -1;  // unset: 1e-3 (l1) or 1 (kl)
  double rho = 0.05;
  // cae
  double lambda = 0.1;
  std::string contractive = "one-layer";
  std::string binarize = "none";  // dynamic, static or none
  std::int64_t limit = 0;
  std::int64_t test_limit = 0;
  std::int64_t ll_k = 1000;
  std::int64_t ll_examples = 500;
  std::string data;
  std::string labels, test_data, test_labels, image, class_names;
  double val_split = -1;
  std::string out = "out/vae";
  std::string device = "auto";
  std::uint64_t seed = 0;
  bool overwrite = false;
  std::string resume;             // a run folder to continue from its last training state
  std::vector<std::string> argv;  // the command line, for run.json
};

// What a run writes into its folder (run.json first and last).
const std::vector<std::string> kRunFiles = {
    "run.json",           "model.safetensors", "metrics.csv",
    "summary.json",       "samples.png",       "reconstructions.png",
    "interpolations.png", "traversals.png",    "latent_scatter.png",
    "loss.png",           "report.html"};

std::string utc_now() {
  char text[21];
  app::utc_text(std::time(nullptr), text);
  return text;
}

// run.json: whether the run in a folder finished. "running" is written before anything else;
// "finished" is written last; "failed" names the error; "interrupted" names the signal that ended
// the run (written by the signal's handler, armed while the run is "running"; a SIGKILL leaves
// "running").
std::string run_status_json(const TrainArgs& a, const std::string& status,
                            const std::string& started, const std::string& ended,
                            const std::string& error, const std::string& signal = "") {
  models::JsonReport j;
  j.set("status", status);
  j.set("started", started);
  if (!ended.empty()) j.set("ended", ended);
  if (!signal.empty()) j.set("signal", signal);
  if (!error.empty()) j.set("error", error);
  j.set("pid", static_cast<std::int64_t>(::getpid()));
  j.set("host", dist::host_name());
  j.set("processes", dist::world().size());
  j.set("arguments", a.argv);
  return j.dump();
}

// The training states a run keeps (the last two): out/state-<epoch>.safetensors, by epoch.
std::vector<std::pair<int, fs::path>> training_states(const fs::path& out) {
  std::vector<std::pair<int, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    const std::string head = "state-", tail = ".safetensors";
    if (name.size() <= head.size() + tail.size() || name.rfind(head, 0) != 0 ||
        name.compare(name.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    const std::string digits = name.substr(head.size(), name.size() - head.size() - tail.size());
    int epoch = 0;
    const auto [p, err] = std::from_chars(digits.data(), digits.data() + digits.size(), epoch);
    if (err == std::errc() && p == digits.data() + digits.size() && epoch > 0)
      found.emplace_back(epoch, e.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Held while run.json is written or its signal record armed: the Session's watchdog may record
// the run's end from its own thread (dist::on_watchdog) while the main thread records a failure.
std::recursive_mutex g_run_record_mu;

// While the run is "running", a signal leaves "interrupted" in run.json, saying how to go on from
// the last training state written (after epoch `epochs`; 0: none yet).
void arm_interrupted_record(const fs::path& out, const TrainArgs& a, const std::string& started,
                            int epochs) {
  std::lock_guard<std::recursive_mutex> lock(g_run_record_mu);
  const std::string next =
      epochs == 0 ? std::string(
                        "no epoch had finished, so there is nothing to resume: run its "
                        "command again, with --overwrite")
      : epochs >= a.epochs
          ? detail::cat("all its epochs had finished (state-", epochs,
                        ".safetensors holds the model); `latent train --resume ", a.out,
                        " --epochs <more than ", epochs, ">` trains on")
          : detail::cat("`latent train --resume ", a.out, " --epochs ", a.epochs,
                        "` continues it after epoch ", epochs, ", the last it finished");
  app::arm_signal_record((out / "run.json").string(), [&](const char* signal, const char* cause) {
    return run_status_json(
        a, "interrupted", started, std::string(app::kEndedPlaceholder),
        detail::cat("ended by ", signal, " (", cause, ") before it finished; ", next), signal);
  });
}

void write_run_status(const fs::path& out, const TrainArgs& a, const std::string& status,
                      const std::string& started, const std::string& error = "") {
  std::lock_guard<std::recursive_mutex> lock(g_run_record_mu);
  const fs::path path = out / "run.json";
  if (status == "running") {
    // Armed before "running" is written: a signal from here on leaves "interrupted". A resumed
    // run has its earlier epochs' training state already.
    const auto states = training_states(out);
    arm_interrupted_record(out, a, started, states.empty() ? 0 : states.back().first);
    data::write_file_atomic(path.string(), run_status_json(a, status, started, "", error), "train");
    return;
  }
  // The last record: armed first (the handlers stay), so that a signal while it is written
  // leaves it too, with the moment of the signal as its end; then written, and nothing more.
  app::arm_signal_record(path.string(), [&](const char*, const char*) {
    return run_status_json(a, status, started, std::string(app::kEndedPlaceholder), error);
  });
  struct Disarm {
    ~Disarm() { app::disarm_signal_record(); }
  } disarm;  // also when the write fails
  data::write_file_atomic(path.string(), run_status_json(a, status, started, utc_now(), error),
                          "train");
}

// The metadata keys of a run's flags: kCliKey + "--lr".
constexpr std::string_view kCliKey = "latent.cli.";

// What a resumed run must share with the run it continues, as "latent.cli.<flag>" metadata:
// everything that shapes the model, the data or the steps (not --epochs, the total, nor where and
// on what device it runs).
Metadata config_fields(const TrainArgs& a) {
  auto num = [](double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  std::string hidden;
  for (std::int64_t h : a.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
  const std::vector<std::pair<std::string, std::string>> f = {
      {"--model", a.model},
      {"--latent", std::to_string(a.latent)},
      {"--hidden", hidden},
      {"--likelihood", a.likelihood},
      {"--activation", a.activation},
      {"--batch", std::to_string(a.batch)},
      {"--lr", num(a.lr)},
      {"--optimizer", a.optimizer},
      {"--weight-decay", num(a.weight_decay)},
      {"--momentum", num(a.momentum)},
      {"--grad-clip", num(a.grad_clip)},
      {"--beta", num(a.beta)},
      {"--warmup", std::to_string(a.warmup)},
      {"--samples", std::to_string(a.samples)},
      {"--k", std::to_string(a.k)},
      {"--corruption", a.corruption},
      {"--corruption-level", num(a.corruption_level)},
      {"--sparsity", a.sparsity},
      {"--sparsity-weight", num(a.sparsity_weight)},
      {"--rho", num(a.rho)},
      {"--lambda", num(a.lambda)},
      {"--contractive", a.contractive},
      {"--binarize", a.binarize},
      {"--data", a.data},
      {"--labels", a.labels},
      {"--test-data", a.test_data},
      {"--test-labels", a.test_labels},
      {"--val-split", num(a.val_split)},
      {"--limit", std::to_string(a.limit)},
      {"--test-limit", std::to_string(a.test_limit)},
      {"--seed", std::to_string(a.seed)},
      {"--image", a.image}};
  Metadata m;
  for (const auto& [k, v] : f) m[std::string(kCliKey) + k] = v;
  return m;
}

// Whether `flag` is one of `flags`.
bool one_of(const std::string& flag, std::initializer_list<const char*> flags) {
  return std::any_of(flags.begin(), flags.end(), [&](const char* f) { return flag == f; });
}

// A flag's value as config_fields stores it, as a user writes it: numbers in their shortest
// form ("0.1", stored with 17 digits), "not given" for an empty value or the -1 that stands for
// a default depending on other flags.
std::string flag_text(const std::string& flag, const std::string& stored) {
  if (stored.empty()) return "not given";
  if (!one_of(flag,
              {"--lr", "--weight-decay", "--momentum", "--grad-clip", "--beta",
               "--corruption-level", "--rho", "--sparsity-weight", "--lambda", "--val-split"}))
    return stored;
  double v = 0;
  const auto [at, ec] = std::from_chars(stored.data(), stored.data() + stored.size(), v);
  if (ec != std::errc() || at != stored.data() + stored.size()) return stored;
  if (v < 0) return "not given";  // these flags refuse negative values
  if (v == 0) return "0";
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

// The state metadata keys of the fingerprints of a run's training and test examples (their values
// once read, limited and binarized): a resumed run must train on the same examples.
constexpr std::string_view kTrainDataKey = "latent.data.train";
constexpr std::string_view kTestDataKey = "latent.data.test";

// Whether `flag` names the examples' files. Where a run's state holds the fingerprints of its
// examples, they are compared by contents once read (a copy at another path is the same data),
// not by name; labels files (which only colour pictures) are compared by name.
bool data_file_flag(const std::string& flag) {
  return one_of(flag, {"--data", "--test-data"});
}

// The flags a resumed run shares with the run it continues (config_fields of `a`, --model first:
// of another model, most other flags differ too) checked against `saved`, the metadata of the
// run's last training state `state`: a flag `given` says was given must equal the run's (the
// others, too, when `all`), or the run is refused, naming it.
void check_resumed_flags(const TrainArgs& a, const Metadata& saved, const std::string& state,
                         const std::function<bool(const std::string&)>& given, bool all) {
  const Metadata here = config_fields(a);
  std::vector<std::pair<std::string, std::string>> fields(here.begin(), here.end());
  std::stable_partition(fields.begin(), fields.end(),
                        [](const auto& f) { return f.first == std::string(kCliKey) + "--model"; });
  const bool by_contents = saved.count(std::string(kTrainDataKey)) > 0;
  for (const auto& [key, value] : fields) {
    const std::string flag = key.substr(kCliKey.size());
    if (!all && !given(flag)) continue;
    const auto it = saved.find(key);
    check(it != saved.end(), "train", "--resume: ", state, " was not written by a run ",
          "of latent train (no \"", key, "\")");
    if (by_contents && data_file_flag(flag)) continue;
    check(it->second == value, "train", "--resume: ", flag, " is '", flag_text(flag, value),
          "' here but '", flag_text(flag, it->second), "' in the run being resumed (", state,
          "): a resumed run keeps the run's own flags (leave ", flag, " out to take the run's)");
  }
}

// What the ranks of a launch must all be given, compared by flag name before they do anything
// together: the flags a resumed run shares (config_fields) and those it may change, as a user
// writes them ("0.1", "not given"). Not the data files (their contents are compared once read: a
// copy at another path is the same data; the labels only colour rank 0's pictures), where rank 0
// writes (--out, --overwrite, --class-names), nor the device (compared by kind once chosen: `auto`
// and `cuda` are the same on GPU machines). Whether --resume is given is compared before these
// (a resumed run's flags are rank 0's to send).
std::vector<std::pair<std::string, std::string>> rank_fields(const TrainArgs& a) {
  std::vector<std::pair<std::string, std::string>> f;
  for (const auto& [key, value] : config_fields(a)) {
    const std::string flag = key.substr(kCliKey.size());
    if (one_of(flag, {"--data", "--labels", "--test-data", "--test-labels"})) continue;
    f.emplace_back(flag, flag_text(flag, value));
  }
  f.emplace_back("--epochs", std::to_string(a.epochs));
  f.emplace_back("--ll-k", std::to_string(a.ll_k));
  f.emplace_back("--ll-examples", std::to_string(a.ll_examples));
  return f;
}

// The test metrics `latent train` and `latent eval` report: the reconstruction error and the
// active units, and for a VAE (beta-VAE, IWAE) the ELBO and log p(x) of the first `ll_examples`
// examples with `ll_k` importance samples (none when 0). Every rank of options.group computes
// them on its share of each batch (a collective) and gets the same numbers.
struct TestMetrics {
  models::ReconstructionError rec;
  models::ActiveUnits au;
  std::optional<models::ElboResult> elbo;  // VAEs only
  double log_likelihood = NAN;
  std::int64_t ll_k = 0, ll_examples = 0;

  void write(models::JsonReport& js) const {
    if (!elbo) {
      js.set("test_recon_nll", rec.nll);
      js.set("test_squared_error", rec.squared_error);
      js.set("test_recon_mse", rec.mse);
      js.set("active_units", au.count);
      return;
    }
    js.set("test_elbo", elbo->elbo);
    js.set("test_recon_nll", elbo->recon);
    js.set("test_kl", elbo->kl);
    js.set("test_recon_mse", rec.mse);
    js.set("active_units", au.count);
    if (ll_k > 0) {
      js.set("test_log_likelihood", log_likelihood);
      js.set("log_likelihood_k", ll_k);
      js.set("log_likelihood_examples", ll_examples);
    }
  }
};

TestMetrics test_metrics(models::Autoencoder& model, const Tensor& x,
                         const models::EvalOptions& options, std::int64_t ll_k,
                         std::int64_t ll_examples, std::uint64_t ll_seed) {
  TestMetrics m{.rec = models::reconstruction_error(model, x, options),
                .au = models::active_units(model, x, 0.01, options)};
  if (auto* vae = dynamic_cast<models::VAE*>(&model)) {
    m.elbo = models::elbo(*vae, x, 1, options);
    if (ll_k > 0) {
      m.ll_k = ll_k;
      m.ll_examples = std::min(ll_examples, x.dim(0));
      m.log_likelihood = models::log_likelihood(
          *vae, x.rows(0, m.ll_examples), {.k = ll_k, .seed = ll_seed, .group = options.group});
    }
  }
  return m;
}

// A progress bar with rate and ETA on a terminal; one line per epoch otherwise.
class Progress {
 public:
  explicit Progress(int epochs) : epochs_(epochs), tty_(isatty(STDERR_FILENO) != 0) {}

  void step(const models::StepInfo& s) {
    const auto now = std::chrono::steady_clock::now();
    if (s.epoch_step == 0) epoch_start_ = now, samples_ = 0;
    samples_ += s.batch_size;
    if (!tty_) return;
    const double secs = std::chrono::duration<double>(now - epoch_start_).count();
    const double done = double(s.epoch_step + 1) / double(s.steps_per_epoch);
    const double rate = secs > 0 ? double(samples_) / secs : 0.0;
    const double eta = done > 0 ? secs * (1 - done) / done : 0.0;
    const int width = 30, filled = static_cast<int>(done * width);
    std::fprintf(stderr, "\repoch %d/%d [%s%s] %3.0f%% %8.0f samples/s ETA %4.0fs", s.epoch,
                 epochs_, std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), 100 * done, rate, eta);
  }

  void epoch(const models::EpochInfo& e) {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 80, "");
    std::fprintf(stderr, "epoch %d/%d  train %.3f  test %.3f  (%.1fs, %.0f samples/s)\n",
                 e.row.epoch, epochs_, e.row.train_value("total"),
                 e.row.test.empty() ? NAN : e.row.test_value("total"), e.row.seconds,
                 e.row.seconds > 0 ? double(samples_) / e.row.seconds : 0.0);
  }

 private:
  int epochs_;
  bool tty_;
  std::chrono::steady_clock::time_point epoch_start_;
  std::int64_t samples_ = 0;
};

std::vector<float> host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<float>();
}

// The pictures of a run. Pictures of examples (samples, reconstructions, interpolations,
// traversals) need the examples' image shape; without one only the latent scatter and the loss
// curves are drawn.
struct Traversed {
  std::vector<std::pair<long long, double>> dims;  // dimension, what ranked it
  std::string score, range;
  std::vector<std::string> loss_terms;  // the terms with a curve of their own (loss_<term>.png)
};

Traversed write_pictures(models::Autoencoder& vae, const data::Dataset& test, app::ImageShape image,
                         const models::History& history,
                         const std::vector<std::string>& class_names, const fs::path& out) {
  Traversed traversed;
  NoGradGuard no_grad;
  vae.eval();
  const Device dev = vae.device();
  Generator gen(1234);
  const bool drawn = image.defined();
  const std::int64_t d = vae.input_dim();

  // Samples from the prior: 8 x 8 (generative models only).
  if (auto* generative = dynamic_cast<models::VAE*>(&vae); generative && drawn)
    app::image_grid(host(models::sample(*generative, 64, {.generator = &gen})), 64, image, 8)
        .save_png((out / "samples.png").string());

  // Reconstructions: rows of 10 inputs, each followed by a row of their reconstructions.
  const std::int64_t n = std::min<std::int64_t>(30, test.size());
  if (drawn && n >= 10) {
    const Tensor x = test.images.rows(0, n).to(dev);
    const auto xin = host(x), xrec = host(vae.reconstruct(x));
    std::vector<float> pairs;
    for (std::int64_t r = 0; r < n / 10; ++r) {
      pairs.insert(pairs.end(), xin.begin() + r * 10 * d, xin.begin() + (r + 1) * 10 * d);
      pairs.insert(pairs.end(), xrec.begin() + r * 10 * d, xrec.begin() + (r + 1) * 10 * d);
    }
    app::image_grid(pairs, static_cast<std::int64_t>(pairs.size()) / d, image, 10)
        .save_png((out / "reconstructions.png").string());
  }

  // Interpolations between pairs of test images, 10 steps each.
  std::vector<float> interp;
  for (std::int64_t r = 0; drawn && r + 1 < std::min<std::int64_t>(12, test.size()); r += 2) {
    const auto row = host(models::interpolate(vae, test.images.rows(r, 1).to(dev),
                                              test.images.rows(r + 1, 1).to(dev), 10));
    interp.insert(interp.end(), row.begin(), row.end());
  }
  if (!interp.empty())
    app::image_grid(interp, static_cast<std::int64_t>(interp.size()) / d, image, 10)
        .save_png((out / "interpolations.png").string());

  // The codes of up to 2000 test images (posterior means for a VAE).
  const std::int64_t m = std::min<std::int64_t>(2000, test.size());
  const Tensor mu = models::export_mu(vae, test.images.rows(0, m).to(dev)).to(Device::cpu());
  const auto muv = mu.to_vector<float>();

  // Traversals of the 8 latent dimensions that carry the most KL (a VAE, over -3..3, the prior's
  // range) or whose codes vary most (the others, over the range the test codes take), around
  // the first test image's code.
  auto* prior_model = dynamic_cast<models::VAE*>(&vae);
  const bool prior = prior_model != nullptr;
  const std::vector<float> score =
      prior ? models::kl_per_dim(*prior_model, test.images.rows(0, m).to(dev)).to_vector<float>()
            : models::active_units(vae, test.images.rows(0, m).to(dev)).variance.to_vector<float>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(vae.latent_dim()));
  for (std::size_t j = 0; j < order.size(); ++j) order[j] = static_cast<std::int64_t>(j);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t i, std::int64_t j) {
    return score[static_cast<std::size_t>(i)] > score[static_cast<std::size_t>(j)];
  });
  traversed.score = prior ? "KL (nats)" : "code variance";
  traversed.range = prior ? "-3 to 3 (the prior)" : "the range of the test codes";
  std::vector<float> trav;
  const std::int64_t dims = drawn ? std::min<std::int64_t>(8, vae.latent_dim()) : 0;
  for (std::int64_t k = 0; k < dims; ++k) {
    const std::int64_t j = order[static_cast<std::size_t>(k)];
    traversed.dims.emplace_back(j, score[static_cast<std::size_t>(j)]);
    double lo = -3, hi = 3;
    if (!prior) {
      lo = hi = muv[static_cast<std::size_t>(j)];
      for (std::int64_t i = 0; i < m; ++i) {
        lo = std::min<double>(lo, muv[static_cast<std::size_t>(i * vae.latent_dim() + j)]);
        hi = std::max<double>(hi, muv[static_cast<std::size_t>(i * vae.latent_dim() + j)]);
      }
    }
    const auto row = host(
        models::traverse(vae, test.images.rows(0, 1).to(dev), j, models::linspace(lo, hi, 11)));
    trav.insert(trav.end(), row.begin(), row.end());
  }
  if (dims > 0)
    app::image_grid(trav, dims * 11, image, 11).save_png((out / "traversals.png").string());

  // The codes in their two most varying dimensions, coloured by label.
  const auto au = models::active_units(vae, test.images.rows(0, m).to(dev));
  const auto var = au.variance.to_vector<float>();
  std::int64_t a = 0, b = vae.latent_dim() > 1 ? 1 : 0;
  for (std::int64_t j = 0; j < vae.latent_dim(); ++j) {
    if (var[j] > var[a])
      b = a, a = j;
    else if (j != a && (b == a || var[j] > var[b]))
      b = j;
  }
  std::vector<float> xy;
  for (std::int64_t i = 0; i < m; ++i) {
    xy.push_back(muv[i * vae.latent_dim() + a]);
    xy.push_back(muv[i * vae.latent_dim() + b]);
  }
  if (test.labels.defined())
    app::scatter(xy, test.labels.rows(0, m).to_vector<float>(), 600, class_names)
        .save_png((out / "latent_scatter.png").string());

  // Loss curves, train and test by epoch: the total in loss.png, every other term in
  // loss_<term>.png (each on its own scale).
  if (!history.epochs.empty()) {
    for (const auto& [term, value] : history.epochs.front().train) {
      (void)value;
      std::vector<double> tr, te;
      for (const auto& row : history.epochs) {
        tr.push_back(row.train_value(term));
        bool has_test = false;
        for (const auto& entry : row.test) has_test = has_test || entry.first == term;
        te.push_back(has_test ? row.test_value(term) : NAN);
      }
      std::string title = term;
      std::transform(title.begin(), title.end(), title.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      const std::string file = term == "total" ? "loss.png" : "loss_" + term + ".png";
      app::line_plot({{"train", tr, {31, 119, 180}}, {"test", te, {214, 39, 40}}}, 640, 400,
                     (term == "total" ? std::string("TOTAL LOSS") : title) + " (NATS PER EXAMPLE)")
          .save_png((out / file).string());
      if (term != "total") traversed.loss_terms.push_back(term);
    }
  }
  return traversed;
}

int train_into(const TrainArgs& a, const fs::path& out, const std::string& started, Device dev,
               const app::UserData& ud, const Metadata& fields);

// What rank 0's check of the output folder found: another run's files to remove (--overwrite),
// whether the temporary files of a killed run of ours may be removed, and for a resumed run its
// last training state and that state's metadata.
struct FolderCheck {
  std::vector<std::string> remove;
  bool stale_temporaries = false;
  std::string state;
  Metadata saved;
};

// Rank 0's check of the output folder `a.out` (which exists), before anything in it changes: one
// run at a time in a folder (rank 0 takes its lock, into `lock`, and holds it until the run ends,
// however it ends); a run that still writes the folder is never disturbed, --overwrite and
// --resume included. The process run.json names is asked too (where the file system has no locks,
// or a run without the lock writes): alive on this machine, it holds the folder. A run that ended
// without a record (run.json still "running") is said to have. Another run's files are never
// mixed with this run's: refused, or to be removed with --overwrite; a resumed run continues its
// own, whose last training state must hold the flags given here.
FolderCheck check_folder(const TrainArgs& a, std::optional<app::FolderLock>& lock_of_run) {
  const fs::path out(a.out);
  FolderCheck checked;
  lock_of_run.emplace(a.out);
  using Lock = app::FolderLock::State;
  const Lock lock = lock_of_run->state();
  const app::RunRecord run = app::read_run_record((out / "run.json").string());
  const bool running = run.status == "running";
  const app::RunOwner owner = running ? app::run_owner(run) : app::RunOwner::gone;
  const bool here = run.host == dist::host_name();
  const std::string where = run.host.empty() ? std::string("a machine it does not name")
                            : here           ? std::string("this machine")
                                             : run.host;
  if (lock == Lock::held_elsewhere || owner == app::RunOwner::alive) {
    // Tasks of srun that no MPI interface joins each train alone into this one folder.
    const dist::Launch launch = dist::detect_launch();
    const std::string alone =
        launch.tasks_alone > 1 ? detail::cat(". Here ", dist::tasks_alone_note(launch)) : "";
    if (owner != app::RunOwner::gone && running)
      throw Error("train",
                  detail::cat(a.out, " is in use: the run in it still runs (process ", run.pid,
                              " on ", where, ", started ", run.started, "); end it first (kill ",
                              run.pid, ": it records \"interrupted\" and can be resumed) or ",
                              "choose another --out",
                              lock == Lock::held_elsewhere && !here
                                  ? detail::cat(" (if ", where, " is gone for good, remove ",
                                                lock_of_run->path(), ")")
                                  : std::string(),
                              alone));
    throw Error("train",
                detail::cat(a.out, " is in use: another run holds its lock (", lock_of_run->path(),
                            ") and has not recorded itself yet; ", "choose another --out", alone));
  }
  // Temporary files a killed run of ours left behind (our pattern, their process gone): only
  // where no run of another machine may still be writing them.
  checked.stale_temporaries = !running || owner == app::RunOwner::gone || lock == Lock::taken;
  std::string recorded;  // what run.json says of a run that did not finish, for the refusal
  std::string resume;    // how to continue it
  if (running) {
    recorded =
        owner == app::RunOwner::gone
            ? detail::cat("; its run.json says \"running\", but its process ", run.pid,
                          " is gone (ended by SIGKILL, the out-of-memory killer or a crash, "
                          "without a record",
                          run.processes > 1
                              ? detail::cat("; a job of ", run.processes,
                                            " processes under srun ends so when a rank fails: "
                                            "its message is in the job's output")
                              : std::string(),
                          ")")
        : lock == Lock::taken
            ? detail::cat("; its run.json says \"running\" on ", where,
                          ", but its lock is free: that run has ended, unless this file "
                          "system's locks do not reach ",
                          where, " (then, if it still runs, choose another --out)")
            : detail::cat("; its run.json says \"running\" on ", where,
                          ", which cannot be checked from here (if that run still runs, choose "
                          "another --out)");
    if (const auto states = training_states(out); !states.empty())
      resume =
          detail::cat(", `latent train --resume ", a.out,
                      " --epochs <its total>` to continue it after epoch ", states.back().first);
  }
  // Another run's files are never mixed with this run's: refused, or removed with --overwrite
  // (a resumed run continues its own).
  std::vector<std::string> found;
  std::error_code ec;
  for (const std::string& f : kRunFiles)
    if (fs::exists(out / f)) found.push_back(f);
  for (const auto& [e, p] : training_states(out)) found.push_back(p.filename().string());
  for (const auto& entry : fs::directory_iterator(out, ec)) {  // the loss terms' curves
    const std::string name = entry.path().filename().string();
    if (name.rfind("loss_", 0) == 0 && name.size() > 9 &&
        name.compare(name.size() - 4, 4, ".png") == 0)
      found.push_back(name);
  }
  if (!found.empty() && a.resume.empty()) {
    std::string list;
    for (const std::string& f : found) list += (list.empty() ? "" : ", ") + f;
    check(a.overwrite, "train", a.out, " holds another run's files (", list, ")", recorded,
          ": pass --overwrite to replace them", resume, ", or choose another --out");
    checked.remove = found;
  }
  if (a.resume.empty()) return checked;
  const auto states = training_states(out);
  check(!states.empty(), "train", "--resume ", a.resume, ": no training state there ",
        "(state-<epoch>.safetensors, written after every epoch of a run)");
  checked.state = states.back().second.string();
  checked.saved = read_metadata(checked.state);
  check_resumed_flags(a, checked.saved, checked.state, {}, true);
  check(a.epochs > states.back().first, "train", "--resume: the run has ", states.back().first,
        " epochs already; --epochs is the total (give more than ", states.back().first, ")");
  return checked;
}

int run_train(const TrainArgs& a) {
  dist::Group& world = dist::world();
  const bool root = world.is_root();  // only rank 0 speaks and writes
  // Files rank 0 alone reads: they need be on its machine only, and are checked before training.
  if (root && !a.resume.empty())
    check(fs::is_directory(a.resume), "train", "--resume ", a.resume,
          ": no such folder (give the --out of the run to continue)");
  if (root && !a.class_names.empty()) (void)data::read_file(a.class_names, "--class-names");
  const fs::path out(a.out);
  // Rank 0's output folder: checked (and its lock taken, .latent-lock made) before rank 0 reads the
  // data where it exists, so that a refusal costs nothing, else once made; its files change only
  // once every rank holds the same data.
  std::optional<app::FolderLock> folder_lock;  // rank 0's, for the run's life
  FolderCheck folder;
  if (root && fs::is_directory(out)) folder = check_folder(a, folder_lock);
  const Device dev = dist::rank_device(a.device, "train", "--device");
  app::UserData ud = app::load_user_data({.data = a.data,
                                          .labels = a.labels,
                                          .test_data = a.test_data,
                                          .test_labels = a.test_labels,
                                          .val_split = a.val_split,
                                          .seed = a.seed,
                                          .limit = a.limit,
                                          .test_limit = a.test_limit,
                                          .image = a.image});
  if (root)
    std::fprintf(
        stderr, "latent: data from %s: %lld training and %lld test examples of %lld values\n",
        ud.source.c_str(), static_cast<long long>(ud.train.size()),
        static_cast<long long>(ud.test.size()), static_cast<long long>(ud.train.images.dim(1)));
  // Probabilities in [0, 1] for what reads the data as such.
  if (a.binarize != "none") app::check_unit_range(ud, "--binarize");
  // Binary data: the test set is drawn once (with the seed), so every test number is a discrete
  // log-likelihood; static binarization draws the training set once too (dynamic draws every
  // batch afresh inside the training step).
  if (a.binarize != "none") {
    NoGradGuard no_grad;
    Generator draw(a.seed ^ 0xb1a21e5ULL);
    ud.test.images = bernoulli(ud.test.images, draw);
    if (a.binarize == "static") ud.train.images = bernoulli(ud.train.images, draw);
  }
  if (a.model != "linear-ae" && a.likelihood == "bernoulli")
    app::check_unit_range(ud, "the Bernoulli likelihood (--likelihood bernoulli, the default)");
  if (a.model != "linear-ae" && a.likelihood == "continuous_bernoulli")
    app::check_unit_range(ud, "the continuous Bernoulli likelihood (a density on [0, 1])");
  // The examples by a fingerprint of their values (whatever the files' names): the ranks read the
  // same, before rank 0 changes the output folder, and a resumed run those of the run it
  // continues (its training states record them).
  const std::string train_print =
      detail::cat(ud.train.size(), " examples, fingerprint ", dist::fingerprint({ud.train.images}));
  const std::string test_print =
      detail::cat(ud.test.size(), " examples, fingerprint ", dist::fingerprint({ud.test.images}));
  if (world.size() > 1)
    world.check_same(
        {{"the number of training examples (--data)", std::to_string(ud.train.size())},
         {"the number of test examples (--test-data, or --data's held out)",
          std::to_string(ud.test.size())},
         {"the training examples (--data), by a fingerprint of their values", train_print},
         {"the test examples (--test-data, or --data's held out), by a fingerprint of their values",
          test_print}});
  if (root && !a.resume.empty()) {
    const Metadata& saved = folder.saved;  // checked before the data were read
    for (const auto& [key, print, what] :
         {std::tuple{kTrainDataKey, &train_print, "training examples (--data)"},
          std::tuple{kTestDataKey, &test_print,
                     "test examples (--test-data, or --data's held out)"}}) {
      const auto it = saved.find(std::string(key));
      check(it == saved.end() || it->second == *print, "train", "--resume: the ", what,
            " differ from those of the run being resumed (", folder.state, "): ", *print, " here, ",
            it == saved.end() ? std::string() : it->second,
            " there; resume on the run's own data (a relative path is read from the folder "
            "latent starts in)");
    }
  }

  if (root) {
    // Checked (again) where no lock keeps another run out while the data were read.
    if (!folder_lock || folder_lock->state() != app::FolderLock::State::taken) {
      std::error_code ec;
      fs::create_directories(out, ec);
      check(!ec, "train", "cannot create the output folder ", a.out, ": ", ec.message());
      folder = check_folder(a, folder_lock);
    }
    if (folder.stale_temporaries) data::remove_stale_temporaries(a.out);
    for (const std::string& f : folder.remove) {
      std::error_code ec;
      fs::remove(out / f, ec);
      check(!ec, "train", "cannot remove ", (out / f).string(), ": ", ec.message());
    }
  }
  const std::string started = utc_now();
  if (root) write_run_status(out, a, "running", started);
  // The other ranks, signalled with rank 0, end a second after it has recorded the signal.
  if (!root) app::arm_delayed_end(1.0);
  struct Disarm {
    bool armed;
    ~Disarm() {
      if (armed) app::disarm_signal_record();
    }
  } disarm{!root};
  // A failure from here on is recorded in run.json (rank 0), then reported as usual; so is the
  // end of the job by the watchdog of a world of several (a rank stuck or gone).
  if (root)
    dist::on_watchdog(
        [&](const std::string& why) { write_run_status(out, a, "failed", started, why); });
  struct Forget {
    ~Forget() { dist::on_watchdog({}); }
  } forget;
  try {
    Metadata fields = config_fields(a);
    fields[std::string(kTrainDataKey)] = train_print;
    fields[std::string(kTestDataKey)] = test_print;
    return train_into(a, out, started, dev, ud, fields);
  } catch (const std::exception& e) {
    if (root) {
      try {
        write_run_status(out, a, "failed", started, e.what());
      } catch (const std::exception&) {  // the first error is the one to report
      }
    }
    throw;
  }
}

// The model --model names, with its parameters.
std::unique_ptr<models::Autoencoder> make_model(const TrainArgs& a, std::int64_t input,
                                                Device dev) {
  const std::string& m = a.model;
  const models::LikelihoodConfig like{.kind = models::parse_likelihood(a.likelihood)};
  const std::vector<std::int64_t> mirrored(a.hidden.rbegin(), a.hidden.rend());
  const Act act = parse_act(a.activation);
  const models::MLPSpec enc{.hidden = a.hidden, .activation = act},
      dec{.hidden = mirrored, .activation = act};
  if (m == "iwae")
    return std::make_unique<models::IWAE>(models::IWAEConfig{.input = input,
                                                             .hidden = a.hidden,
                                                             .latent = a.latent,
                                                             .activation = act,
                                                             .likelihood = like,
                                                             .k = a.k,
                                                             .seed = a.seed},
                                          dev);
  if (m == "vae" || m == "beta-vae") {
    models::KlSchedule warm;
    if (a.warmup > 0) warm = {.kind = models::KlAnneal::linear, .steps = a.warmup};
    return std::make_unique<models::VAE>(models::VAEConfig{.input = input,
                                                           .hidden = a.hidden,
                                                           .latent = a.latent,
                                                           .activation = act,
                                                           .likelihood = like,
                                                           .samples = a.samples,
                                                           .beta = a.beta,
                                                           .warmup = warm,
                                                           .seed = a.seed},
                                         dev);
  }
  if (m == "linear-ae")
    return std::make_unique<models::AE>(models::AEConfig::linear(input, a.latent, 1.0, a.seed),
                                        dev);
  if (m == "ae")
    return std::make_unique<models::AE>(models::AEConfig{.input = input,
                                                         .latent = a.latent,
                                                         .encoder = enc,
                                                         .decoder = dec,
                                                         .likelihood = like,
                                                         .seed = a.seed},
                                        dev);
  if (m == "dae") {
    models::CorruptionConfig c;
    c.kind = a.corruption == "gaussian"  ? models::Corruption::gaussian
             : a.corruption == "masking" ? models::Corruption::masking
                                         : models::Corruption::salt_and_pepper;
    if (c.kind == models::Corruption::gaussian)
      c.sigma = a.corruption_level >= 0 ? a.corruption_level : 0.1;
    else
      c.p = a.corruption_level >= 0 ? a.corruption_level : 0.25;
    return std::make_unique<models::DenoisingAE>(models::DenoisingAEConfig{.input = input,
                                                                           .latent = a.latent,
                                                                           .encoder = enc,
                                                                           .decoder = dec,
                                                                           .likelihood = like,
                                                                           .corruption = c,
                                                                           .seed = a.seed},
                                                 dev);
  }
  if (m == "sae") {
    const bool l1 = a.sparsity == "l1";
    const double weight = a.sparsity_weight >= 0 ? a.sparsity_weight : (l1 ? 1e-3 : 1.0);
    return std::make_unique<models::SparseAE>(
        models::SparseAEConfig{.input = input,
                               .latent = a.latent,
                               .encoder = enc,
                               .decoder = dec,
                               .likelihood = like,
                               .penalty = l1 ? models::Sparsity::l1 : models::Sparsity::kl,
                               .weight = l1 ? weight : 1e-3,
                               .rho = a.rho,
                               .beta = l1 ? 1.0 : weight,
                               .seed = a.seed},
        dev);
  }
  // cae: one sigmoid layer (the closed-form penalty) or the deep encoder --hidden gives (the exact
  // Jacobian penalty).
  models::ContractiveAEConfig c{
      .input = input, .latent = a.latent, .likelihood = like, .lambda = a.lambda, .seed = a.seed};
  c.encoder = {.hidden = {}, .activation = Act::sigmoid};
  if (a.contractive == "deep") c.encoder.hidden = a.hidden;
  c.decoder = dec;
  return std::make_unique<models::ContractiveAE>(c, dev);
}

// `fields`: the metadata of the run's training states (its flags and the prints of its data).
int train_into(const TrainArgs& a, const fs::path& out, const std::string& started,
               const Device dev, const app::UserData& ud, const Metadata& fields) {
  dist::Group& world = dist::world();
  const bool root = world.is_root();
  const data::Dataset& train = ud.train;
  const data::Dataset& test = ud.test;
  std::unique_ptr<models::Autoencoder> model = make_model(a, train.images.dim(1), dev);
  if (root)
    std::fprintf(
        stderr, "latent: %s with %lld parameters on %s%s, %lld training / %lld test images\n",
        model->name().c_str(), static_cast<long long>(model->num_parameters()), dev.str().c_str(),
        world.size() > 1 ? (" (rank 0 of " + std::to_string(world.size()) + " processes)").c_str()
                         : "",
        static_cast<long long>(train.size()), static_cast<long long>(test.size()));

  std::unique_ptr<optim::Optimizer> opt;
  if (a.optimizer == "sgd")
    opt = std::make_unique<optim::SGD>(
        model->parameters(),
        optim::SGDOptions{.lr = a.lr,
                          .momentum = a.momentum,
                          .weight_decay = a.weight_decay >= 0 ? a.weight_decay : 0.0});
  else if (a.optimizer == "adamw")
    opt = std::make_unique<optim::AdamW>(
        model->parameters(),
        optim::AdamWOptions{.lr = a.lr,
                            .weight_decay = a.weight_decay >= 0 ? a.weight_decay : 0.01});
  else
    opt = std::make_unique<optim::Adam>(
        model->parameters(),
        optim::AdamOptions{.lr = a.lr, .weight_decay = a.weight_decay >= 0 ? a.weight_decay : 0.0});
  // A resumed run: the remaining epochs from the last training state.
  std::string resume_from;
  int done = 0;
  if (!a.resume.empty()) {
    // Rank 0 found the state (run_train checked it); the others learn which one.
    if (root) {
      const auto states = training_states(out);
      resume_from = states.back().second.string();
      done = states.back().first;
    }
    resume_from = world.broadcast(resume_from, 0);
    done = std::stoi(world.broadcast(std::to_string(done), 0));
  }
  models::Trainer trainer(*model, *opt,
                          {.epochs = a.epochs - done,
                           .batch = a.batch,
                           .seed = a.seed,
                           .binarize = a.binarize == "dynamic",
                           .metrics_csv = (out / "metrics.csv").string(),
                           .grad_clip = a.grad_clip});
  if (!resume_from.empty()) {
    trainer.load_state(resume_from);
    if (root)
      std::fprintf(stderr, "latent: resuming after epoch %d (%s)\n", done, resume_from.c_str());
  }
  Progress progress(a.epochs);  // the epochs are numbered from the run's start
  if (root) {
    // The progress line reads neither the norm nor the loss: the steps run ahead of the host.
    trainer.on_step([&](const models::StepInfo& s) { progress.step(s); },
                    {.grad_norm = false, .loss = false});
    trainer.on_epoch([&](const models::EpochInfo& e) {
      progress.epoch(e);
      // The training state after every epoch (atomically), keeping the last two.
      const int epoch = e.row.epoch;
      trainer.save_state((out / ("state-" + std::to_string(epoch) + ".safetensors")).string(),
                         fields);
      arm_interrupted_record(out, a, started, epoch);  // a signal now: resume after this epoch
      for (const auto& [old, p] : training_states(out))
        if (old <= epoch - 2) fs::remove(p);
    });
  }
  const models::History history = trainer.fit(train.images, test.images);

  // The test metrics, shared by the ranks like the per-epoch evaluation (each its share of every
  // batch; every rank gets the sums).
  if (root) std::fprintf(stderr, "latent: evaluating and drawing\n");
  const TestMetrics metrics =
      test_metrics(*model, test.images.to(dev), {.seed = a.seed, .group = &world}, a.ll_k,
                   a.ll_examples, a.seed);
  if (!root) {
    world.barrier(/*watched=*/false);  // rank 0 alone draws and writes, for as long as it takes
    return 0;
  }
  std::vector<std::string> classes;
  if (!a.class_names.empty()) {
    std::istringstream names(data::read_file(a.class_names, "train"));
    for (std::string line; std::getline(names, line);)
      if (!line.empty()) classes.push_back(line);
  } else if (a.data.empty() || ud.source.find("fashion") != std::string::npos) {
    classes = app::fashion_mnist_classes();
  }
  const Traversed traversed = write_pictures(*model, test, ud.image, history, classes, out);
  save(*model, (out / "model.safetensors").string(), models::to_metadata(*model));

  double train_seconds = 0;  // the epochs' wall time (their test evaluation included)
  for (const auto& e : history.epochs) train_seconds += e.seconds;

  models::JsonReport js;
  js.set("model", a.model);
  const std::string likelihood = a.model == "linear-ae" ? std::string("gaussian") : a.likelihood;
  js.set("likelihood", likelihood);
  js.set("binarize", a.binarize);
  // What the likelihood numbers mean.
  std::string meaning;
  if (likelihood == "bernoulli" && a.binarize != "none")
    meaning =
        "nats per test example of binarized images (drawn once with the seed): discrete "
        "log-likelihoods, comparable with published results on binarized data";
  else if (likelihood == "bernoulli")
    meaning =
        "the Bernoulli likelihood on grey levels is not normalized: these numbers are not "
        "log-likelihoods and do not compare with published results (--binarize gives "
        "binary data and true discrete log-likelihoods)";
  else if (likelihood == "continuous_bernoulli")
    meaning =
        "nats per test example of the continuous Bernoulli, a density on [0, 1]: true log "
        "densities of the grey levels (log densities, not log-probabilities)";
  else if (likelihood == "categorical")
    meaning =
        "nats per test example of the values quantized to the likelihood's levels: discrete "
        "log-likelihoods";
  else
    meaning =
        "nats per test example of a density over continuous values (log densities, not "
        "log-probabilities)";
  js.set("likelihood_meaning", meaning);
  js.set("optimizer", a.optimizer);
  js.set("lr", a.lr);
  js.set("device", dev.str());
  js.set("epochs", static_cast<std::int64_t>(history.epochs.size()));
  js.set("train_seconds", train_seconds);
  js.set("latent", a.latent);
  js.set("train_images", train.size());
  js.set("test_images", test.size());
  js.set("world_size", world.size());
  js.set("global_batch", a.batch);
  js.set("batch_per_rank", dist::share(a.batch, 0, world.size()).count);
  metrics.write(js);
  const std::string text = js.dump();
  data::write_file_atomic((out / "summary.json").string(), text, "train");
  // report.html: every picture with what it shows, beside the summary and the metrics.
  app::ReportInput report{.title = a.model + " on " + ud.source,
                          .summary_json = text,
                          .metrics_csv = data::read_file((out / "metrics.csv").string(), "train"),
                          .traversed = traversed.dims,
                          .traversal_score = traversed.score,
                          .traversal_range = traversed.range};
  report.classes = classes;
  for (const std::string& term : traversed.loss_terms)
    report.extra_figures.emplace_back("loss_" + term + ".png",
                                      "The loss term '" + term +
                                          "' in nats per example (y) by epoch (x, from 1), "
                                          "train (blue) and test (red).");
  app::write_report_html(out.string(), report);
  std::printf("%s", text.c_str());
  std::string wrote;
  for (const std::string& f : kRunFiles)
    if (f != "run.json" && fs::exists(out / f)) wrote += (wrote.empty() ? "" : ", ") + f;
  std::fprintf(stderr, "latent: wrote %s/{%s}\n", a.out.c_str(), wrote.c_str());
  write_run_status(out, a, "finished", started);
  world.barrier(/*watched=*/false);
  return 0;
}

}  // namespace

struct SampleArgs {
  std::string checkpoint;
  std::int64_t n = 64;
  bool draw = false;
  std::string out = "out/samples";
  std::string device = "auto";
  std::uint64_t seed = 0;
  std::string image;  // how a sample is drawn (28x28 for 784 values)
};

// The VAE (or IWAE) a checkpoint holds; any other kind is refused for `what`, which needs a prior.
std::unique_ptr<models::VAE> generative(std::unique_ptr<models::Autoencoder> model,
                                        const std::string& checkpoint, const char* what) {
  auto* vae = dynamic_cast<models::VAE*>(model.get());
  check(vae != nullptr, what, checkpoint, " holds a deterministic autoencoder (", model->name(),
        "): it has no prior to ", what, " from; sampling needs a vae, beta-vae or iwae");
  model.release();
  return std::unique_ptr<models::VAE>(vae);
}

// Decodes n draws from the prior of a saved VAE into a picture grid and a .npy array.
int run_sample(const SampleArgs& a) {
  const Device dev = a.device == "auto" ? Device::best() : Device::parse(a.device);
  std::unique_ptr<models::VAE> vae =
      generative(models::load(a.checkpoint, dev), a.checkpoint, "sample");
  const app::ImageShape image = app::image_for(vae->input_dim(), a.image);
  const fs::path out(a.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  check(!ec, "sample", "cannot create the output folder ", a.out, ": ", ec.message());
  NoGradGuard no_grad;
  vae->eval();
  Generator gen(a.seed);
  const Tensor x = models::sample(*vae, a.n, {.draw = a.draw, .generator = &gen});
  const int cols = static_cast<int>(std::min<std::int64_t>(a.n, 16));
  if (image.defined())
    app::image_grid(host(x), a.n, image, cols).save_png((out / "samples.png").string());
  data::write_npy((out / "samples.npy").string(), x);
  std::fprintf(stderr, "latent: wrote %s/{%ssamples.npy}%s\n", a.out.c_str(),
               image.defined() ? "samples.png, " : "",
               image.defined() ? "" : " (no picture: give --image HxW[xC])");
  return 0;
}

// A checkpoint's metadata (the model's kind and configuration) as a number ranks compare.
std::string metadata_fingerprint(const std::string& checkpoint) {
  std::string text;
  for (const auto& [key, value] : read_metadata(checkpoint)) text += key + '\0' + value + '\n';
  return std::to_string(dist::fingerprint(text));
}

struct EvalArgs {
  std::string checkpoint;
  std::int64_t limit = 0;
  std::int64_t ll_k = 1000;
  std::int64_t ll_examples = 500;
  std::string data;
  std::string device = "auto";
  std::uint64_t seed = 0;
};

// Test-set metrics of a saved model, as JSON on stdout: for a VAE (beta-VAE, IWAE) the ELBO, its
// terms and log p(x); for a deterministic autoencoder its reconstruction error and active units.
// Under mpirun the ranks share every batch (each on the GPU of its local rank) and rank 0 prints.
int run_eval(const EvalArgs& a) {
  dist::Group& world = dist::world();
  const Device dev = dist::rank_device(a.device, "eval", "--device");
  std::unique_ptr<models::Autoencoder> model = models::load(a.checkpoint, dev);
  const data::Dataset test = app::load_examples(a.data, "", false, a.limit, "").data;
  check(test.images.dim(1) == model->input_dim(), "eval", a.checkpoint, " holds a model of ",
        model->input_dim(), " inputs, but the examples have ", test.images.dim(1));
  // The ranks evaluate the same model on the same examples with the same settings.
  if (world.size() > 1)
    world.check_same(
        {{"--limit", std::to_string(a.limit)},
         {"--ll-k", std::to_string(a.ll_k)},
         {"--ll-examples", std::to_string(a.ll_examples)},
         {"--seed", std::to_string(a.seed)},
         {"the number of examples (--data)", std::to_string(test.size())},
         {"the examples (--data), by a fingerprint of their values",
          std::to_string(dist::fingerprint({test.images}))},
         // The same model (its contents, whatever the file's name): its configuration too.
         {"the model's configuration (--checkpoint), by a fingerprint",
          metadata_fingerprint(a.checkpoint)},
         {"the model (--checkpoint), by a fingerprint of its parameters",
          std::to_string(dist::fingerprint(model->parameters()))}});
  models::JsonReport js;
  js.set("checkpoint", a.checkpoint);
  js.set("model", models::model_kind(read_metadata(a.checkpoint)));
  js.set("test_images", test.size());
  test_metrics(*model, test.images.to(dev), {.seed = a.seed, .group = &world}, a.ll_k,
               a.ll_examples, a.seed)
      .write(js);
  if (world.size() > 1) js.set("world_size", world.size());
  if (world.is_root()) std::printf("%s", js.dump().c_str());
  world.barrier();
  return 0;
}

// The flags that belong to some models only, with those models.
const std::vector<std::pair<std::string, std::vector<std::string>>>& model_flags() {
  static const std::vector<std::string> vae = {"vae", "beta-vae"};
  static const std::vector<std::string> generative = {"vae", "beta-vae", "iwae"};
  static const std::vector<std::pair<std::string, std::vector<std::string>>> owners = {
      {"--beta", vae},
      {"--warmup", vae},
      {"--samples", vae},
      {"--k", {"iwae"}},
      {"--ll-k", generative},
      {"--ll-examples", generative},
      {"--corruption", {"dae"}},
      {"--corruption-level", {"dae"}},
      {"--sparsity", {"sae"}},
      {"--sparsity-weight", {"sae"}},
      {"--rho", {"sae"}},
      {"--lambda", {"cae"}},
      {"--contractive", {"cae"}},
      {"--hidden", {"ae", "dae", "sae", "cae", "vae", "beta-vae", "iwae"}},
      {"--likelihood", {"ae", "dae", "sae", "cae", "vae", "beta-vae", "iwae"}},
      {"--activation", {"ae", "dae", "sae", "cae", "vae", "beta-vae", "iwae"}}};
  return owners;
}

// Whether `flag` is a parameter of `model` (every model's, or one of those it belongs to).
bool flag_of_model(const std::string& flag, const std::string& model) {
  for (const auto& [f, models] : model_flags())
    if (f == flag) return std::find(models.begin(), models.end(), model) != models.end();
  return true;
}

// A parameter given for a model it does not belong to is a usage error naming both.
void check_model_flags(const CLI::App& train, const TrainArgs& a) {
  const auto& owners = model_flags();
  for (const auto& [flag, models] : owners) {
    if (train.count(flag) == 0 || std::find(models.begin(), models.end(), a.model) != models.end())
      continue;
    std::string list;
    for (const std::string& m : models) list += (list.empty() ? "" : ", ") + m;
    throw CLI::ValidationError(
        flag, "a parameter of " + list + ", not of --model " + a.model +
                  (a.model == "linear-ae" ? " (a linear encoder and decoder with a Gaussian "
                                            "likelihood: the PCA model)"
                                          : ""));
  }
  if (a.optimizer != "sgd" && train.count("--momentum") > 0)
    throw CLI::ValidationError("--momentum",
                               "a parameter of --optimizer sgd, not of " + a.optimizer);
  if (a.model == "sae" && a.sparsity == "l1" && train.count("--rho") > 0)
    throw CLI::ValidationError("--rho", "the kl penalty's target; --sparsity is l1");
}

// The flags a resumed run leaves out are the run's own: for every flag of config_fields not given
// here whose value in the run's last training state differs from this command's, the words that
// give it ("--lr", "0.01"), to be parsed with the command. A flag given that differs from the
// run's is refused first, naming it. Rank 0 reads the state (the folder may be on its machine
// only) and sends the words to the other ranks. A folder without a readable state gives none:
// run_train's checks then say what is wrong.
std::vector<std::string> resumed_flags(const CLI::App& train, const TrainArgs& a,
                                       dist::Group& world) {
  std::string words;  // each word followed by '\0'
  if (world.is_root()) {
    Metadata saved;
    std::string state;
    try {
      const auto states = training_states(a.resume);
      if (!states.empty()) {
        state = states.back().second.string();
        saved = read_metadata(state);
      }
    } catch (const std::exception&) {
      saved.clear();  // run_train reads the state again and reports what is wrong with it
    }
    if (!saved.empty()) {
      // The flags given first (else the run's flags that depend on one given otherwise would be
      // refused as a usage error: --momentum of an sgd run resumed with --optimizer adam). A
      // parameter of another model than the run's is left to check_model_flags, which says so.
      const auto model = saved.find(std::string(kCliKey) + "--model");
      const std::string run_model = model == saved.end() ? a.model : model->second;
      check_resumed_flags(
          a, saved, state,
          [&](const std::string& flag) {
            return train.count(flag) > 0 && flag_of_model(flag, run_model);
          },
          false);
      for (const auto& [key, value] : config_fields(a)) {
        const std::string flag = key.substr(kCliKey.size());
        const auto it = saved.find(key);
        if (it == saved.end() || it->second == value || train.count(flag) > 0 ||
            flag_text(flag, it->second) == "not given")
          continue;
        words += flag + '\0' + it->second + '\0';
      }
    }
  }
  if (world.size() > 1) words = world.broadcast(words, 0);
  std::vector<std::string> out;
  for (std::size_t at = 0; at < words.size();) {
    const std::size_t end = words.find('\0', at);
    out.push_back(words.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

int main(int argc, char** argv) {
  // Started by mpirun or srun, the processes join one world (or refuse, in a build without MPI).
  std::optional<dist::Session> session;
  try {
    session.emplace(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "latent: %s\n", e.what());
    return 1;
  }
  CLI::App app{"latent: train and inspect autoencoders"};
  app.require_subcommand(1);
  TrainArgs a;
  CLI::App* train = app.add_subcommand(
      "train", "train an autoencoder (ae, linear-ae, dae, sae, cae, vae, beta-vae, iwae)");
  // A repeated option keeps its last value, so wrappers can put defaults before the user's flags.
  train->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  train->add_option("--model", a.model, "ae, linear-ae, dae, sae, cae, vae, beta-vae or iwae")
      ->check(CLI::IsMember({"ae", "linear-ae", "dae", "sae", "cae", "vae", "beta-vae", "iwae"}))
      ->capture_default_str();
  train->add_option("--latent", a.latent, "latent dimensions Z")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  std::string hidden_text = "512,256";
  train->add_option("--hidden", hidden_text, "hidden widths of the encoder (decoder mirrored)")
      ->check(kWidths)
      ->capture_default_str();
  train
      ->add_option("--likelihood", a.likelihood,
                   "bernoulli, continuous_bernoulli (normalized on [0, 1]: a true density for grey "
                   "levels), gaussian, gaussian_learned or categorical")
      ->check(CLI::IsMember(
          {"bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned", "categorical"}))
      ->capture_default_str();
  train->add_option("--epochs", a.epochs)->check(CLI::Range(1, 100000))->capture_default_str();
  train->add_option("--batch", a.batch)->check(CLI::Range(1, 1000000))->capture_default_str();
  train->add_option("--lr", a.lr, "learning rate")
      ->check(finite_number(false))
      ->capture_default_str();
  train->add_option("--optimizer", a.optimizer, "adam, adamw (decoupled weight decay) or sgd")
      ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
      ->capture_default_str();
  train
      ->add_option("--weight-decay", a.weight_decay,
                   "L2 weight decay (adam, sgd; default 0) or decoupled (adamw; default 0.01)")
      ->check(finite_number(true));
  train->add_option("--momentum", a.momentum, "sgd's momentum")
      ->check(finite_number(true))
      ->capture_default_str();
  train->add_option("--grad-clip", a.grad_clip, "largest global gradient norm (0: no clipping)")
      ->check(finite_number(true))
      ->capture_default_str();
  train
      ->add_option("--activation", a.activation,
                   "of the hidden layers: relu, leaky_relu, elu, gelu, tanh, sigmoid, softplus")
      ->check(CLI::IsMember({"relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "softplus"}))
      ->capture_default_str();
  const char* kVaeGroup = "vae and beta-vae";
  train->add_option("--beta", a.beta, "KL weight (beta-VAE)")
      ->check(finite_number(true))
      ->capture_default_str()
      ->group(kVaeGroup);
  train->add_option("--warmup", a.warmup, "KL warm-up steps (0: none)")
      ->check(CLI::Range(0, 1000000000))
      ->capture_default_str()
      ->group(kVaeGroup);
  train->add_option("--samples", a.samples, "Monte Carlo samples in the ELBO")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str()
      ->group(kVaeGroup);
  train->add_option("--k", a.k, "importance samples per input")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str()
      ->group("iwae");
  train
      ->add_option("--corruption", a.corruption,
                   "masking (zeroes), gaussian (added noise) or salt-and-pepper")
      ->check(CLI::IsMember({"masking", "gaussian", "salt-and-pepper"}))
      ->capture_default_str()
      ->group("dae (denoising)");
  train
      ->add_option("--corruption-level", a.corruption_level,
                   "probability of corrupting a pixel (masking, salt-and-pepper; default 0.25) or "
                   "the noise's sigma (gaussian; default 0.1)")
      ->check(finite_number(true))
      ->group("dae (denoising)");
  train->add_option("--sparsity", a.sparsity, "l1 (on the code) or kl (mean activation vs rho)")
      ->check(CLI::IsMember({"l1", "kl"}))
      ->capture_default_str()
      ->group("sae (sparse)");
  train
      ->add_option("--sparsity-weight", a.sparsity_weight,
                   "the penalty's weight (default 1e-3 for l1, 1 for kl)")
      ->check(finite_number(true))
      ->group("sae (sparse)");
  train->add_option("--rho", a.rho, "kl: the target mean activation, in (0, 1)")
      ->check(finite_number(false))
      ->capture_default_str()
      ->group("sae (sparse)");
  train->add_option("--lambda", a.lambda, "weight of the Jacobian penalty")
      ->check(finite_number(true))
      ->capture_default_str()
      ->group("cae (contractive)");
  train
      ->add_option("--contractive", a.contractive,
                   "one-layer (a sigmoid layer, closed-form penalty) or deep (the --hidden "
                   "encoder, exact Jacobian penalty); the decoder mirrors --hidden either way")
      ->check(CLI::IsMember({"one-layer", "deep"}))
      ->capture_default_str()
      ->group("cae (contractive)");
  train
      ->add_option("--binarize", a.binarize,
                   "dynamic (a fresh draw of every training batch; the default when the flag is "
                   "given bare), static (the data drawn once, with the seed) or none (the "
                   "default): binary data make log p(x) a true discrete log-likelihood")
      ->expected(0, 1)
      ->default_str("dynamic")
      ->check(CLI::IsMember({"dynamic", "static", "none"}));
  train->add_option("--limit", a.limit, "training examples, the first (0: all)")
      ->check(CLI::Range(0, 1000000000))
      ->capture_default_str();
  train->add_option("--test-limit", a.test_limit, "test examples, the first (0: all)")
      ->check(CLI::Range(0, 1000000000))
      ->capture_default_str();
  train->add_option("--ll-k", a.ll_k, "importance samples for the test log-likelihood (0: skip)")
      ->check(CLI::Range(std::int64_t{0}, kMaxLlK))
      ->capture_default_str()
      ->group("vae, beta-vae and iwae");
  train->add_option("--ll-examples", a.ll_examples, "test images in the log-likelihood estimate")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str()
      ->group("vae, beta-vae and iwae");
  const char* kData = "data";
  train
      ->add_option("--data", a.data,
                   "a folder of IDX files (MNIST layout), or a .npy ([N, D] float or uint8; "
                   "[N, H, W(, C)] images) or .csv file (default: Fashion-MNIST, "
                   "$LATENT_FASHION_MNIST or /usr/share/datasets/fashion-mnist)")
      ->group(kData);
  train->add_option("--labels", a.labels, "labels of a --data file (.npy, .csv or IDX)")
      ->group(kData);
  train->add_option("--test-data", a.test_data, "held-out examples (same format as --data)")
      ->group(kData);
  train->add_option("--test-labels", a.test_labels, "labels of --test-data")->group(kData);
  train
      ->add_option("--val-split", a.val_split,
                   "fraction of a --data file held out for testing (default 0.1; drawn with "
                   "--seed)")
      ->check(finite_number(false))
      ->group(kData);
  train
      ->add_option("--image", a.image,
                   "HxW or HxWxC: how an example is drawn (default 28x28 for 784 values, the "
                   "array's shape for [N, H, W(, C)] .npy data; else no pictures of examples)")
      ->group(kData);
  train->add_option("--out", a.out, "output folder")->capture_default_str();
  train->add_option("--device", a.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  train->add_option("--seed", a.seed)->check(kDecimalSeed)->capture_default_str();
  train->add_flag("--overwrite", a.overwrite,
                  "replace the files of an earlier run in --out (refused otherwise)");
  train
      ->add_option("--class-names", a.class_names,
                   "a text file of class names, one per line by label, for report.html's legend "
                   "(Fashion-MNIST's are built in)")
      ->group("data");
  train->add_option("--resume", a.resume,
                    "continue the run in this folder from its last training state, with the "
                    "run's own flags (those left out are taken from it; --epochs is the total)");

  SampleArgs sa;
  CLI::App* sample = app.add_subcommand("sample", "decode draws from the prior of a saved VAE");
  sample->add_option("--checkpoint", sa.checkpoint, "model.safetensors written by latent train")
      ->required();
  sample->add_option("--n", sa.n, "number of samples (at most 4096: one picture)")
      ->check(CLI::Range(std::int64_t{1}, kMaxSamples))
      ->capture_default_str();
  sample->add_flag("--draw", sa.draw, "draw from the likelihood instead of showing its mean");
  sample->add_option("--image", sa.image,
                     "HxW or HxWxC: how a sample is drawn (default 28x28 for 784 values; "
                     "without a shape only samples.npy is written)");
  sample->add_option("--out", sa.out, "output folder")->capture_default_str();
  sample->add_option("--device", sa.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sample->add_option("--seed", sa.seed)->check(kDecimalSeed)->capture_default_str();

  EvalArgs ea;
  CLI::App* eval = app.add_subcommand("eval", "test-set metrics of a saved VAE (JSON on stdout)");
  eval->add_option("--checkpoint", ea.checkpoint, "model.safetensors written by latent train")
      ->required();
  eval->add_option("--limit", ea.limit, "test images (0: all 10000)")
      ->check(CLI::Range(0, 1000000000))
      ->capture_default_str();
  eval->add_option("--ll-k", ea.ll_k, "importance samples for log p(x) (0: skip)")
      ->check(CLI::Range(std::int64_t{0}, kMaxLlK))
      ->capture_default_str();
  eval->add_option("--ll-examples", ea.ll_examples, "test images in the log-likelihood estimate")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str();
  eval->add_option("--data", ea.data,
                   "a folder of IDX files (its test split) or a .npy/.csv file (all its rows); "
                   "default: Fashion-MNIST's test split");
  eval->add_option("--device", ea.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  eval->add_option("--seed", ea.seed)->check(kDecimalSeed)->capture_default_str();

  // encode, reconstruct, interpolate, traverse: a saved model and images (apps/inspect.h).
  app::InspectArgs ia;
  auto inspect = [&](const char* name, const char* help) {
    CLI::App* c = app.add_subcommand(name, help);
    c->add_option("--checkpoint", ia.checkpoint, "model.safetensors written by latent train")
        ->required();
    c->add_option("--data", ia.data,
                  "a folder of IDX files (its test split) or a .npy/.csv file (all its rows); "
                  "default: Fashion-MNIST");
    c->add_option("--labels", ia.labels, "labels of a --data file");
    c->add_option("--image", ia.image, "HxW or HxWxC: how an example is drawn");
    c->add_flag("--train", ia.train, "a folder's training split instead of its test split");
    c->add_option("--limit", ia.limit, "images read (0: all)")
        ->check(CLI::Range(0, 1000000000))
        ->capture_default_str();
    c->add_option("--out", ia.out, "output folder")->capture_default_str();
    c->add_option("--device", ia.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    return c;
  };
  CLI::App* encode = inspect("encode", "codes (posterior means) of images as .npy, with labels");
  CLI::App* reconstruct = inspect("reconstruct", "images and their reconstructions (PNG, .npy)");
  reconstruct->add_option("--n", ia.n, "images, from the first")
      ->check(CLI::Range(std::int64_t{1}, kMaxSamples))
      ->capture_default_str();
  CLI::App* interpolate =
      inspect("interpolate", "decoded codes between two images' codes (PNG, .npy)");
  interpolate->add_option("--from", ia.from, "index of the first image")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}))
      ->capture_default_str();
  interpolate->add_option("--to", ia.to, "index of the second image")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}))
      ->capture_default_str();
  interpolate->add_option("--steps", ia.steps, "points on the line, both ends included")
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{1000}))
      ->capture_default_str();
  CLI::App* traverse =
      inspect("traverse", "an image's code with its most informative dimensions swept");
  traverse->add_option("--index", ia.index, "index of the image")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}))
      ->capture_default_str();
  traverse->add_option("--dims", ia.dims, "dimensions swept, most informative first")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{256}))
      ->capture_default_str();
  traverse->add_option("--steps", ia.traverse_steps, "values per dimension")
      ->check(CLI::Range(std::int64_t{2}, std::int64_t{101}))
      ->capture_default_str();

  // An unknown command is named (CLI11 would only say that one is required).
  const std::vector<std::string> commands = {"train",       "sample",      "eval",    "encode",
                                             "reconstruct", "interpolate", "traverse"};
  if (argc > 1 && argv[1][0] != '-' &&
      std::find(commands.begin(), commands.end(), std::string(argv[1])) == commands.end()) {
    std::fprintf(stderr,
                 "latent: unknown command '%s' (commands: train, sample, eval, encode, "
                 "reconstruct, interpolate, traverse; see latent --help)\n",
                 argv[1]);
    if (dist::world().size() > 1) dist::abort(2, "usage error (see above)");
    return 2;
  }
  dist::Group& world = dist::world();
  const bool several = world.size() > 1;
  std::string command;  // the command this process runs, "--help" when it printed help
  // What train's flags must satisfy together, once they are all known (a resumed run's own
  // flags included).
  auto settle_train = [&] {
    a.hidden = parse_widths(hidden_text);
    check_model_flags(*train, a);
    if (a.batch < world.size())
      throw CLI::ValidationError(
          "--batch", detail::cat("a batch of ", a.batch, " cannot be shared by ", world.size(),
                                 " processes: each takes at least one row of every batch; use "
                                 "--batch ",
                                 world.size(), " or more"));
    if (!a.resume.empty()) a.out = a.resume;
  };
  try {
    a.argv.assign(argv, argv + argc);
    app.parse(argc, argv);
    for (const CLI::App* sub : app.get_subcommands()) command = sub->get_name();
    a.hidden = parse_widths(hidden_text);
    if (*train && !a.resume.empty()) {
      if (train->count("--out") > 0 && fs::path(a.out) != fs::path(a.resume))
        throw CLI::ValidationError(
            "--out", "--resume " + a.resume + " continues that folder; leave out --out");
      if (a.overwrite)
        throw CLI::ValidationError("--overwrite", "would remove the run --resume continues");
    }
    // A resumed run's flags are settled once the run's own are in (below).
    if (*train && a.resume.empty()) settle_train();
  } catch (const CLI::ParseError& e) {
    // Help is printed by rank 0 alone; an error by every rank that made it.
    const int rc = several && !world.is_root() && e.get_exit_code() == 0 ? 0 : app.exit(e);
    // A rank that stops alone would leave the others waiting for it: the job ends.
    if (rc != 0 && several) dist::abort(2, "usage error (see above)");
    if (rc != 0 || !several) return rc == 0 ? 0 : 2;
    command = "--help";  // help printed: the other ranks must have asked for it too
  }
  // Across processes a failing rank ends every rank at once (none is left waiting in a
  // collective); its message is printed with its rank.
  try {
    if (several) {
      // Before anything else the ranks do together: the same command, then the same flags.
      world.check_same({{"command", command}});
      if (command == "--help") return 0;
      if (*train) world.check_same({{"--resume", a.resume.empty() ? "not given" : "given"}});
    }
    if (*train && !a.resume.empty()) {
      // The flags left out are the run's own: parsed again with them (after "train").
      const std::vector<std::string> own = resumed_flags(*train, a, world);
      try {
        if (!own.empty()) {
          std::vector<std::string> words(argv + 1, argv + argc);
          const auto at = std::find(words.begin(), words.end(), std::string("train"));
          words.insert(at == words.end() ? at : at + 1, own.begin(), own.end());
          std::reverse(words.begin(), words.end());  // CLI11 takes them last first
          app.parse(std::move(words));
        }
        settle_train();
      } catch (const CLI::ParseError& e) {
        app.exit(e);
        if (!own.empty()) {
          std::string taken;
          for (std::size_t i = 0; i + 1 < own.size(); i += 2)
            taken += (taken.empty() ? "" : " ") + own[i] + " " + flag_text(own[i], own[i + 1]);
          std::fprintf(stderr,
                       "latent: the flags left out are those of the run --resume continues: %s\n",
                       taken.c_str());
        }
        if (several) dist::abort(2, "usage error (see above)");
        return 2;
      }
    }
    if (several && *train) world.check_same(rank_fields(a));
    if (several && !*train && !*eval)
      throw Error("latent", detail::cat("started as ", world.size(),
                                        " processes: only `latent train` and `latent eval` run "
                                        "across processes; run the other commands as one"));
    if (a.model == "beta-vae" && a.beta == 1.0 && world.is_root())
      std::fprintf(stderr, "latent: note: beta-vae with --beta 1 is the plain VAE\n");
    if (*train) return run_train(a);
    if (*sample) return run_sample(sa);
    if (*eval) return run_eval(ea);
    if (*encode) return app::run_encode(ia);
    if (*reconstruct) return app::run_reconstruct(ia);
    if (*interpolate) return app::run_interpolate(ia);
    if (*traverse) return app::run_traverse(ia);
  } catch (const dist::SharedError& e) {
    // Every rank has it, at the same point: rank 0 reports it and the ranks end together.
    if (world.is_root()) std::fprintf(stderr, "latent: %s\n", e.what());
    world.barrier();
    return 1;
  } catch (const Error& e) {
    if (several) dist::abort(1, e.what());
    std::fprintf(stderr, "latent: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    if (several) dist::abort(1, std::string("unexpected error: ") + e.what());
    std::fprintf(stderr, "latent: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}
