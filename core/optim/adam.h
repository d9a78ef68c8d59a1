// Adam and AdamW with bias correction (PyTorch's semantics). Per update t of a parameter
// (counted per parameter, so one that receives gradients late starts its correction at t = 1):
//   Adam:  g += weight_decay * p                   (L2 penalty folded into the gradient)
//   AdamW: p -= lr * weight_decay * p              (decoupled decay)
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g^2
//   p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// In flat mode (optimizer.h: parameters, gradients and moments in one arena each) one fused loop
// over the arena updates p, m and v; otherwise one loop per parameter tensor on the CPU and one
// multi-tensor kernel for every parameter of the step on a CUDA device. State slots: "m", "v".
#pragma once

#include "core/optim/optimizer.h"

namespace latent::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2, added to the gradient
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // decoupled
};

class Adam : public Optimizer {
 public:
  // Throws latent::Error unless lr >= 0, beta1 and beta2 lie in [0, 1), eps > 0 and
  // weight_decay >= 0 (all finite).
  Adam(std::vector<Tensor> params, const AdamOptions& options = {});

  // The options given (options().lr is the initial learning rate; lr() is the current one).
  const AdamOptions& options() const { return options_; }
  bool decoupled() const { return decoupled_; }

 protected:
  Adam(const char* name, std::vector<Tensor> params, const AdamOptions& options, bool decoupled);
  void update_all(const std::vector<Update>& updates) override;
  std::pair<double, double> betas() const override { return {options_.beta1, options_.beta2}; }

 private:
  void validate() const;

  AdamOptions options_;
  bool decoupled_ = false;
};

// Adam with decoupled weight decay (Loshchilov & Hutter). State names start with "adamw.".
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, const AdamWOptions& options = {});
};

}  // namespace latent::optim
