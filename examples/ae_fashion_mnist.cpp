// A plain undercomplete autoencoder on Fashion-MNIST: 784-512-256-32-256-512-784 with ReLUs and a
// Bernoulli likelihood on the decoder's logits (cross-entropy on grey levels), trained by the
// Trainer with Adam and a cosine learning-rate schedule, then evaluated on held-out images.
//
//   ./ae_fashion_mnist [--limit N] [--epochs E] [--data DIR] [--device D]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"
#include "example_args.h"
#include "models/autoencoder.h"
#include "models/evaluate.h"
#include "models/trainer.h"

using namespace latent;

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const auto test =
        data::fashion_mnist(Split::test, {.dir = args.data, .limit = args.test_limit()});
    const Device dev = args.device_to_use();

    models::AE ae({.input = 784,
                   .latent = 32,
                   .encoder = {.hidden = {512, 256}},
                   .decoder = {.hidden = {256, 512}},
                   .likelihood = {.kind = models::Likelihood::bernoulli},
                   .seed = 0},
                  dev);
    optim::Adam opt(ae.parameters(), {.lr = 1e-3});
    const std::int64_t batch = 128;
    const std::int64_t steps = args.epochs * ((train.size() + batch - 1) / batch);
    models::Trainer trainer(ae, opt, {.epochs = args.epochs, .batch = batch, .seed = 0},
                            optim::LrSchedule::cosine(1e-3, steps, 1e-4));

    std::printf("AE 784-512-256-32 on Fashion-MNIST: %lld training, %lld test images\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::printf("epoch  train_recon  test_recon  test_mse  seconds\n");
    trainer.on_epoch([](const models::EpochInfo& e) {
      std::printf("%5d  %11.3f  %10.3f  %8.5f  %7.2f\n", e.row.epoch, e.row.train_value("recon"),
                  e.row.test_value("recon"), e.row.test_value("recon_mse"), e.row.seconds);
    });
    trainer.fit(train.images, test.images);

    const models::ReconstructionError err = models::reconstruction_error(ae, test.images);
    std::printf("test: reconstruction NLL %.3f nats, squared error %.3f per image, MSE %.5f\n",
                err.nll, err.squared_error, err.mse);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
