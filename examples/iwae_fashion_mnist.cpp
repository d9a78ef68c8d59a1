// An importance-weighted autoencoder on Fashion-MNIST (Burda et al. 2016): the VAE's architecture
// (784-512-256-32, Bernoulli likelihood, dynamically binarized images) trained on the k = 5
// importance-weighted bound instead of the ELBO. Prints the test bound for k = 5, the ELBO (k = 1),
// the importance-sampled log p(x) with k = 100 and the active units: the bounds grow with k.
//
//   ./iwae_fashion_mnist [--limit N] [--epochs E] [--data DIR]
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"
#include "models/evaluate.h"
#include "models/iwae.h"
#include "models/trainer.h"

using namespace latent;

struct Args {
  std::int64_t limit = 10000;  // training images (0: all 60000)
  int epochs = 5;
  std::string data;  // "": $LATENT_FASHION_MNIST, then /usr/share/datasets/fashion-mnist
};

// --limit N, --epochs E, --data DIR, --help; exits 2 with a message on a usage error.
Args parse_args(int argc, char** argv) {
  auto synopsis = [&](std::FILE* f) {
    std::fprintf(f, "usage: %s [--limit N] [--epochs E] [--data DIR]\n", argv[0]);
  };
  auto fail = [&](const std::string& msg) {
    std::fprintf(stderr, "%s: %s\n", argv[0], msg.c_str());
    synopsis(stderr);
    std::exit(2);
  };
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--help" || opt == "-h") {
      synopsis(stdout);
      std::printf(
          "  --limit N   train on the first N images (default 10000, 0: all 60000) and\n"
          "              evaluate on the first max(100, N/5) test images\n"
          "  --epochs E  training epochs (default 5)\n"
          "  --data DIR  folder with the Fashion-MNIST files (default: $LATENT_FASHION_MNIST,\n"
          "              then /usr/share/datasets/fashion-mnist)\n");
      std::exit(0);
    }
    if (opt != "--limit" && opt != "--epochs" && opt != "--data") fail("unknown option " + opt);
    if (i + 1 >= argc) fail(opt + " needs a value");
    const std::string v = argv[++i];
    if (opt == "--data") {
      a.data = v;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0) fail(opt + " needs a whole number, got " + v);
    if (opt == "--limit" && (n < 0 || n > 60000)) fail("--limit must lie in [0, 60000]");
    if (opt == "--epochs" && (n < 1 || n > 10000)) fail("--epochs must lie in [1, 10000]");
    if (opt == "--limit") a.limit = n;
    if (opt == "--epochs") a.epochs = static_cast<int>(n);
  }
  return a;
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    const auto train = data::fashion_mnist(Split::train, {.dir = args.data, .limit = args.limit});
    const std::int64_t n_test =
        args.limit == 0 ? 10000 : std::clamp<std::int64_t>(args.limit / 5, 100, 10000);
    const auto test = data::fashion_mnist(Split::test, {.dir = args.data, .limit = n_test});

    Generator binarize(1);
    const Tensor test_images = bernoulli(test.images, binarize);

    models::IWAE iwae({.input = 784, .hidden = {512, 256}, .latent = 32, .k = 5, .seed = 0});
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
