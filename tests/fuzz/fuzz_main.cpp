// One libFuzzer binary per target of tests/fuzz/targets.h (the target's name is compiled in as
// LATENT_FUZZ_TARGET). Run it on a copy of its seed corpus, e.g. for ten seconds:
//   build/tests/fuzz/fuzz_npy -max_total_time=10 /tmp/npy-corpus tests/fuzz/corpus/npy
#include <cstddef>
#include <cstdint>

#include "fuzz/targets.h"

#ifndef LATENT_FUZZ_TARGET
#error "LATENT_FUZZ_TARGET names the target"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const latent::fuzz::Target& target = latent::fuzz::target(LATENT_FUZZ_TARGET);
  (void)latent::fuzz::run_one(target, data, size);
  return 0;
}
