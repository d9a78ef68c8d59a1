// Variational autoencoders on Fashion-MNIST: a VAE (beta = 1) and a beta-VAE (beta = 4 with a KL
// warm-up over the first epoch), both 784-512-256-32 with a Bernoulli likelihood on dynamically
// binarized images, trained with a warm-up + cosine learning-rate schedule. For each it prints the
// test ELBO, the importance-sampled estimate of log p(x) (k = 100), the KL and the active units:
// the larger beta buys a smaller KL (a more compressed code) with a worse likelihood.
//
//   ./vae_fashion_mnist [--limit N] [--epochs E] [--data DIR] [--device D]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"
#include "example_args.h"
#include "models/evaluate.h"
#include "models/trainer.h"
#include "models/vae.h"

using namespace latent;

// Trains one model and prints its test metrics on the binarized test images.
void train_and_report(models::VAE& vae, const char* title, const Tensor& train, const Tensor& test,
                      int epochs) {
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  const std::int64_t batch = 128;
  const std::int64_t steps = epochs * ((train.dim(0) + batch - 1) / batch);
  const std::int64_t warmup = std::min<std::int64_t>(100, steps / 10);
  models::Trainer trainer(
      vae, opt, {.epochs = epochs, .batch = batch, .seed = 0, .binarize = true},
      optim::LrSchedule::cosine(1e-3, steps - warmup, 1e-4).with_warmup(warmup));

  // The loss is recon + beta * KL: the negative ELBO when beta = 1.
  std::printf("%s\nepoch  train_loss  test_loss  test_recon  test_beta_kl  seconds\n", title);
  trainer.on_epoch([](const models::EpochInfo& e) {
    std::printf("%5d  %10.3f  %9.3f  %10.3f  %12.3f  %7.2f\n", e.row.epoch,
                e.row.train_value("total"), e.row.test_value("total"), e.row.test_value("recon"),
                e.row.test_value("kl"), e.row.seconds);
  });
  trainer.fit(train, test);

  // log p(x) with k importance samples costs k decoder passes per image: a subset is enough.
  const Tensor subset = test.rows(0, std::min<std::int64_t>(test.dim(0), 1000));
  const models::ElboResult elbo = models::elbo(vae, test);
  const double log_px = models::log_likelihood(vae, subset, {.k = 100, .chunk = 100, .batch = 50});
  const models::ActiveUnits active = models::active_units(vae, test);
  std::printf(
      "test: ELBO %.3f nats (recon %.3f, KL %.3f); log p(x) >= %.3f (k = 100, %lld images); "
      "active units %lld/%lld\n\n",
      elbo.elbo, elbo.recon, elbo.kl, log_px, static_cast<long long>(subset.dim(0)),
      static_cast<long long>(active.count), static_cast<long long>(vae.latent_dim()));
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const auto test =
        data::fashion_mnist(Split::test, {.dir = args.data, .limit = args.test_limit()});
    const Device dev = args.device_to_use();

    // The Bernoulli likelihood is exact on binary data: one fixed binarization of the test set.
    Generator binarize(1);
    const Tensor test_images = bernoulli(test.images, binarize);
    std::printf("Fashion-MNIST: %lld training, %lld test images (binarized)\n\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));

    models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32, .beta = 1.0, .seed = 0},
                    dev);
    train_and_report(vae, "VAE (beta = 1)", train.images, test_images, args.epochs);

    const std::int64_t steps_per_epoch = (train.size() + 127) / 128;
    models::BetaVAE beta_vae(
        {.input = 784,
         .hidden = {512, 256},
         .latent = 32,
         .beta = 4.0,
         .warmup = {.kind = models::KlAnneal::linear, .steps = steps_per_epoch},
         .seed = 0},
        dev);
    train_and_report(beta_vae, "beta-VAE (beta = 4, KL warm-up over one epoch)", train.images,
                     test_images, args.epochs);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
