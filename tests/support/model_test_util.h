// Helpers the model tests share: error messages, Fashion-MNIST subsets, a short training loop.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/model.h"
#include "support/test_util.h"

namespace latent::testing {

// Whether the Fashion-MNIST files are installed (tests that need them skip otherwise).
inline bool have_fashion_mnist() {
  return std::filesystem::is_directory(data::fashion_mnist_dir());
}

// The first n images of a split, [n, 784] in [0, 1].
inline Tensor images(Split split, std::int64_t n) {
  return data::fashion_mnist(split, {.limit = n}).images;
}

// Trains with Adam on shuffled mini-batches for `steps` steps; returns every step's total loss.
template <class Model>
std::vector<double> train(Model& model, const Tensor& x, int steps, std::int64_t batch, double lr,
                          std::uint64_t seed = 1) {
  model.train();
  optim::Adam opt(model.parameters(), {.lr = lr});
  std::vector<double> losses;
  for (std::int64_t epoch = 0; static_cast<int>(losses.size()) < steps; ++epoch) {
    for (const Tensor& xb : data::batches(x, {.batch = batch, .seed = seed, .epoch = epoch})) {
      if (static_cast<int>(losses.size()) == steps) break;
      models::Loss loss = model.compute_loss(xb);
      opt.zero_grad();
      loss.total.backward();
      opt.step();
      losses.push_back(loss.total.item());
    }
  }
  return losses;
}

}  // namespace latent::testing
