#include "core/nn/init.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"

namespace latent::nn {

const char* init_name(Init init) {
  switch (init) {
    case Init::automatic:
      return "automatic";
    case Init::xavier_uniform:
      return "xavier_uniform";
    case Init::xavier_normal:
      return "xavier_normal";
    case Init::kaiming_uniform:
      return "kaiming_uniform";
    case Init::kaiming_normal:
      return "kaiming_normal";
  }
  return "?";
}

namespace init {
namespace {

// Writes fresh values into w's own storage, so every existing handle sees them.
void assign(const Tensor& w, const Tensor& values) {
  NoGradGuard no_grad;
  Tensor(w.impl()).copy_(values);
}

void check_scale(const char* who, const char* what, double v) {
  check(std::isfinite(v) && v >= 0, who, what, " must be finite and non-negative, got ", v);
}

double fan_of(const Tensor& w, FanMode mode, const char* who) {
  const Fans f = fans(w, who);
  const std::int64_t fan = mode == FanMode::fan_in ? f.fan_in : f.fan_out;
  check(fan > 0, who, "the ", mode == FanMode::fan_in ? "fan_in" : "fan_out",
        " of a tensor of shape ", w.shape().str(), " is zero");
  return static_cast<double>(fan);
}

bool relu_family(Act act) {
  const kernels::ActInfo* info = kernels::act_info(act);
  return info && info->kaiming;
}

}  // namespace

double gain(Act act, double alpha) {
  return kernels::act_gain(act, alpha);
}

Fans fans(const Tensor& w, const char* who) {
  check(w.defined(), who, "the tensor to initialize is undefined");
  check(w.ndim() >= 2, who, "needs a tensor with at least 2 dimensions (a weight [out, in]), got ",
        w.shape().str());
  std::int64_t receptive = 1;
  for (int i = 2; i < w.ndim(); ++i) receptive *= w.dim(i);
  return {w.dim(1) * receptive, w.dim(0) * receptive};
}

void xavier_uniform(const Tensor& w, Generator& gen, double g) {
  const char* who = "init.xavier_uniform";
  check_scale(who, "gain", g);
  const Fans f = fans(w, who);
  check(f.fan_in + f.fan_out > 0, who, "empty tensor of shape ", w.shape().str());
  const double a = g * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  assign(w, Tensor::rand(w.shape(), gen, w.options(), -a, a));
}

void xavier_normal(const Tensor& w, Generator& gen, double g) {
  const char* who = "init.xavier_normal";
  check_scale(who, "gain", g);
  const Fans f = fans(w, who);
  check(f.fan_in + f.fan_out > 0, who, "empty tensor of shape ", w.shape().str());
  const double sd = g * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  assign(w, Tensor::randn(w.shape(), gen, w.options(), 0.0, sd));
}

void kaiming_uniform(const Tensor& w, Generator& gen, double g, FanMode mode) {
  const char* who = "init.kaiming_uniform";
  check_scale(who, "gain", g);
  const double a = std::sqrt(3.0) * g / std::sqrt(fan_of(w, mode, who));
  assign(w, Tensor::rand(w.shape(), gen, w.options(), -a, a));
}

void kaiming_normal(const Tensor& w, Generator& gen, double g, FanMode mode) {
  const char* who = "init.kaiming_normal";
  check_scale(who, "gain", g);
  const double sd = g / std::sqrt(fan_of(w, mode, who));
  assign(w, Tensor::randn(w.shape(), gen, w.options(), 0.0, sd));
}

void zeros(const Tensor& w) {
  constant(w, 0.0);
}

void constant(const Tensor& w, double value) {
  check(w.defined(), "init.constant", "the tensor to initialize is undefined");
  NoGradGuard no_grad;
  Tensor(w.impl()).fill_(value);
}

void weight(const Tensor& w, Init init, Act act, double alpha, Generator& gen) {
  const double g = gain(act, alpha);
  switch (init) {
    case Init::automatic:
      if (relu_family(act))
        kaiming_uniform(w, gen, g, FanMode::fan_in);
      else
        xavier_uniform(w, gen, g);
      return;
    case Init::xavier_uniform:
      return xavier_uniform(w, gen, g);
    case Init::xavier_normal:
      return xavier_normal(w, gen, g);
    case Init::kaiming_uniform:
      return kaiming_uniform(w, gen, g, FanMode::fan_in);
    case Init::kaiming_normal:
      return kaiming_normal(w, gen, g, FanMode::fan_in);
  }
}

}  // namespace init
}  // namespace latent::nn
