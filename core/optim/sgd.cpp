#include "core/optim/sgd.h"

#include <vector>

#include "core/dispatch.h"
#include "kernels/optim.h"

namespace latent::optim {

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options)
    : Optimizer("sgd", std::move(params), {"momentum"}), options_(options) {
  check_non_negative("lr", options.lr);
  check_non_negative("momentum", options.momentum);
  check_non_negative("dampening", options.dampening);
  check_non_negative("weight_decay", options.weight_decay);
  check(!options.nesterov || (options.momentum > 0 && options.dampening == 0), "sgd",
        "nesterov momentum needs momentum > 0 and dampening = 0, got momentum=", options.momentum,
        " dampening=", options.dampening);
  set_lr(options.lr);
}

void SGD::update_all(const std::vector<Update>& updates) {
  const bool momentum = options_.momentum != 0;
  const kernels::SgdStep hp{.momentum = options_.momentum,
                            .dampening = options_.dampening,
                            .weight_decay = options_.weight_decay,
                            .nesterov = options_.nesterov};
  const double* state = state_memory();
  for (const std::vector<Update>& group : group_by_dtype(updates)) {
    const Tensor& first = group.front().param;
    dispatch::run("sgd", first.device(), first.dtype(), [&](auto z, auto be) {
      using T = decltype(z);
      if constexpr (decltype(be)::is_cuda) {
        // One launch for all of them (a GPU step is captured as a CUDA graph, not a CPU plan).
        dispatch::refuse_unless_captured("sgd");
        std::vector<kernels::cuda::SgdTensor> ts;
        ts.reserve(group.size());
        for (const Update& u : group) {
          const Tensor buf = momentum ? slot_of(u, 0) : Tensor();
          ts.push_back({.p = u.param.data<float>(),
                        .buf = buf.defined() ? buf.data<float>() : nullptr,
                        .g = u.grad.data<float>(),
                        .n = u.param.numel(),
                        .param = static_cast<std::int64_t>(u.index)});
        }
        dispatch::detail::count_launch("sgd_step_multi", 0);
        kernels::cuda::sgd_step_multi(ts.data(), ts.size(), hp, state, be.stream);
      } else {
        for (const Update& u : group) {
          const Tensor buf = momentum ? slot_of(u, 0) : Tensor();
          dispatch::call(be, LATENT_CPU_KERNEL(sgd_step), u.param.data<T>(),
                         buf.defined() ? buf.data<T>() : nullptr, u.grad.data<T>(), u.param.numel(),
                         hp, state, static_cast<std::int64_t>(u.index));
        }
      }
    });
  }
}

}  // namespace latent::optim
