#include "core/random.h"

#include <atomic>

#include "core/backend.h"
#include "core/dispatch.h"
#include "kernels/fill.h"
#include "kernels/philox.h"

namespace latent {

namespace {

std::uint64_t* as_u64(const Tensor& t) {
  return reinterpret_cast<std::uint64_t*>(t.data<float>());
}

// 8 bytes: one uint64 in float32 storage (float64 and integer tensors are not on every device).
Tensor u64_slot(Device device) {
  return Tensor::empty({2}, {.device = device});
}

}  // namespace

std::uint64_t Generator::fresh_revision() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Generator::Generator(const Generator& other)
    : seed_(other.seed_), offset_(other.offset()), revision_(fresh_revision()) {}

Generator& Generator::operator=(const Generator& other) {
  if (this != &other) {
    seed_ = other.seed_;
    offset_ = other.offset();
    counter_ = Tensor();
    revision_ = fresh_revision();
  }
  return *this;
}

Generator::Generator(Generator&& other) noexcept
    : seed_(other.seed_),
      offset_(other.offset_),
      revision_(other.revision_),
      counter_(std::move(other.counter_)) {
  other.counter_ = Tensor();
  other.revision_ = fresh_revision();
}

Generator& Generator::operator=(Generator&& other) noexcept {
  if (this != &other) {
    seed_ = other.seed_;
    offset_ = other.offset_;
    counter_ = std::move(other.counter_);
    other.counter_ = Tensor();
    revision_ = fresh_revision();
    other.revision_ = fresh_revision();
  }
  return *this;
}

std::uint64_t Generator::offset() const {
  if (!counter_.defined()) return offset_;
  dispatch::refuse_while_recording("reading a generator's offset on the host");
  std::uint64_t v = 0;
  backend::copy(&v, Device::cpu(), as_u64(counter_), counter_.device(), sizeof v);
  return v;
}

void Generator::set_state(std::uint64_t seed, std::uint64_t offset) {
  if (seed != seed_) revision_ = fresh_revision();
  seed_ = seed;
  offset_ = offset;
  if (counter_.defined()) {
    dispatch::refuse_while_recording("setting a generator's offset from the host");
    backend::copy(as_u64(counter_), counter_.device(), &offset, Device::cpu(), sizeof offset);
  }
}

std::uint64_t Generator::take(std::uint64_t n) {
  const std::uint64_t start = offset();
  set_state(seed_, start + kernels::philox::blocks_for(n));
  return start;
}

void Generator::ensure_counter(Device device) {
  if (counter_.defined() && counter_.device() == device) return;
  // The offset moves into memory on `device` (once; again only if the draws change device).
  const std::uint64_t now = offset();
  dispatch::refuse_while_recording("a generator's first draw on a device");
  // The offset, then take_inside's count of finished blocks (0 between draws).
  counter_ = Tensor::empty({4}, {.device = device});
  revision_ = fresh_revision();
  const std::uint64_t init[2] = {now, 0};
  backend::copy(as_u64(counter_), device, init, Device::cpu(), sizeof init);
}

kernels::philox::Key Generator::Draw::again() const {
  return {.seed = key.seed, .offset = 0, .base = as_u64(used), .shard = key.shard};
}

Generator::Draw Generator::take_inside(std::uint64_t n, Device device) {
  ensure_counter(device);
  Draw d{.key = {.seed = seed_}, .used = u64_slot(device)};
  d.key.base = as_u64(counter_);
  d.key.take = {.counter = as_u64(counter_),
                .used = as_u64(d.used),
                .done = reinterpret_cast<unsigned long long*>(as_u64(counter_) + 1),
                .blocks = kernels::philox::blocks_for(n)};
  return d;
}

namespace {
thread_local bool t_sharded = false;
thread_local RowShard t_shard;
}  // namespace

RowShardScope::RowShardScope(RowShard shard) {
  check(!t_sharded, "generator", "row shard scopes do not nest");
  check(shard.total >= 1 && shard.first >= 0 && shard.count >= 1 &&
            shard.first + shard.count <= shard.total,
        "generator", "rows [", shard.first, ", ", shard.first + shard.count,
        ") are no share of a batch of ", shard.total);
  t_shard = shard;
  t_sharded = true;
}

RowShardScope::~RowShardScope() {
  t_sharded = false;
}

const RowShard* current_row_shard() {
  return t_sharded ? &t_shard : nullptr;
}

Generator::Draw Generator::take_rows(std::int64_t samples, std::int64_t rows, std::int64_t per_row,
                                     Device device) {
  const RowShard* s = current_row_shard();
  if (!s || (s->first == 0 && s->count == s->total))
    return take_inside(static_cast<std::uint64_t>(samples * rows * per_row), device);
  check(rows == s->count, "generator", "a draw for ", rows, " rows inside a share of ", s->count,
        " rows (", s->first, " to ", s->first + s->count, " of a batch of ", s->total, ")");
  Draw d = take_inside(static_cast<std::uint64_t>(samples * s->total * per_row), device);
  d.key.shard = {.run = static_cast<std::uint64_t>(rows * per_row),
                 .stride = static_cast<std::uint64_t>(s->total * per_row),
                 .skip = static_cast<std::uint64_t>(s->first * per_row)};
  return d;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(std::uint64_t seed) {
  default_generator().set_state(seed, 0);
}

}  // namespace latent
