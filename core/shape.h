// Shape: up to four non-negative dimensions, stored inline.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace latent {

class Shape {
 public:
  static constexpr int kMaxDims = 4;

  Shape() = default;  // a scalar: zero dimensions, one element
  // Throws latent::Error for more than four dimensions or a negative size.
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);

  int ndim() const { return ndim_; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  // Dimension i, counting from the back when negative (-1 is the last). Throws when out of range.
  std::int64_t dim(int i) const;
  std::int64_t numel() const;
  // The product of all dimensions but the first (a row's length for [N, ...]); 1 for a vector.
  std::int64_t row_size() const;
  // The same shape with `rows` as its first dimension (a batch of other rows); needs ndim() >= 1.
  Shape with_rows(std::int64_t rows) const;
  // "(128, 784)"; "()" for a scalar.
  std::string str() const;

  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + ndim_; }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.ndim_ != b.ndim_) return false;
    for (int i = 0; i < a.ndim_; ++i)
      if (a.dims_[static_cast<std::size_t>(i)] != b.dims_[static_cast<std::size_t>(i)])
        return false;
    return true;
  }

 private:
  std::array<std::int64_t, kMaxDims> dims_{};
  int ndim_ = 0;
};

}  // namespace latent
