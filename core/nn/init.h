// Parameter initialization. Every function fills an existing tensor in place (all handles to it
// see the new values), under NoGradGuard, from the given generator's Philox stream, so the same
// seed gives the same weights on the CPU and on a GPU. Shapes follow PyTorch: a weight [out, in]
// has fan_in = in and fan_out = out (times the product of any further dimensions).
#pragma once

#include "core/random.h"
#include "core/tensor.h"
#include "kernels/common.h"

namespace latent::nn {

using kernels::Act;

// How a layer's weight is drawn. `automatic` picks from the activation that follows the layer:
// Kaiming-uniform (fan_in, gain for that activation) for the ReLU family (relu, leaky_relu, elu,
// gelu), Xavier-uniform (with gain) for the rest (identity, sigmoid, tanh, softplus). Biases
// always start at zero.
enum class Init { automatic, xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal };

const char* init_name(Init init);

enum class FanMode { fan_in, fan_out };

namespace init {

// The recommended gain for an activation (PyTorch's calculate_gain where it has one):
// identity, sigmoid, softplus 1; tanh 5/3; relu, elu, gelu sqrt(2); leaky_relu with negative
// slope a: sqrt(2 / (1 + a^2)).
double gain(Act act, double alpha = 0.0);

// (fan_in, fan_out) of a tensor with at least 2 dimensions; throws latent::Error otherwise.
struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};
Fans fans(const Tensor& w, const char* who = "init");

// Xavier/Glorot: std = gain * sqrt(2 / (fan_in + fan_out)); uniform in (-a, a), a = sqrt(3) std.
void xavier_uniform(const Tensor& w, Generator& gen, double gain = 1.0);
void xavier_normal(const Tensor& w, Generator& gen, double gain = 1.0);
// Kaiming/He: std = gain / sqrt(fan), fan chosen by `mode`; uniform in (-a, a), a = sqrt(3) std.
void kaiming_uniform(const Tensor& w, Generator& gen, double gain = 1.4142135623730951,
                     FanMode mode = FanMode::fan_in);
void kaiming_normal(const Tensor& w, Generator& gen, double gain = 1.4142135623730951,
                    FanMode mode = FanMode::fan_in);
void zeros(const Tensor& w);
void constant(const Tensor& w, double value);

// Initializes a weight by `init` for a layer followed by `act` (see Init). For the explicit
// schemes the gain is still the activation's.
void weight(const Tensor& w, Init init, Act act, double alpha, Generator& gen);

}  // namespace init
}  // namespace latent::nn
