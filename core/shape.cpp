#include "core/shape.h"

#include "core/error.h"

namespace latent {

Shape::Shape(std::initializer_list<std::int64_t> dims)
    : Shape(std::span<const std::int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const std::int64_t> dims) {
  check(dims.size() <= static_cast<std::size_t>(kMaxDims), "shape",
        "at most 4 dimensions are supported, got ", dims.size());
  ndim_ = static_cast<int>(dims.size());
  // The product of the non-zero dimensions fits in int64, so numel() and row_size() (every
  // partial product of them, times 0 when a dimension is 0) never overflow.
  std::int64_t product = 1;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    check(dims[i] >= 0, "shape", "negative dimension ", dims[i], " at index ", i);
    dims_[i] = dims[i];
    if (dims[i] != 0 && __builtin_mul_overflow(product, dims[i], &product)) {
      std::string s;
      for (std::size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
      throw Error("shape", "(" + s + ") has more elements than a 64-bit count holds");
    }
  }
}

std::int64_t Shape::dim(int i) const {
  const int j = i < 0 ? i + ndim_ : i;
  check(j >= 0 && j < ndim_, "shape", "dimension ", i, " out of range for shape ", str());
  return dims_[static_cast<std::size_t>(j)];
}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < ndim_; ++i) n *= dims_[static_cast<std::size_t>(i)];
  return n;
}

Shape Shape::with_rows(std::int64_t rows) const {
  check(ndim_ >= 1, "shape", "with_rows needs at least one dimension, got a scalar");
  std::array<std::int64_t, kMaxDims> dims = dims_;
  dims[0] = rows;
  return Shape(std::span<const std::int64_t>(dims.data(), static_cast<std::size_t>(ndim_)));
}

std::int64_t Shape::row_size() const {
  std::int64_t n = 1;
  for (int i = 1; i < ndim_; ++i) n *= dims_[static_cast<std::size_t>(i)];
  return n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[static_cast<std::size_t>(i)]);
  }
  return s + ")";
}

}  // namespace latent
