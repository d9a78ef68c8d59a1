// A denoising autoencoder on Fashion-MNIST: the encoder sees images with 30% of their pixels
// masked to 0 (a fresh draw every batch, in training mode only) and the decoder is asked for the
// clean image. After training, masked test images are reconstructed and compared with the clean
// ones: the reconstruction is much closer to the clean image than the masked input was.
//
//   ./dae_fashion_mnist [--limit N] [--epochs E] [--data DIR] [--device D]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"
#include "example_args.h"
#include "models/denoising.h"
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

    models::DenoisingAE dae({.input = 784,
                             .latent = 32,
                             .encoder = {.hidden = {512, 256}},
                             .decoder = {.hidden = {256, 512}},
                             .corruption = {.kind = models::Corruption::masking, .p = 0.3},
                             .seed = 0},
                            dev);
    optim::Adam opt(dae.parameters(), {.lr = 1e-3});
    models::Trainer trainer(dae, opt, {.epochs = args.epochs, .batch = 128, .seed = 0});

    std::printf("DenoisingAE (masking p = 0.3) on Fashion-MNIST: %lld training, %lld test images\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::printf("epoch  train_recon  test_recon  test_mse  seconds\n");
    trainer.on_epoch([](const models::EpochInfo& e) {
      std::printf("%5d  %11.3f  %10.3f  %8.5f  %7.2f\n", e.row.epoch, e.row.train_value("recon"),
                  e.row.test_value("recon"), e.row.test_value("recon_mse"), e.row.seconds);
    });
    trainer.fit(train.images, test.images);

    const models::ReconstructionError err = models::reconstruction_error(dae, test.images);
    std::printf("clean test images: reconstruction NLL %.3f nats, MSE %.5f\n", err.nll, err.mse);

    // The noise it was trained to remove, drawn afresh on the test images.
    NoGradGuard no_grad;
    dae.eval();
    Generator noise(1);
    const Tensor clean = test.images.to(dev);
    const Tensor masked = masking_noise(clean, 0.3, noise);
    const double masked_mse = mse(masked, clean).item();
    const double denoised_mse = mse(dae.reconstruct(masked), clean).item();
    std::printf("masked test images: MSE to the clean images %.5f as given, %.5f reconstructed\n",
                masked_mse, denoised_mse);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
