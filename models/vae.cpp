#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "core/backend.h"
#include "core/dispatch.h"
#include "models/generate.h"

namespace latent::models {
namespace {

// A stream far from the training one (offsets are Philox block counters), so evaluation draws
// never overlap the training noise of the same seed.
constexpr std::uint64_t kEvalStreamOffset = std::uint64_t{1} << 62;

void validate_config(const VAEConfig& c, const char* who) {
  check(c.input >= 1, who, "input must be at least 1, got ", c.input);
  check(c.latent >= 1, who, "latent must be at least 1, got ", c.latent);
  for (std::size_t i = 0; i < c.hidden.size(); ++i)
    check(c.hidden[i] >= 1, who, "hidden[", i, "] must be at least 1, got ", c.hidden[i]);
  check(c.samples >= 1, who, "samples must be at least 1, got ", c.samples);
  check(c.beta >= 0 && std::isfinite(c.beta), who, "beta must be finite and >= 0, got ", c.beta);
  check(c.free_bits >= 0 && std::isfinite(c.free_bits), who,
        "free_bits must be finite and >= 0 (nats per latent dimension), got ", c.free_bits);
  if (c.warmup.kind != KlAnneal::constant) {
    check(c.warmup.steps >= 1, who, "warmup.steps must be at least 1, got ", c.warmup.steps);
    check(c.warmup.ratio > 0 && c.warmup.ratio <= 1, who, "warmup.ratio must be in (0, 1], got ",
          c.warmup.ratio);
  }
  try {
    validate(c.likelihood);
  } catch (const Error& e) {
    throw Error(who, std::string("likelihood: ") + e.what());
  }
}

std::vector<std::int64_t> mlp_sizes(std::int64_t in, const std::vector<std::int64_t>& hidden,
                                    std::int64_t out) {
  std::vector<std::int64_t> sizes{in};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(out);
  return sizes;
}

}  // namespace

kernels::Ramp KlSchedule::ramp(double beta) const {
  kernels::Ramp r{.steps = std::max<std::int64_t>(steps, 1), .ratio = ratio, .scale = beta};
  switch (kind) {
    case KlAnneal::constant:
      r.kind = kernels::RampKind::constant;
      break;
    case KlAnneal::linear:
      r.kind = kernels::RampKind::linear;
      break;
    case KlAnneal::cyclical:
      r.kind = kernels::RampKind::cyclical;
      break;
  }
  return r;
}

double KlSchedule::factor(std::int64_t step) const {
  return kernels::ramp_factor(ramp(1.0), step);
}

VAE::VAE(const VAEConfig& config, Device device) : VAE(config, device, "vae") {}

VAE::VAE(const VAEConfig& config, Device device, const char* name)
    : Autoencoder(config.seed), name_(name), config_(config), eval_gen_(config.seed) {
  validate_config(config_, name);
  eval_gen_.set_state(config_.seed, kEvalStreamOffset);
  std::vector<std::int64_t> reversed(config_.hidden.rbegin(), config_.hidden.rend());
  encoder_ = register_module(
      "encoder",
      std::make_shared<nn::MLP>(
          nn::MLPConfig{.sizes = mlp_sizes(config_.input, config_.hidden, 2 * config_.latent),
                        .activation = config_.activation,
                        .activation_alpha = config_.activation_alpha,
                        .device = device},
          gen_));
  decoder_ = register_module(
      "decoder",
      std::make_shared<nn::MLP>(
          nn::MLPConfig{.sizes = mlp_sizes(config_.latent, reversed,
                                           config_.input * params_per_dim(config_.likelihood)),
                        .activation = config_.activation,
                        .activation_alpha = config_.activation_alpha,
                        .device = device},
          gen_));
}

Tensor VAE::posterior(const Tensor& x) {
  check_input(x, "posterior");
  return encoder_->forward(x);
}

Tensor VAE::encode(const Tensor& x) {
  check_input(x, "encode");
  return narrow_cols(encoder_->forward(x), 0, config_.latent);
}

Tensor VAE::decode_params(const Tensor& z) {
  check(z.defined() && z.ndim() == 2 && z.dim(1) == config_.latent, name_,
        "decode: expected a code [N, ", config_.latent, "], got ",
        z.defined() ? z.shape().str() : std::string("an undefined tensor"));
  return decoder_->forward(z);
}

VAEOutput VAE::complete(Tensor h, Tensor z) {
  VAEOutput out;
  out.mu = narrow_cols(h, 0, config_.latent);
  out.logvar = narrow_cols(h, config_.latent, config_.latent);
  out.params = decoder_->forward(z);
  out.h = std::move(h);
  out.z = std::move(z);
  return out;
}

VAEOutput VAE::forward(const Tensor& x) {
  check_input(x, "forward");
  Tensor h = encoder_->forward(x);
  Tensor z = reparametrize(h, config_.samples, noise_generator());
  return complete(std::move(h), std::move(z));
}

Loss VAE::compute_loss(const Tensor& x) {
  check_input(x, "forward");
  VAEOutput out;
  out.h = encoder_->forward(x);
  if (config_.free_bits > 0) {
    out.z = reparametrize(out.h, config_.samples, noise_generator());
  } else {  // the sample and the KL from one kernel each way
    SampleAndKl s = reparametrize_kl(out.h, config_.samples, noise_generator());
    out.z = s.z;
    out.kl = s.kl;
  }
  out.params = decoder_->forward(out.z);
  return loss(out, x);
}

VAEOutput VAE::forward(const Tensor& x, const Tensor& eps) {
  check_input(x, "forward");
  const std::int64_t n = x.dim(0);
  check(eps.defined() && eps.ndim() == 2 && eps.dim(1) == config_.latent && n > 0 &&
            eps.dim(0) >= n && eps.dim(0) % n == 0,
        name_, "forward: eps must be [R*N, Z] with R >= 1 for x ", x.shape().str(),
        " and Z = ", config_.latent, ", got ",
        eps.defined() ? eps.shape().str() : std::string("undefined"));
  Tensor h = encoder_->forward(x);
  Tensor z = reparametrize(h, eps);
  return complete(std::move(h), std::move(z));
}

void VAE::check_output(const VAEOutput& out, const Tensor& x, const char* what) const {
  check_input(x, what);
  const std::int64_t n = x.dim(0);
  check(n > 0, name_, what, ": empty batch ", x.shape().str(), " (the mean over no examples)");
  const bool ok = out.h.defined() && out.z.defined() && out.params.defined() && out.h.ndim() == 2 &&
                  out.h.dim(0) == n && out.h.dim(1) == 2 * config_.latent && out.z.ndim() == 2 &&
                  n > 0 && out.z.dim(0) % n == 0 && out.z.dim(0) >= n && out.params.ndim() == 2 &&
                  out.params.dim(0) == out.z.dim(0);
  check(ok, name_, what, ": the output does not belong to x ", x.shape().str(), " (h ",
        out.h.defined() ? out.h.shape().str() : "undefined", ", z ",
        out.z.defined() ? out.z.shape().str() : "undefined", ")");
}

double VAE::kl_weight() const {
  return is_training() ? config_.beta * config_.warmup.factor(step_) : config_.beta;
}

bool VAE::annealed() const {
  return config_.warmup.kind != KlAnneal::constant;
}

void VAE::write_kl_step() {
  dispatch::refuse_while_recording("setting a VAE's step from the host");
  backend::copy(kl_step_.raw_data(), kl_step_.device(), &step_, Device::cpu(), sizeof step_);
}

void VAE::on_train_step(std::int64_t step) {
  if (step == step_) return;  // the count in memory got there by itself
  step_ = step;
  if (kl_step_.defined()) write_kl_step();
}

void VAE::on_step_event(StepEvent event) {
  switch (event) {
    case StepEvent::recording:
      captured_steps_ = 0;
      break;
    case StepEvent::replayed:
      ++step_;
      break;
    case StepEvent::discarded:
      step_ -= captured_steps_;
      captured_steps_ = 0;
      break;
  }
}

void VAE::ensure_kl_memory(const Tensor& like) {
  const Tensor& held = annealed() ? kl_step_ : kl_weight_;
  if (held.defined() && held.device() == like.device() &&
      (annealed() || held.dtype() == like.dtype()))
    return;
  dispatch::refuse_while_recording("a VAE's first training loss on a device");
  if (annealed()) {
    kl_step_ = Tensor::empty({2}, {.device = like.device()});  // one int64 in float32 storage
    write_kl_step();
  } else {
    kl_weight_ = Tensor::full({}, config_.beta, {.dtype = like.dtype(), .device = like.device()});
  }
  ++memory_revision_;
}

Loss VAE::loss(const VAEOutput& out, const Tensor& x) {
  check_output(out, x, "loss");
  const std::int64_t samples = out.z.dim(0) / x.dim(0);
  const Tensor target = samples == 1 ? x : tile_rows(x, samples);
  // The mean over R*N rows is the mean over samples and over the batch.
  Tensor recon = nll_mean(config_.likelihood, out.params, target);
  Tensor kl;
  if (config_.free_bits > 0) {
    // Free bits: a dimension whose batch-mean KL is below the floor gets no gradient, so the
    // encoder is not pushed to collapse it further.
    // Across processes the whole batch's (dist::whole_batch_mean).
    Tensor per_dim = dist::whole_batch_mean(mean(kl_normal_terms(out.h), 0));
    kl = sum(clamp(per_dim, config_.free_bits, std::numeric_limits<double>::infinity()));
  } else if (out.kl.defined()) {
    kl = out.kl;
  } else {
    kl = kl_normal(out.h, Reduction::batch_mean);
  }
  Loss result;
  if (is_training()) {
    // total = recon + w kl in one kernel, w in memory: with a warm-up the kernel computes it from
    // the step count in memory and counts the step, so a recorded step replays with each step's
    // weight. The backward hands its gradients over without a kernel (add_scaled).
    ensure_kl_memory(x);
    const ScaledSum s = annealed()
                            ? add_scaled(recon, kl, config_.warmup.ramp(config_.beta), kl_step_)
                            : add_scaled(recon, kl, kl_weight_);
    ++step_;
    // A capture's kernels run later (or never, when the capture fails: StepEvent::discarded).
    if (dispatch::capturing()) ++captured_steps_;
    result.total = s.sum;
    result.terms = {{"recon", recon}, {"kl", s.scaled}};
    return result;
  }
  if (config_.beta != 1.0) kl = mul(kl, config_.beta);
  result.total = add(recon, kl);
  result.terms = {{"recon", recon}, {"kl", kl}};
  return result;
}

Tensor VAE::log_weights(const VAEOutput& out, const Tensor& x) {
  check_output(out, x, "log_weights");
  const std::int64_t samples = out.z.dim(0) / x.dim(0);
  auto tiled = [&](const Tensor& t) { return samples == 1 ? t : tile_rows(t, samples); };
  const double z = static_cast<double>(config_.latent);
  Tensor log_px = neg(nll(config_.likelihood, out.params, tiled(x)));
  // log N(z; 0, I) = -1/2 sum z^2 - Z/2 log(2 pi).
  Tensor log_pz = add(mul(sum(square(out.z), 1), -0.5), -0.5 * z * std::log(2 * std::numbers::pi));
  // The same clamp as the sampling op, so q is the density z was actually drawn from. (mu and
  // logvar come from h when the output holds only h, as compute_loss's does.)
  const Tensor mu = out.mu.defined() ? out.mu : narrow_cols(out.h, 0, config_.latent);
  const Tensor raw_logvar =
      out.logvar.defined() ? out.logvar : narrow_cols(out.h, config_.latent, config_.latent);
  Tensor logvar = clamp(raw_logvar, kLogvarMin, kLogvarMax);
  Tensor log_qz = neg(gaussian_nll(tiled(mu), tiled(logvar), out.z, Reduction::none));
  return add(sub(log_px, log_qz), log_pz);
}

Tensor VAE::sample(std::int64_t n, bool draw) {
  return models::sample(*this, n, {.draw = draw});
}

}  // namespace latent::models
