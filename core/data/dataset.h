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
// An IDX file (the MNIST format; gzip-compressed when the name ends in .gz): any element type
// (unsigned/signed byte, short, int, float, double), any number of dimensions, as float32 with the
// file's shape (at most 4 dimensions).
Tensor read_idx(const std::string& path);
// A float32 or float64 .npy array (C order, little-endian), as float32 (or float64 when asked).
Tensor read_npy(const std::string& path, DType dtype = DType::f32);
// Writes a CPU or CUDA tensor as .npy, atomically (temporary file, fsync, rename).
void write_npy(const std::string& path, const Tensor& t);
// A CSV file of numbers: one row per line, `delimiter`-separated; a first line that does not
// parse as numbers is taken as a header and skipped. -> [rows, cols] float32.
Tensor read_csv(const std::string& path, char delimiter = ',');

// ---- Fashion-MNIST -----------------------------------------------------------------------------
struct FashionMnistOptions {
  // Folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Empty: $LATENT_FASHION_MNIST,
  // then /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist).
  std::string dir;
  std::int64_t limit = 0;  // the first `limit` examples only (0: all)
};
// Images scaled to [0, 1] as [N, 784] float32 on the CPU, labels 0..9. Throws latent::Error saying
// where it looked and how to install the data when the files are missing.
Dataset fashion_mnist(Split split, const FashionMnistOptions& options = {});
// The folder fashion_mnist() reads (for messages and tests that skip without the data).
std::string fashion_mnist_dir(const std::string& override_dir = "");

// ---- batches -----------------------------------------------------------------------------------
struct BatchOptions {
  std::int64_t batch = 128;
  bool shuffle = true;
  std::uint64_t seed = 0;   // the permutation of epoch e is drawn from Philox(seed) at offset e
  std::int64_t epoch = 0;
  bool drop_last = false;   // drop a final batch smaller than `batch`
};

// Mini-batches of the rows of x (on x's device): a range of Tensors [B, ...]. With shuffle, each
// batch gathers rows through a permutation that depends only on (seed, epoch).
class Batches {
 public:
  Batches(Tensor x, const BatchOptions& options);

  class iterator {
   public:
    iterator(const Batches* owner, std::int64_t index) : owner_(owner), index_(index) {}
    Tensor operator*() const { return owner_->batch(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    bool operator!=(const iterator& o) const { return index_ != o.index_; }

   private:
    const Batches* owner_;
    std::int64_t index_;
  };

  iterator begin() const { return {this, 0}; }
  iterator end() const { return {this, count()}; }
  std::int64_t count() const;                 // number of batches
  Tensor batch(std::int64_t index) const;     // batch `index` (throws when out of range)
  const std::vector<std::int64_t>& order() const { return order_; }  // the row permutation

 private:
  Tensor x_;
  BatchOptions options_;
  std::vector<std::int64_t> order_;
};

inline Batches batches(Tensor x, const BatchOptions& options = {}) {
  return Batches(std::move(x), options);
}

// Rows of x in the given order: out[i] = x[index[i]] (a copy; not differentiable).
Tensor gather_rows(const Tensor& x, const std::vector<std::int64_t>& index);

}  // namespace data
}  // namespace latent
