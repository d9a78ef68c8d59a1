// Activations as standalone differentiable ops, and each activation's derivative act'(x) as a
// differentiable op of its own (its backward uses act''), which the exact contractive penalty of
// a deep encoder needs. Formulas: kernels/scalar_math.h.
#pragma once

#include <string>

#include "core/tensor.h"
#include "kernels/common.h"

namespace latent {

using kernels::Act;
using kernels::ActParams;

// Parses "identity", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh", "softplus" (exact,
// lower case); any other name throws latent::Error listing the valid ones.
Act parse_act(const std::string& name);
const char* act_name(Act a);

// act(x), element-wise, any shape. params.alpha: leaky_relu's negative slope, elu's alpha (held
// as float, also for float64 tensors). Derivatives at relu/leaky_relu/elu's kink (x = 0) are
// those of the left side.
Tensor activation(const Tensor& x, ActParams params);
// act'(x), element-wise, from the pre-activation x. Differentiable (backward: act''(x)).
Tensor activation_grad(const Tensor& x, ActParams params);

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor gelu(const Tensor& x);  // exact: x * Phi(x)
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor softplus(const Tensor& x);

}  // namespace latent
