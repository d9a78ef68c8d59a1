// Stochastic gradient descent with PyTorch's semantics. Per step, with g the gradient:
//   g += weight_decay * p                              (L2 penalty)
//   with momentum mu > 0:
//     buf = g on the parameter's first update, else mu * buf + (1 - dampening) * g
//     g = nesterov ? g + mu * buf : buf
//   p -= lr * g
// State slot: "momentum" (present when momentum > 0). In flat mode (optimizer.h) one loop over
// the arena updates every parameter; otherwise one per tensor on the CPU, and one multi-tensor
// kernel for all of them on a CUDA device.
#pragma once

#include "core/optim/optimizer.h"

namespace latent::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

class SGD : public Optimizer {
 public:
  // Throws latent::Error for a negative or non-finite lr, momentum, dampening or weight decay,
  // and for nesterov without momentum > 0 and dampening == 0.
  SGD(std::vector<Tensor> params, const SGDOptions& options = {});

  // The options given (options().lr is the initial learning rate; lr() is the current one).
  const SGDOptions& options() const { return options_; }

 protected:
  void update_all(const std::vector<Update>& updates) override;

 private:
  SGDOptions options_;
};

}  // namespace latent::optim
