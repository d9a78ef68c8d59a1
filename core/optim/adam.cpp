#include "core/optim/adam.h"

#include <cmath>

#include "core/dispatch.h"
#include "kernels/optim.h"

namespace latent::optim {

Adam::Adam(std::vector<Tensor> params, const AdamOptions& options)
    : Adam("adam", std::move(params), options, false) {}

Adam::Adam(const char* name, std::vector<Tensor> params, const AdamOptions& options, bool decoupled)
    : Optimizer(name, std::move(params), {"m", "v"}), options_(options), decoupled_(decoupled) {
  validate();
}

AdamW::AdamW(std::vector<Tensor> params, const AdamWOptions& o)
    : Adam("adamw", std::move(params),
           AdamOptions{.lr = o.lr,
                       .beta1 = o.beta1,
                       .beta2 = o.beta2,
                       .eps = o.eps,
                       .weight_decay = o.weight_decay},
           true) {}

void Adam::validate() const {
  check_non_negative("lr", options_.lr);
  check(options_.beta1 >= 0 && options_.beta1 < 1, name(), "beta1 must be in [0, 1), got ",
        options_.beta1);
  check(options_.beta2 >= 0 && options_.beta2 < 1, name(), "beta2 must be in [0, 1), got ",
        options_.beta2);
  check(std::isfinite(options_.eps) && options_.eps > 0, name(), "eps must be positive, got ",
        options_.eps);
  check_non_negative("weight_decay", options_.weight_decay);
}

void Adam::set_lr(double lr) {
  check_non_negative("lr", lr);
  options_.lr = lr;
}

void Adam::update(std::size_t i, const Tensor& p, const Tensor& g, std::int64_t t) {
  dispatch::check_same(name().c_str(), {&p, &g});
  Tensor m = slot(i, 0);
  Tensor v = slot(i, 1);
  const double td = static_cast<double>(t);
  const kernels::AdamStep hp{.lr = options_.lr,
                             .beta1 = options_.beta1,
                             .beta2 = options_.beta2,
                             .eps = options_.eps,
                             .weight_decay = options_.weight_decay,
                             .decoupled = decoupled_,
                             .bias_correction1 = 1.0 - std::pow(options_.beta1, td),
                             .bias_correction2 = 1.0 - std::pow(options_.beta2, td)};
  dispatch::run(
      name().c_str(), p,
      [&](auto z) {
        using T = decltype(z);
        kernels::cpu::adam_step<T>(p.data<T>(), m.data<T>(), v.data<T>(), g.data<T>(), p.numel(),
                                   hp);
      },
      dispatch::no_cuda);
}

}  // namespace latent::optim
