// Writes the seed corpus of the fuzz targets (tests/fuzz/targets.h):
//   build/tests/latent_fuzz_corpus tests/fuzz/corpus
#include <cstdio>
#include <exception>

#include "fuzz/targets.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  try {
    latent::fuzz::write_corpus(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
