// An importance-weighted autoencoder on Fashion-MNIST (Burda et al. 2016): the VAE's architecture
// (784-512-256-32, Bernoulli likelihood, dynamically binarized images) trained on the k = 5
// importance-weighted bound instead of the ELBO. Prints the test bound for k = 5, the ELBO (k = 1),
// the importance-sampled log p(x) with k = 100 and the active units: the bounds grow with k.
//
//   ./iwae_fashion_mnist [--limit N] [--epochs E] [--data DIR] [--device D]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"
#include "example_args.h"
#include "models/evaluate.h"
#include "models/iwae.h"
#include "models/trainer.h"

using namespace latent;

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const auto test =
        data::fashion_mnist(Split::test, {.dir = args.data, .limit = args.test_limit()});
    const Device dev = args.device_to_use();

    Generator binarize(1);
    const Tensor test_images = bernoulli(test.images, binarize);

    models::IWAE iwae({.input = 784, .hidden = {512, 256}, .latent = 32, .k = 5, .seed = 0}, dev);
    optim::Adam opt(iwae.parameters(), {.lr = 1e-3});
    models::Trainer trainer(iwae, opt,
                            {.epochs = args.epochs, .batch = 128, .seed = 0, .binarize = true});

    std::printf("IWAE (k = 5) on Fashion-MNIST: %lld training, %lld test images (binarized)\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::printf("epoch  train_-bound  test_-bound  test_mse  seconds\n");
    trainer.on_epoch([](const models::EpochInfo& e) {
      std::printf("%5d  %12.3f  %11.3f  %8.5f  %7.2f\n", e.row.epoch,
                  e.row.train_value("neg_bound"), e.row.test_value("neg_bound"),
                  e.row.test_value("recon_mse"), e.row.seconds);
    });
    const models::History history = trainer.fit(train.images, test_images);

    const Tensor subset = test_images.rows(0, std::min<std::int64_t>(test.size(), 1000));
    const models::ElboResult elbo = models::elbo(iwae, test_images);
    const double log_px =
        models::log_likelihood(iwae, subset, {.k = 100, .chunk = 100, .batch = 50});
    const models::ActiveUnits active = models::active_units(iwae, test_images);
    std::printf(
        "test: ELBO (k = 1) %.3f, IWAE bound (k = 5) %.3f, log p(x) >= %.3f (k = 100, %lld "
        "images) nats\n",
        elbo.elbo, -history.last().test_value("neg_bound"), log_px,
        static_cast<long long>(subset.dim(0)));
    std::printf("active units %lld/%lld\n", static_cast<long long>(active.count),
                static_cast<long long>(iwae.latent_dim()));
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
