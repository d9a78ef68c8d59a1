#include "core/nn/mlp.h"

#include <string>

#include "core/error.h"
#include "core/ops/activation.h"
#include "core/ops/linalg.h"

namespace latent::nn {

namespace {

std::string sizes_str(const std::vector<std::int64_t>& sizes) {
  std::string s = "{";
  for (std::size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "}";
}

}  // namespace

ActParams act_params(Act act, std::optional<float> alpha) {
  float a = 0.0f;
  if (alpha)
    a = *alpha;
  else if (act == Act::leaky_relu)
    a = 0.01f;
  else if (act == Act::elu)
    a = 1.0f;
  return {act, a};
}

MLP::MLP(MLPConfig config, Generator& gen) : config_(std::move(config)) {
  const auto& sizes = config_.sizes;
  check(sizes.size() >= 2, "mlp", "needs at least 2 sizes (input and output widths), got ",
        sizes_str(sizes));
  for (std::int64_t s : sizes)
    check(s > 0, "mlp", "every size must be positive, got ", sizes_str(sizes));
  auto list = register_module("layers", std::make_shared<Module>());
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    const ActParams act = activation_of(i);
    auto layer = std::make_shared<Linear>(sizes[i], sizes[i + 1],
                                          LinearOptions{.bias = config_.bias,
                                                        .init = config_.init,
                                                        .activation = act.act,
                                                        .activation_alpha = act.alpha,
                                                        .dtype = config_.dtype,
                                                        .device = config_.device},
                                          gen);
    list->register_module(std::to_string(i), layer);
    layers_.push_back(std::move(layer));
  }
}

ActParams MLP::activation_of(std::size_t i) const {
  check(i < config_.sizes.size() - 1, "mlp", "layer ", i, " out of range (", num_layers(),
        " layers)");
  return i + 2 == config_.sizes.size()
             ? act_params(config_.output_activation, config_.output_activation_alpha)
             : act_params(config_.activation, config_.activation_alpha);
}

Linear& MLP::layer(std::size_t i) {
  check(i < layers_.size(), "mlp", "layer ", i, " out of range (", layers_.size(), " layers)");
  return *layers_[i];
}

const Linear& MLP::layer(std::size_t i) const {
  check(i < layers_.size(), "mlp", "layer ", i, " out of range (", layers_.size(), " layers)");
  return *layers_[i];
}

void MLP::check_input(const Tensor& x) const {
  check(x.defined(), "mlp", "input is an undefined tensor");
  check(x.ndim() == 2, "mlp", "expected a 2-D input [N, ", in_features(), "], got ",
        x.shape().str());
  check(x.dim(1) == in_features(), "mlp", "input width ", x.dim(1),
        " does not match the first layer's width ", in_features(), ": got ", x.shape().str(),
        ", expected [N, ", in_features(), "]");
}

Tensor MLP::forward(const Tensor& x) const {
  check_input(x);
  std::vector<DenseLayer> layers;
  layers.reserve(layers_.size());
  for (std::size_t i = 0; i < layers_.size(); ++i)
    layers.push_back({layers_[i]->weight(), layers_[i]->bias(), activation_of(i)});
  return mlp(x, layers);
}

Tensor MLP::forward_with_preacts(const Tensor& x, std::vector<Tensor>* preacts) const {
  if (!preacts) return forward(x);
  check_input(x);
  preacts->clear();
  Tensor h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Tensor pre = layers_[i]->forward(h);
    preacts->push_back(pre);
    const ActParams act = activation_of(i);
    h = act.act == Act::identity ? pre : activation(pre, act);
  }
  return h;
}

}  // namespace latent::nn
