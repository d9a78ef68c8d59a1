// Generator: a Philox4x32-10 stream named by (seed, offset). Every draw takes the next
// blocks_for(n) counter blocks and advances the offset, so the same seed gives the same numbers on
// the CPU and the GPU, and saving (seed, offset) in a checkpoint reproduces the next draws.
#pragma once

#include <cstdint>

namespace latent {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  void set_state(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves the blocks for n numbers and returns the offset where they start.
  std::uint64_t take(std::uint64_t n);

 private:
  std::uint64_t seed_ = 0;
  std::uint64_t offset_ = 0;
};

// The process-wide generator, used when an op is given none. Not thread-safe.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

}  // namespace latent
