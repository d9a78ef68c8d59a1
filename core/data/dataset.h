// Data: loaders for the formats autoencoder research uses, Fashion-MNIST as the built-in data set,
// and mini-batch iteration.
//
//   auto train = latent::data::fashion_mnist(latent::Split::train);        // images [60000, 784]
//   for (const Tensor& x : latent::data::batches(train.images, {.batch = 128, .seed = 0})) ...
//
// Every loader validates what it reads (magic numbers, dimensions, sizes, overflow, truncation)
// and throws latent::Error naming the file and what is wrong with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace latent {

enum class Split { train, test };

namespace data {

// Images as rows of float32 in [0, 1] ([N, D], D = rows * cols for image files), and their labels
// as float32 class indices [N] (undefined when there are none).
struct Dataset {
  Tensor images;
  Tensor labels;

  std::int64_t size() const { return images.defined() ? images.dim(0) : 0; }
  // Rows [start, start + count) of images and labels (views, no copy).
  Dataset subset(std::int64_t start, std::int64_t count) const;
  // Both tensors on `device`.
  Dataset to(Device device) const;
};

// ---- files -------------------------------------------------------------------------------------
// Every loader reads through zlib when the name ends in .gz, and throws
// latent::Error("[loader] <path>: what is wrong") for a missing or unreadable file (with the
// system's reason), a malformed header, truncated data (bytes expected vs found) and trailing
// bytes after the data.

// An IDX file (the MNIST format: magic 0x00 0x00 <type> <ndim>, big-endian 32-bit dimension sizes,
// big-endian data): any element type (unsigned/signed byte, short, int, float, double) as float32
// with the file's shape (1 to 4 dimensions). Values are not scaled (bytes stay 0..255).
Tensor read_idx(const std::string& path);
// A float32 ('<f4'), float64 ('<f8') or uint8 ('|u1', values 0..255 as they are, not scaled)
// .npy array, format version 1.0, 2.0 or 3.0, C order (or a Fortran-order array whose layout is
// the same, e.g. 1-D), up to 4 dimensions (a 0-d array gives a scalar), as `dtype` on the CPU.
// Other dtypes, big-endian data and Fortran order are errors. `descr`, when given, receives the
// file's dtype as written ("<f4", "|u1", ...).
Tensor read_npy(const std::string& path, DType dtype = DType::f32, std::string* descr = nullptr);
// Writes a CPU or CUDA tensor (float32 as '<f4', float64 as '<f8') as .npy version 1.0 with its
// header padded to 64 bytes, atomically (temporary file in the same folder, fsync, rename): when
// the write fails, `path` keeps its old content, and no temporary file is left behind.
void write_npy(const std::string& path, const Tensor& t);
// A CSV file of numbers: one row per line, `delimiter`-separated (spaces around cells and blank
// lines are ignored). A first line with any cell that is not a number is taken as a header and
// skipped. -> [rows, cols] float32. Errors name the line and column of the first bad cell, rows
// with a different number of columns, and an empty file (or a header alone).
Tensor read_csv(const std::string& path, char delimiter = ',');

// ---- Fashion-MNIST -----------------------------------------------------------------------------
struct FashionMnistOptions {
  // Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Empty: $LATENT_FASHION_MNIST,
  // then /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
  std::string dir;
  std::int64_t limit = 0;  // the first `limit` examples only (0: all)
};
// Images scaled to [0, 1] (byte / 255) as [N, 784] float32 on the CPU, labels 0..9 as float32
// [N]; N = 60000 (train) or 10000 (test), or `limit`. Either the .gz or the uncompressed files
// are read. With a limit only that many examples are read (and decompressed) from the files.
// Throws latent::Error saying where it looked and how to install the data when the files are
// missing, and naming the file when it is not ubyte (N, 28, 28) images / (N,) labels 0..9 with
// the same N.
Dataset fashion_mnist(Split split, const FashionMnistOptions& options = {});
// The folder fashion_mnist() reads (for messages and tests that skip without the data).
std::string fashion_mnist_dir(const std::string& override_dir = "");

// ---- batches -----------------------------------------------------------------------------------
struct BatchOptions {
  std::int64_t batch = 128;
  bool shuffle = true;
  // The permutation of epoch e is drawn from Philox(seed) at block offset e * 2^32: a stream of its
  // own per epoch, so it depends only on (seed, epoch). 0 <= epoch < 2^32.
  std::uint64_t seed = 0;
  std::int64_t epoch = 0;
  bool drop_last = false;  // drop a final batch smaller than `batch`
};

// Mini-batches of the rows of x (on x's device): a range of Tensors [B, ...]. Without shuffle a
// batch is a view of x (rows(), no copy); with shuffle it gathers rows (a copy, not
// differentiable) through a permutation that depends only on (seed, epoch); the gather runs on
// the CPU or the GPU (a gather kernel on either). The last batch is smaller when the
// rows do not divide evenly, unless drop_last.
// Throws latent::Error for an undefined or 0-D x, batch < 1, or an epoch outside [0, 2^32).
class Batches {
 public:
  Batches(Tensor x, const BatchOptions& options);

  class iterator {
   public:
    iterator(const Batches* owner, std::int64_t index) : owner_(owner), index_(index) {}
    // The batch is built here and held by the iterator, so `for (auto& x : batches(...))` works.
    const Tensor& operator*() const {
      current_ = owner_->batch(index_);
      return current_;
    }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return index_ != o.index_; }

   private:
    const Batches* owner_;
    std::int64_t index_;
    mutable Tensor current_;
  };

  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, count()}; }
  std::int64_t count() const;              // number of batches
  Tensor batch(std::int64_t index) const;  // batch `index` (throws when out of range)
  const std::vector<std::int64_t>& order() const { return order_; }  // the row permutation

 private:
  Tensor x_;
  BatchOptions options_;
  std::vector<std::int64_t> order_;
};

inline Batches batches(Tensor x, const BatchOptions& options = {}) {
  return Batches(std::move(x), options);
}

// A training set held where the model is and drawn from inside the training step: the epoch's
// permutation lives in memory next to it (uploaded once per epoch by start_epoch) together with a
// cursor, and each draw is one kernel that gathers the next rows (binarizing them when asked,
// with its own Philox stream per epoch) and moves the cursor in memory. So a recorded step
// (dispatch::Plan, a CUDA graph) draws a new batch at every replay, without the host.
//
//   data::BatchSource src(train.to(device), {.binarize = true, .seed = 7});
//   src.start_epoch(data::batches(train, {.seed = 7, .epoch = e}).order(), e);
//   Tensor x = src.draw(128);  // rows order[0..128) of the epoch, binarized
//
// Throws latent::Error for an undefined or 0-D data set, a permutation of another length or with
// an index out of range, and a draw past the end of the epoch (naming the rows asked and left).
struct BatchSourceOptions {
  bool binarize = false;   // each drawn value v becomes 1 with probability v (values in [0, 1])
  std::uint64_t seed = 0;  // the binarization's Philox key
};

class BatchSource {
 public:
  BatchSource(Tensor data, BatchSourceOptions options = {});

  // Starts epoch `epoch` (>= 0) with the given order of the rows (a permutation of
  // [0, rows())): uploads it and sets the cursor to 0. Not inside a recorded step.
  void start_epoch(const std::vector<std::int64_t>& order, std::int64_t epoch);
  // The next `count` rows of the epoch [count, ...], one kernel; the result is a new tensor.
  Tensor draw(std::int64_t count);
  // One share of the next `advance` rows (data parallelism): rows [skip, skip + count) of them,
  // binarized with the very bits a draw of all `advance` rows gives them; the epoch moves past
  // all `advance`. Throws unless 0 <= skip, 1 <= count and skip + count <= advance <= left().
  Tensor draw(std::int64_t count, std::int64_t skip, std::int64_t advance);
  // Moves the host's view of the cursor as a replayed draw of `count` rows did in memory; back by
  // `count` rows for a draw that was captured into a CUDA graph that never ran.
  void skip(std::int64_t count);
  void rewind(std::int64_t count);
  // Rows of the data set; rows of the epoch not drawn yet.
  std::int64_t rows() const { return data_.dim(0); }
  std::int64_t left() const { return rows() - cursor_; }
  const Tensor& data() const { return data_; }
  // Unique per source made in this process (a recorded step drawing from one source must not
  // replay against another, even at the same address).
  std::uint64_t id() const { return id_; }

 private:
  void check_room(std::int64_t count) const;

  std::uint64_t id_;
  Tensor data_;
  BatchSourceOptions options_;
  Tensor order_;  // int64 indices in float32 storage (two per index)
  Tensor state_;  // kernels::batch_rows's three int64
  std::int64_t cursor_ = 0;
  bool started_ = false;
};

// Rows of x in the given order: out[i] = x[index[i]] (a copy; not differentiable) of shape
// [index.size(), ...]. On the CPU or the GPU. Throws for an undefined or 0-D x and for an index
// outside [0, x.dim(0)).
Tensor gather_rows(const Tensor& x, const std::vector<std::int64_t>& index);

}  // namespace data
}  // namespace latent
