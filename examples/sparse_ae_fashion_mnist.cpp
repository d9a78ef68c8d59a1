// A sparse autoencoder on Fashion-MNIST: a 128-unit sigmoid code pushed towards a mean activation
// of rho = 0.05 by the penalty beta * sum_j KL(rho || rho_hat_j) (Ng's sparse autoencoder), trained
// with an exponentially decaying learning rate. Prints the test reconstruction and how sparse the
// codes of held-out images are.
//
//   ./sparse_ae_fashion_mnist [--limit N] [--epochs E] [--data DIR] [--device D]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/latent.h"
#include "example_args.h"
#include "models/evaluate.h"
#include "models/sparse.h"
#include "models/trainer.h"

using namespace latent;

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const auto test =
        data::fashion_mnist(Split::test, {.dir = args.data, .limit = args.test_limit()});
    const Device dev = args.device_to_use();

    models::SparseAE sae({.input = 784,
                          .latent = 128,
                          .encoder = {.hidden = {512}},
                          .decoder = {.hidden = {512}},
                          .penalty = models::Sparsity::kl,
                          .rho = 0.05,
                          .beta = 1.0,
                          .seed = 0},
                         dev);
    optim::Adam opt(sae.parameters(), {.lr = 1e-3});
    models::Trainer trainer(sae, opt, {.epochs = args.epochs, .batch = 128, .seed = 0},
                            optim::LrSchedule::exponential(1e-3, 0.999));

    std::printf("SparseAE (KL, rho = 0.05) on Fashion-MNIST: %lld training, %lld test images\n",
                static_cast<long long>(train.size()), static_cast<long long>(test.size()));
    std::printf("epoch  train_recon  train_sparsity  test_recon  test_mse  seconds\n");
    trainer.on_epoch([](const models::EpochInfo& e) {
      std::printf("%5d  %11.3f  %14.4f  %10.3f  %8.5f  %7.2f\n", e.row.epoch,
                  e.row.train_value("recon"), e.row.train_value("kl_sparsity"),
                  e.row.test_value("recon"), e.row.test_value("recon_mse"), e.row.seconds);
    });
    trainer.fit(train.images, test.images);

    const models::ReconstructionError err = models::reconstruction_error(sae, test.images);
    std::printf("test: reconstruction NLL %.3f nats, MSE %.5f\n", err.nll, err.mse);

    // The codes of the test images: their mean activation and the share of near-silent units.
    const std::vector<float> codes = models::export_mu(sae, test.images).to_vector<float>();
    double total = 0;
    std::size_t quiet = 0;
    for (float c : codes) {
      total += c;
      quiet += c < 0.1f;
    }
    std::printf("test codes: mean activation %.4f (target 0.05), %.1f%% of activations below 0.1\n",
                total / static_cast<double>(codes.size()),
                100.0 * static_cast<double>(quiet) / static_cast<double>(codes.size()));
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
