// A VAE on Fashion-MNIST trained by several processes as one (data parallelism). Started alone it
// is one process; started by mpirun or srun, every rank takes its share of every batch of 256, the
// gradients are averaged with one all-reduce per step (MPI on the CPU, NCCL on GPUs, inside the
// recorded step), and every rank holds the same parameters: N processes compute what one process
// computes on the whole batch. Each rank trains on the GPU of its rank on its machine (or on the
// CPU); the test evaluation is shared by the ranks too, and rank 0 alone prints.
//
//   mpirun -np 2 ./vae_data_parallel_fashion_mnist [--limit N] [--epochs E] [--data DIR]
//                                                  [--device D]
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "core/latent.h"
#include "example_args.h"
#include "models/evaluate.h"
#include "models/trainer.h"
#include "models/vae.h"

using namespace latent;

int main(int argc, char** argv) {
  // Joins the launcher's world for the program's lifetime (a world of one without a launcher).
  std::optional<dist::Session> session;
  try {
    session.emplace(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  dist::Group& world = dist::world();
  const bool root = world.is_root();
  const Args args = parse_args(argc, argv);
  try {
    // Every rank reads the same data (the Trainer checks that the ranks hold the same values).
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const auto test =
        data::fashion_mnist(Split::test, {.dir = args.data, .limit = args.test_limit()});
    Generator binarize(1);  // one fixed binarization of the test set, the same on every rank
    const Tensor test_images = bernoulli(test.images, binarize);
    // "auto": the GPU of this rank on its machine when there are GPUs (two ranks on one GPU are
    // refused), else the CPU; every rank on the same kind of device.
    const Device dev = dist::rank_device(args.device, "example", "--device");
    if (root)
      std::printf(
          "Fashion-MNIST: %lld training, %lld test images; %d process(es), rank 0 on %s\n\n",
          static_cast<long long>(train.size()), static_cast<long long>(test.size()), world.size(),
          dev.str().c_str());

    models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32, .seed = 0}, dev);
    optim::Adam opt(vae.parameters(), {.lr = 1e-3});
    // batch is the global batch: each of N ranks takes batch / N rows of it. The group defaults to
    // dist::world(); rank 0's parameters and optimizer state are broadcast when fit() starts.
    models::Trainer trainer(vae, opt,
                            {.epochs = args.epochs, .batch = 256, .seed = 0, .binarize = true});
    if (root) std::printf("epoch  train_loss  test_loss  seconds\n");
    trainer.on_epoch([&](const models::EpochInfo& e) {
      // Every rank gets the same numbers (their sums are reduced): one prints them.
      if (root)
        std::printf("%5d  %10.3f  %9.3f  %7.2f\n", e.row.epoch, e.row.train_value("total"),
                    e.row.test_value("total"), e.row.seconds);
    });
    trainer.fit(train.images, test_images);

    // The evaluation is shared: each rank its share of every batch, the sums reduced (collective:
    // every rank makes these calls, in this order).
    const models::EvalOptions shared{.group = &world};
    const models::ElboResult elbo = models::elbo(vae, test_images, 1, shared);
    const Tensor subset = test_images.rows(0, std::min<std::int64_t>(test_images.dim(0), 500));
    const double log_px =
        models::log_likelihood(vae, subset, {.k = 100, .chunk = 100, .batch = 50, .group = &world});
    const models::ActiveUnits active = models::active_units(vae, test_images, 0.01, shared);
    // The ranks hold the same parameters, bit for bit: checked like a configuration (a difference
    // throws on every rank alike, naming it).
    world.check_same(
        {{"the trained parameters", std::to_string(dist::fingerprint(vae.parameters()))}});
    if (root)
      std::printf(
          "\ntest: ELBO %.3f nats (recon %.3f, KL %.3f); log p(x) >= %.3f (k = 100, %lld "
          "images); active units %lld/%lld; the %d rank(s) hold the same parameters\n",
          elbo.elbo, elbo.recon, elbo.kl, log_px, static_cast<long long>(subset.dim(0)),
          static_cast<long long>(active.count), static_cast<long long>(vae.latent_dim()),
          world.size());
  } catch (const dist::SharedError& e) {
    // Raised by every rank alike (ranks that disagree): none waits for another, rank 0 says why.
    if (root) std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const Error& e) {
    if (world.size() == 1) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
    // A rank that fails alone ends the whole job, with its message: the others may be waiting for
    // it in a collective.
    dist::abort(1, e.what());
  }
  return 0;
}
