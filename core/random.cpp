#include "core/random.h"

#include "kernels/philox.h"

namespace latent {

std::uint64_t Generator::take(std::uint64_t n) {
  const std::uint64_t start = offset_;
  offset_ += kernels::philox::blocks_for(n);
  return start;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(std::uint64_t seed) {
  default_generator().set_state(seed, 0);
}

}  // namespace latent
