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
  set_lr(options.lr);
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

void Adam::update_all(const std::vector<Update>& updates) {
  const kernels::AdamStep hp{.beta1 = options_.beta1,
                             .beta2 = options_.beta2,
                             .eps = options_.eps,
                             .weight_decay = options_.weight_decay,
                             .decoupled = decoupled_};
  const double* state = state_memory();
  for (const std::vector<Update>& group : group_by_dtype(updates)) {
    const Tensor& first = group.front().param;
    dispatch::run(name().c_str(), first.device(), first.dtype(), [&](auto z, auto be) {
      using T = decltype(z);
      if constexpr (decltype(be)::is_cuda) {
        // One launch for all of them (a GPU step is captured as a CUDA graph, not a CPU plan).
        dispatch::refuse_unless_captured(name().c_str());
        std::vector<kernels::cuda::AdamTensor> ts;
        ts.reserve(group.size());
        for (const Update& u : group) {
          const Tensor m = slot_of(u, 0);
          const Tensor v = slot_of(u, 1);
          ts.push_back({.p = u.param.data<float>(),
                        .m = m.data<float>(),
                        .v = v.data<float>(),
                        .g = u.grad.data<float>(),
                        .n = u.param.numel(),
                        .param = static_cast<std::int64_t>(u.index)});
        }
        dispatch::detail::count_launch("adam_step_multi", 0);
        kernels::cuda::adam_step_multi(ts.data(), ts.size(), hp, state, be.stream);
      } else {
        for (const Update& u : group) {
          const Tensor m = slot_of(u, 0);
          const Tensor v = slot_of(u, 1);
          dispatch::call(be, LATENT_CPU_KERNEL(adam_step), u.param.data<T>(), m.data<T>(),
                         v.data<T>(), u.grad.data<T>(), u.param.numel(), hp, state,
                         static_cast<std::int64_t>(u.index));
        }
      }
    });
  }
}

}  // namespace latent::optim
