// The command line every Fashion-MNIST example shares: --limit N, --epochs E, --data DIR,
// --device auto|cpu|cuda|cuda:N, --help.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/device.h"

struct Args {
  std::int64_t limit = 10000;  // training images (0: all 60000)
  int epochs = 5;
  std::string data;             // "": $LATENT_FASHION_MNIST, then /usr/share/datasets/fashion-mnist
  std::string device = "auto";  // auto: the first GPU when there is one, else the CPU

  // The device to train on; throws latent::Error when it is not available (cuda without a GPU).
  latent::Device device_to_use() const { return latent::Device::parse(device); }

  // Test images evaluated: all 10000 with --limit 0, else max(100, limit / 5).
  std::int64_t test_limit() const {
    return limit == 0 ? 10000 : std::clamp<std::int64_t>(limit / 5, 100, 10000);
  }
};

// --limit N, --epochs E, --data DIR, --device D, --help; exits 2 with a message on a usage error.
inline Args parse_args(int argc, char** argv) {
  auto synopsis = [&](std::FILE* f) {
    std::fprintf(f, "usage: %s [--limit N] [--epochs E] [--data DIR] [--device D]\n", argv[0]);
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
          "              then /usr/share/datasets/fashion-mnist)\n"
          "  --device D  auto (default: the first GPU when there is one, else the CPU), cpu,\n"
          "              cuda or cuda:N\n");
      std::exit(0);
    }
    if (opt != "--limit" && opt != "--epochs" && opt != "--data" && opt != "--device")
      fail("unknown option " + opt);
    if (i + 1 >= argc) fail(opt + " needs a value");
    const std::string v = argv[++i];
    if (opt == "--data") {
      a.data = v;
      continue;
    }
    if (opt == "--device") {
      const bool indexed = v.rfind("cuda:", 0) == 0 && v.size() > 5 &&
                           v.find_first_not_of("0123456789", 5) == std::string::npos;
      if (v != "auto" && v != "cpu" && v != "cuda" && !indexed)
        fail("--device takes auto, cpu, cuda or cuda:N, got " + v);
      a.device = v;
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
