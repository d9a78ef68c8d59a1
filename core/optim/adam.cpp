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
  update_all({Update{i, p, g, t}});
}

void Adam::update_all(const std::vector<Update>& updates) {
  kernels::AdamStep hp{.lr = options_.lr,
                       .beta1 = options_.beta1,
                       .beta2 = options_.beta2,
                       .eps = options_.eps,
                       .weight_decay = options_.weight_decay,
                       .decoupled = decoupled_};
  for (const std::vector<Update>& group : group_by_device(updates)) {
    const Tensor& first = group.front().param;
    dispatch::run(name().c_str(), first.device(), first.dtype(), [&](auto z, auto be) {
      using T = decltype(z);
      if constexpr (decltype(be)::is_cuda) {
        // One launch for all of them; each carries its own t for the bias corrections.
        dispatch::refuse_while_recording(name().c_str());
        std::vector<kernels::cuda::AdamTensor> ts;
        ts.reserve(group.size());
        for (const Update& u : group) {
          dispatch::check_same(name().c_str(), {&u.param, &u.grad});
          const Tensor m = slot(u.index, 0);
          const Tensor v = slot(u.index, 1);
          ts.push_back({.p = u.param.data<float>(),
                        .m = m.data<float>(),
                        .v = v.data<float>(),
                        .g = u.grad.data<float>(),
                        .n = u.param.numel(),
                        .step = u.t});
        }
        dispatch::detail::count_kernel(0);
        kernels::cuda::adam_step_multi(ts.data(), ts.size(), hp, be.stream);
      } else {
        for (const Update& u : group) {
          dispatch::check_same(name().c_str(), {&u.param, &u.grad});
          const Tensor m = slot(u.index, 0);
          const Tensor v = slot(u.index, 1);
          // The bias corrections are host values of this step: a recorded step would replay
          // them as they were (see dispatch::Plan).
          const double td = static_cast<double>(u.t);
          hp.bias_correction1 = 1.0 - std::pow(options_.beta1, td);
          hp.bias_correction2 = 1.0 - std::pow(options_.beta2, td);
          dispatch::call(be, LATENT_CPU_KERNEL(adam_step), u.param.data<T>(), m.data<T>(),
                         v.data<T>(), u.grad.data<T>(), u.param.numel(), hp);
        }
      }
    });
  }
}

}  // namespace latent::optim
