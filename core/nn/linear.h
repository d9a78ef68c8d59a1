// nn::Linear: y = act(x W^T + b), one call of the fused dense op (core/ops/linalg.h).
//   x [N, in] -> y [N, out]; weight [out, in] (PyTorch's layout), bias [out].
#pragma once

#include <cstdint>

#include "core/nn/init.h"
#include "core/nn/module.h"
#include "core/random.h"

namespace latent::nn {

using kernels::ActParams;

struct LinearOptions {
  bool bias = true;
  Init init = Init::automatic;
  // The activation that will follow this layer: it picks the automatic init and the init's gain
  // only; forward() takes the activation to apply.
  Act activation = Act::identity;
  float activation_alpha = 0.0f;  // leaky_relu's negative slope (the gain depends on it)
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

class Linear : public Module {
 public:
  // Parameters "weight" and (with bias) "bias". The weight is drawn from `gen` (see Init); the bias
  // starts at zero. Throws latent::Error for non-positive sizes.
  Linear(std::int64_t in_features, std::int64_t out_features, const LinearOptions& options = {},
         Generator& gen = default_generator());

  // act(x W^T + b) for x [N, in]. Throws latent::Error naming the expected width.
  Tensor forward(const Tensor& x, ActParams act = {}) const;
  Tensor operator()(const Tensor& x, ActParams act = {}) const { return forward(x, act); }

  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }  // undefined without bias
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }

 private:
  std::int64_t in_ = 0;
  std::int64_t out_ = 0;
  Tensor weight_;
  Tensor bias_;
};

}  // namespace latent::nn
