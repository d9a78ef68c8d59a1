// latent::Tensor: a cheap value handle (shared implementation) to a dense, contiguous, row-major
// array of float32 or float64 on the CPU or a CUDA GPU (float64 is CPU-only), with the autograd
// state that makes it part of a define-by-run graph. Copies of a handle share data; views
// (reshape, rows) share storage; .clone() copies.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/shape.h"

namespace latent {

class Generator;
class Tensor;
namespace autograd {
struct Node;
struct Meta;
}  // namespace autograd

// Where and how a new tensor is created: Tensor::zeros({N, D}, {.device = dev}).
struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

// Raw memory of a tensor, on one device. `version` counts in-place writes, so that a tensor
// saved for backward and modified afterwards is detected instead of giving wrong gradients.
struct Storage {
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data = nullptr;
  std::size_t bytes = 0;
  Device device;
  std::uint64_t version = 0;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::f32;
  std::shared_ptr<autograd::Meta> meta;  // null until autograd needs it
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, const TensorOptions& opt = {});
  static Tensor zeros(const Shape& shape, const TensorOptions& opt = {});
  static Tensor ones(const Shape& shape, const TensorOptions& opt = {});
  static Tensor full(const Shape& shape, double value, const TensorOptions& opt = {});
  static Tensor scalar(double value, const TensorOptions& opt = {});
  // Copies host data; data.size() must equal shape.numel().
  static Tensor from_data(std::span<const float> data, const Shape& shape,
                          const TensorOptions& opt = {});
  static Tensor from_data(std::span<const double> data, const Shape& shape,
                          const TensorOptions& opt = {});
  // Uniform in (lo, hi) and normal(mean, stddev) from the generator's Philox stream; the
  // generator's offset advances past the numbers drawn.
  static Tensor rand(const Shape& shape, Generator& gen, const TensorOptions& opt = {},
                     double lo = 0.0, double hi = 1.0);
  static Tensor randn(const Shape& shape, Generator& gen, const TensorOptions& opt = {},
                      double mean = 0.0, double stddev = 1.0);
  // `draws` standard-normal tensors of shape `each` (at least one dimension) stacked along the
  // first dimension, [draws * each[0], each[1], ...], in one kernel launch: bit for bit what
  // concat_rows of `draws` successive randn(each, gen) calls gives, and the generator ends where
  // they would leave it. draws >= 1.
  static Tensor randn_draws(std::int64_t draws, const Shape& each, Generator& gen,
                            const TensorOptions& opt = {});

  // ---- properties --------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return shape().ndim(); }
  std::int64_t dim(int i) const { return shape().dim(i); }
  std::int64_t numel() const { return shape().numel(); }
  DType dtype() const;
  Device device() const;
  TensorOptions options() const;  // dtype and device (requires_grad false)
  // Raw pointer to the first element (device memory for CUDA tensors). T must match dtype().
  template <class T>
  T* data() const;
  void* raw_data() const;
  std::string str() const;  // "float32 cpu (128, 784)"

  // ---- conversion and copies ---------------------------------------------------------------
  // Same tensor when already there; otherwise a copy, differentiable (gradient flows back).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  // The value of a one-element tensor, as double. Waits for the device.
  double item() const;
  // A host copy of all elements, converted to T.
  template <class T>
  std::vector<T> to_vector() const;
  // A new tensor with its own storage and the same values; differentiable.
  Tensor clone() const;

  // ---- views -------------------------------------------------------------------------------
  // Same elements, new shape (one dimension may be -1). Shares storage; differentiable.
  Tensor reshape(std::initializer_list<std::int64_t> dims) const;
  Tensor reshape(const Shape& shape) const;
  // Rows [start, start + count) along the first dimension; shares storage; differentiable.
  Tensor rows(std::int64_t start, std::int64_t count) const;

  // ---- in-place (not recorded by autograd; they bump the storage version) -------------------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  // Copies src's values (same shape; any device or dtype) into this tensor.
  Tensor& copy_(const Tensor& src);
  // this += alpha * other (same shape, device and dtype).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  // this *= alpha.
  Tensor& mul_(double alpha);
  // Marks a write done by a kernel outside these methods (the optimizers do this).
  void bump_version() const;

  // ---- autograd ----------------------------------------------------------------------------
  bool requires_grad() const;
  // Marks a leaf as needing its gradient. Throws on a non-leaf.
  Tensor& requires_grad_(bool value = true);
  bool is_leaf() const;
  // The accumulated gradient of a leaf (undefined before the first backward reaching it).
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  // Sets the accumulated gradient to zero (keeps its memory). No kernel runs: the gradient is
  // marked zero, the next backward overwrites it and grad() fills it when read before that.
  void zero_grad() const;
  // Reverse-mode pass from this tensor. Without an argument the tensor must have one element
  // (its gradient is 1); otherwise `grad` has this tensor's shape, dtype and device.
  // Gradients accumulate into the leaves' grad(); the graph is freed afterwards.
  void backward() const;
  void backward(const Tensor& grad) const;
  // Same data, cut from the graph.
  Tensor detach() const;
  // The op that produced this tensor ("" for a leaf).
  std::string grad_fn_name() const;

  // ---- internals used by ops and autograd --------------------------------------------------
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  autograd::Meta* meta() const;         // null when the tensor has no autograd state
  autograd::Meta& ensure_meta() const;  // creates it when missing

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace latent
