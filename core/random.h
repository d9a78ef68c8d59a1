// Generator: a Philox4x32-10 stream named by (seed, offset). Every draw takes the next
// blocks_for(n) counter blocks and advances the offset, so the same seed gives the same numbers on
// the CPU and the GPU, and saving (seed, offset) in a checkpoint reproduces the next draws.
//
// The offset lives on the host until the first draw made by a kernel (take_inside, which the
// random ops use): from then on it lives in memory on that device, where each draw's first kernel
// reads and advances it, so a recorded step draws new numbers at every replay, exactly the numbers
// an eager step would. offset(), set_state() and take() then read or write that memory (they wait
// for the device, and are refused inside a recorded step).
#pragma once

#include <cstdint>

#include "core/device.h"
#include "core/tensor.h"
#include "kernels/philox.h"

namespace latent {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed), revision_(fresh_revision()) {}
  // A copy starts where `other` stands, with its offset on the host.
  Generator(const Generator& other);
  Generator& operator=(const Generator& other);
  Generator(Generator&& other) noexcept;
  Generator& operator=(Generator&& other) noexcept;

  std::uint64_t seed() const { return seed_; }
  // Where the next draw starts.
  std::uint64_t offset() const;
  void set_state(std::uint64_t seed, std::uint64_t offset);
  // Reserves the blocks for n numbers and returns the offset where they start.
  std::uint64_t take(std::uint64_t n);

  // Changes (to a value no generator had before) whenever what a recorded draw baked in changes:
  // the seed (set_state with another seed, an assignment) or the memory that holds the offset (an
  // assignment, draws moving to another device). A recorded step that draws from this generator
  // must be recorded again when it changed; set_state with the same seed only writes the offset
  // in memory, which a replay reads.
  std::uint64_t revision() const { return revision_; }

  // The same reservation made by a kernel on `device`, in stream order: the returned key's start
  // is read by the draw's kernels from `used` (which the caller keeps alive while they may run).
  struct Draw {
    kernels::philox::Key key;
    Tensor used;
    // The key for kernels that draw the same numbers again after the first: its start is `used`.
    kernels::philox::Key again() const;
  };
  // The reservation is made by the draw's first kernel (key.take, kernels::philox::Take), with no
  // launch of its own: key reads the start from the generator's counter and its kernel moves it;
  // later kernels drawing the same numbers use again().
  Draw take_inside(std::uint64_t n, Device device);
  // The same for a draw of `per_row` numbers for each of `rows` rows of a batch, `samples` times
  // (element (s * rows + r) * per_row + k). Inside a RowShardScope the rows are that share of the
  // batch: the draw takes the numbers the whole batch would give these rows, and moves the
  // generator past the whole batch's draw (throws latent::Error unless rows is the share's count).
  Draw take_rows(std::int64_t samples, std::int64_t rows, std::int64_t per_row, Device device);

 private:
  // The offset in memory on `device` from now on (moved there by the first draw on it).
  void ensure_counter(Device device);

  static std::uint64_t fresh_revision();

  std::uint64_t seed_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t revision_ = 0;
  Tensor counter_;  // the offset once it lives in memory: one uint64 in float32 storage
};

namespace dist {
class Group;
}

// This process's rows of a batch shared by several (data parallelism): rows [first, first +
// count) of `total`, shared with the ranks of `group` (when set, statistics of the whole batch
// are reduced over them: dist::whole_batch_mean).
struct RowShard {
  std::int64_t first = 0;
  std::int64_t count = 0;
  std::int64_t total = 0;
  dist::Group* group = nullptr;
};
// While alive, the random ops of this thread whose rows are a batch (Generator::take_rows: the
// reparametrization, the corruption noise, Bernoulli and categorical draws) draw as this share of
// the batch. Scopes do not nest. Throws latent::Error for a share outside [0, total).
class RowShardScope {
 public:
  explicit RowShardScope(RowShard shard);
  ~RowShardScope();
  RowShardScope(const RowShardScope&) = delete;
  RowShardScope& operator=(const RowShardScope&) = delete;
};
// The share of the live scope on this thread (null without one).
const RowShard* current_row_shard();

// The process-wide generator, used when an op is given none. Not thread-safe.
Generator& default_generator();
void manual_seed(std::uint64_t seed);

}  // namespace latent
