#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <numeric>

#include "core/data/dataset.h"

#include "core/backend.h"
#include "core/dispatch.h"
#include "kernels/gather.h"
#include "kernels/philox.h"

namespace latent::data {

namespace {

constexpr const char* kBatches = "batches";

Tensor gather(const char* op, const Tensor& x, const std::int64_t* index, std::int64_t n) {
  check(x.defined(), op, "x is an undefined tensor");
  check(x.ndim() >= 1, op, "x needs at least one dimension, got a scalar");
  const std::int64_t rows = x.dim(0);
  for (std::int64_t i = 0; i < n; ++i)
    check(index[i] >= 0 && index[i] < rows, op, "index ", index[i], " at position ", i,
          " is out of range for ", rows, " rows of ", x.shape().str());
  Tensor out = Tensor::empty(x.shape().with_rows(n), x.options());
  const std::int64_t row = x.shape().row_size();
  dispatch::run(
      op, x,
      [&](auto z) {
        using T = decltype(z);
        kernels::cpu::gather_rows<T>(out.data<T>(), x.data<T>(), index, n, row);
      },
      [&](kernels::Stream s) {
        // The indices go to the device through a pooled buffer, freed in stream order.
        const Device dev = x.device();
        const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(kernels::index_t);
        std::unique_ptr<void, std::function<void(void*)>> d_index(
            backend::allocate(bytes, dev), [dev](void* p) { backend::deallocate(p, dev); });
        backend::copy(d_index.get(), dev, index, Device::cpu(), bytes);
        kernels::cuda::gather_rows(out.data<float>(), x.data<float>(),
                                   static_cast<const kernels::index_t*>(d_index.get()), n, row, s);
      });
  return out;
}

// Fisher-Yates driven by Philox: draw k is word k % 4 of block (epoch << 32) + k / 4 under key
// `seed`, so the permutation depends on (seed, epoch) only and every epoch has its own stream
// (2^34 draws apart). A 32-bit word maps to [0, i] by a 64-bit multiply, whose bias, at most
// (i + 1) / 2^32, is far below what the 23-bit float uniforms would give for large data sets.
std::vector<std::int64_t> permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  const std::uint64_t offset = static_cast<std::uint64_t>(epoch) << 32;
  kernels::philox::U32x4 words{};
  for (std::int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    if (k % 4 == 0)
      words = kernels::philox::block(seed, offset + static_cast<std::uint64_t>(k / 4));
    const std::uint64_t w = words.v[k % 4];
    const auto j = static_cast<std::int64_t>((w * static_cast<std::uint64_t>(i + 1)) >> 32);
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order;
}

}  // namespace

// ---- Dataset ---------------------------------------------------------------------------------

Dataset Dataset::subset(std::int64_t start, std::int64_t count) const {
  check(images.defined(), "Dataset::subset", "the data set has no images");
  check(start >= 0 && count >= 0 && start + count <= size(), "Dataset::subset", "rows [", start,
        ", ", start + count, ") out of range for ", size(), " examples");
  Dataset out;
  out.images = images.rows(start, count);
  if (labels.defined()) {
    check(labels.ndim() >= 1 && labels.dim(0) == size(), "Dataset::subset", "labels ",
          labels.shape().str(), " do not match images ", images.shape().str());
    out.labels = labels.rows(start, count);
  }
  return out;
}

Dataset Dataset::to(Device device) const {
  Dataset out;
  if (images.defined()) out.images = images.to(device);
  if (labels.defined()) out.labels = labels.to(device);
  return out;
}

// ---- Batches ---------------------------------------------------------------------------------

Batches::Batches(Tensor x, const BatchOptions& options) : x_(std::move(x)), options_(options) {
  check(x_.defined(), kBatches, "x is an undefined tensor");
  check(x_.ndim() >= 1, kBatches, "x needs at least one dimension (rows), got a scalar");
  check(options_.batch >= 1, kBatches, "batch must be >= 1, got ", options_.batch);
  check(options_.epoch >= 0 && options_.epoch < (std::int64_t{1} << 32), kBatches,
        "epoch must be in [0, 2^32), got ", options_.epoch);
  const std::int64_t n = x_.dim(0);
  if (options_.shuffle) {
    order_ = permutation(n, options_.seed, options_.epoch);
  } else {
    order_.resize(static_cast<std::size_t>(n));
    std::iota(order_.begin(), order_.end(), std::int64_t{0});
  }
}

std::int64_t Batches::count() const {
  const std::int64_t n = x_.dim(0);
  return options_.drop_last ? n / options_.batch : (n + options_.batch - 1) / options_.batch;
}

Tensor Batches::batch(std::int64_t index) const {
  const std::int64_t total = count();
  check(index >= 0 && index < total, kBatches, "batch ", index, " out of range: there are ", total,
        " batches of ", options_.batch, " rows from ", x_.shape().str());
  const std::int64_t start = index * options_.batch;
  const std::int64_t len = std::min(options_.batch, x_.dim(0) - start);
  if (!options_.shuffle) return x_.rows(start, len);
  return gather(kBatches, x_, order_.data() + start, len);
}

// ---- BatchSource -----------------------------------------------------------------------------

namespace {
constexpr const char* kSource = "batch source";

std::int64_t* as_i64(const Tensor& t) {
  return reinterpret_cast<std::int64_t*>(t.data<float>());
}

std::uint64_t next_source_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

BatchSource::BatchSource(Tensor data, BatchSourceOptions options)
    : id_(next_source_id()), data_(std::move(data)), options_(options) {
  check(data_.defined(), kSource, "the data set is an undefined tensor");
  check(data_.ndim() >= 1, kSource, "the data set needs at least one dimension (rows), got ",
        data_.shape().str());
  check(data_.shape().row_size() > 0, kSource,
        "the data set's rows are empty: ", data_.shape().str());
  // int64 in float32 storage: float64 tensors are CPU-only.
  order_ = Tensor::empty({2 * std::max<std::int64_t>(data_.dim(0), 1)}, {.device = data_.device()});
  state_ = Tensor::zeros({6}, {.device = data_.device()});
}

void BatchSource::start_epoch(const std::vector<std::int64_t>& order, std::int64_t epoch) {
  dispatch::refuse_while_recording("starting an epoch of a batch source");
  const std::int64_t n = rows();
  check(static_cast<std::int64_t>(order.size()) == n, kSource, "the epoch's order has ",
        order.size(), " entries for ", n, " rows");
  for (std::size_t i = 0; i < order.size(); ++i)
    check(order[i] >= 0 && order[i] < n, kSource, "index ", order[i], " at position ", i,
          " is out of range for ", n, " rows");
  check(epoch >= 0 && epoch < (std::int64_t{1} << 22), kSource, "epoch must be in [0, 2^22), got ",
        epoch);
  const Device dev = data_.device();
  backend::copy(as_i64(order_), dev, order.data(), Device::cpu(),
                order.size() * sizeof(std::int64_t));
  // Each epoch's binarization stream starts 2^40 Philox blocks after the previous one's.
  const std::int64_t state[3] = {0, 0, epoch << 40};
  backend::copy(as_i64(state_), dev, state, Device::cpu(), sizeof state);
  cursor_ = 0;
  started_ = true;
}

void BatchSource::check_room(std::int64_t count) const {
  check(started_, kSource, "draw before start_epoch");
  check(count >= 1, kSource, "a draw needs at least one row, got ", count);
  check(count <= left(), kSource, "a draw of ", count, " rows, but only ", left(),
        " rows of the epoch are left (", rows(), " rows in all)");
}

Tensor BatchSource::draw(std::int64_t count) {
  return draw(count, 0, count);
}

Tensor BatchSource::draw(std::int64_t count, std::int64_t skip, std::int64_t advance) {
  check_room(advance);
  check(skip >= 0 && count >= 1 && skip + count <= advance, kSource, "a share of ", count,
        " rows after ", skip, " must lie within the ", advance, " rows the draw moves past");
  Tensor out = Tensor::empty(data_.shape().with_rows(count), data_.options());
  const std::int64_t row = data_.shape().row_size();
  dispatch::run(kSource, data_, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(batch_rows), out.data<T>(), data_.data<T>(),
                   static_cast<const kernels::index_t*>(as_i64(order_)), as_i64(state_),
                   options_.binarize, options_.seed, skip, count, advance, row);
  });
  cursor_ += advance;
  return out;
}

void BatchSource::rewind(std::int64_t count) {
  check(count >= 0 && count <= cursor_, kSource, "cannot rewind ", count, " rows from row ",
        cursor_);
  cursor_ -= count;
}

void BatchSource::skip(std::int64_t count) {
  check_room(count);
  cursor_ += count;
}

Tensor gather_rows(const Tensor& x, const std::vector<std::int64_t>& index) {
  return gather("gather_rows", x, index.data(), static_cast<std::int64_t>(index.size()));
}

}  // namespace latent::data
