#include "core/optim/sgd.h"

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

void SGD::update(std::size_t i, const Tensor& p, const Tensor& g, std::int64_t /*t*/) {
  const bool momentum = options_.momentum != 0;
  bool first = false;
  Tensor buf = momentum ? slot(i, 0, &first) : Tensor();
  const kernels::SgdStep hp{.lr = options_.lr,
                            .momentum = options_.momentum,
                            .dampening = options_.dampening,
                            .weight_decay = options_.weight_decay,
                            .nesterov = options_.nesterov,
                            .first = first};
  dispatch::check_same("sgd", {&p, &g});
  dispatch::run(
      "sgd", p,
      [&](auto z) {
        using T = decltype(z);
        kernels::cpu::sgd_step<T>(p.data<T>(), buf.defined() ? buf.data<T>() : nullptr, g.data<T>(),
                                  p.numel(), hp);
      },
      dispatch::no_cuda);
}

}  // namespace latent::optim
