#include "core/nn/linear.h"

#include "core/error.h"
#include "core/ops/linalg.h"

namespace latent::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, const LinearOptions& options,
               Generator& gen)
    : in_(in_features), out_(out_features) {
  check(in_features > 0 && out_features > 0, "linear",
        "in_features and out_features must be positive, got in_features=", in_features,
        " out_features=", out_features);
  const TensorOptions to{.dtype = options.dtype, .device = options.device};
  weight_ = Tensor::empty({out_, in_}, to);
  init::weight(weight_, options.init, options.activation, options.activation_alpha, gen);
  register_parameter("weight", weight_);
  if (options.bias) {
    bias_ = Tensor::zeros({out_}, to);
    register_parameter("bias", bias_);
  }
}

Tensor Linear::forward(const Tensor& x, ActParams act) const {
  check(x.defined(), "linear", "input is an undefined tensor");
  check(x.ndim() == 2 && x.dim(1) == in_, "linear", "expected input [N, ", in_, "], got ",
        x.shape().str());
  return dense(x, weight_, bias_, act);
}

}  // namespace latent::nn
