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
}

void SGD::set_lr(double lr) {
  check_non_negative("lr", lr);
  options_.lr = lr;
}

void SGD::update(std::size_t i, const Tensor& p, const Tensor& g, std::int64_t t) {
  update_all({Update{i, p, g, t}});
}

void SGD::update_all(const std::vector<Update>& updates) {
  const bool momentum = options_.momentum != 0;
  kernels::SgdStep hp{.lr = options_.lr,
                      .momentum = options_.momentum,
                      .dampening = options_.dampening,
                      .weight_decay = options_.weight_decay,
                      .nesterov = options_.nesterov};
  for (const std::vector<Update>& group : group_by_device(updates)) {
    const Tensor& first = group.front().param;
    dispatch::run("sgd", first.device(), first.dtype(), [&](auto z, auto be) {
      using T = decltype(z);
      if constexpr (decltype(be)::is_cuda) {
        // One launch for all of them; each says whether its momentum buffer is new. The tensor
        // list travels in the launch's parameters: no host value to replay, but no CPU plan
        // either (a GPU step is captured as a CUDA graph).
        dispatch::refuse_while_recording("sgd");
        std::vector<kernels::cuda::SgdTensor> ts;
        ts.reserve(group.size());
        for (const Update& u : group) {
          dispatch::check_same("sgd", {&u.param, &u.grad});
          bool fresh = false;
          const Tensor buf = momentum ? slot(u.index, 0, &fresh) : Tensor();
          ts.push_back({.p = u.param.data<float>(),
                        .buf = buf.defined() ? buf.data<float>() : nullptr,
                        .g = u.grad.data<float>(),
                        .n = u.param.numel(),
                        .first = fresh});
        }
        dispatch::detail::count_kernel(0);
        kernels::cuda::sgd_step_multi(ts.data(), ts.size(), hp, be.stream);
      } else {
        for (const Update& u : group) {
          dispatch::check_same("sgd", {&u.param, &u.grad});
          bool fresh = false;
          const Tensor buf = momentum ? slot(u.index, 0, &fresh) : Tensor();
          hp.first = fresh;
          dispatch::call(be, LATENT_CPU_KERNEL(sgd_step), u.param.data<T>(),
                         buf.defined() ? buf.data<T>() : nullptr, u.grad.data<T>(), u.param.numel(),
                         hp);
        }
      }
    });
  }
}

}  // namespace latent::optim
