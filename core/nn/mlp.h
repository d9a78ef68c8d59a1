// nn::MLP: a stack of Linear layers with one activation between them and an optional one at the
// end. sizes = {784, 512, 256, 32} gives three layers 784->512->256->32; parameters are named
// "layers.0.weight", "layers.0.bias", "layers.1.weight", ...
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/nn/linear.h"

namespace latent::nn {

struct MLPConfig {
  std::vector<std::int64_t> sizes;  // input width, hidden widths..., output width (>= 2 entries)
  Act activation = Act::relu;       // after every layer but the last
  // leaky_relu's negative slope or elu's alpha; unset: 0.01 for leaky_relu, 1 for elu.
  std::optional<float> activation_alpha;
  Act output_activation = Act::identity;  // after the last layer
  std::optional<float> output_activation_alpha;
  bool bias = true;
  Init init = Init::automatic;  // per layer, from the activation that follows it
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

// The activation parameters an MLP applies for `act` with an optional alpha (see MLPConfig).
ActParams act_params(Act act, std::optional<float> alpha);

class MLP : public Module {
 public:
  // Throws latent::Error for fewer than 2 sizes or a non-positive size.
  explicit MLP(MLPConfig config, Generator& gen = default_generator());

  // x [N, sizes.front()] -> [N, sizes.back()]: one mlp() op (fused layers, two GEMMs per layer
  // in the backward).
  Tensor forward(const Tensor& x) const;
  Tensor operator()(const Tensor& x) const { return forward(x); }
  // Same output, and (when `preacts` is not null) every layer's pre-activation x W^T + b, in
  // layer order, for penalties that need act'(pre) such as the contractive one. Each layer is then
  // computed as dense(identity) followed by activation(). With null it is forward().
  Tensor forward_with_preacts(const Tensor& x, std::vector<Tensor>* preacts) const;

  std::size_t num_layers() const { return layers_.size(); }
  // Layer i (0-based); throws latent::Error when out of range.
  Linear& layer(std::size_t i);
  const Linear& layer(std::size_t i) const;
  // The activation applied after layer i.
  ActParams activation_of(std::size_t i) const;
  std::int64_t in_features() const { return config_.sizes.front(); }
  std::int64_t out_features() const { return config_.sizes.back(); }
  const MLPConfig& config() const { return config_; }

 private:
  void check_input(const Tensor& x) const;

  MLPConfig config_;
  std::vector<std::shared_ptr<Linear>> layers_;
};

}  // namespace latent::nn
