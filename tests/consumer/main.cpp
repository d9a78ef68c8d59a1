// Uses the installed package: a tiny dense layer, its gradient, one optimizer step; and compiles
// the README's model example (run only with an argument, since it trains on Fashion-MNIST).
#include <cstdio>

#include "core/latent.h"
#include "models/trainer.h"
#include "models/vae.h"

namespace {

// The README's "Using it" example, verbatim apart from the smaller sizes.
void readme_example() {
  using namespace latent;
  Device dev = Device::best();
  auto train = data::fashion_mnist(Split::train, {.limit = 512});
  auto test = data::fashion_mnist(Split::test, {.limit = 128});
  models::VAE vae({.input = 784,
                   .hidden = {512, 256},
                   .latent = 32,
                   .likelihood = models::Likelihood::bernoulli,
                   .beta = 1.0},
                  dev);
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  for (const Tensor& x : data::batches(train.images, {.batch = 128, .shuffle = true, .seed = 0})) {
    models::Loss loss = vae.loss(vae.forward(x.to(dev)), x.to(dev));
    opt.zero_grad();
    loss.total.backward();
    opt.step();
  }
  models::CompiledStep step(vae, opt, {.grad_clip = 1.0});
  for (const Tensor& x : data::batches(train.images, {.batch = 128, .shuffle = true, .seed = 1}))
    step(x.to(dev));
  models::Trainer trainer(vae, opt, {.epochs = 1, .batch = 128});
  models::History history = trainer.fit(train.images, test.images);
  std::printf("readme example: test loss %.3f\n", history.last().test_value("total"));
}

}  // namespace

int main(int argc, char**) {
  using namespace latent;
  Generator gen(7);
  Tensor x = Tensor::randn({4, 3}, gen);
  Tensor w = Tensor::randn({2, 3}, gen, {.requires_grad = true});
  Tensor b = Tensor::zeros({2}, {.requires_grad = true});
  optim::SGD opt({w, b}, {.lr = 0.1});
  Tensor loss = mean(square(dense(x, w, b, {Act::tanh, 0.0f})));
  loss.backward();
  opt.step();
  if (!w.grad().defined() || !b.grad().defined()) return 1;
  std::printf("consumer ok: loss %.6f\n", loss.item());
  if (argc > 1) readme_example();
  return 0;
}
