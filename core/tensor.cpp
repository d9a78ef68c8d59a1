#include "core/tensor.h"

#include <cstring>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/dispatch.h"
#include "core/random.h"
#include "kernels/axpy.h"
#include "kernels/fill.h"
#include "kernels/philox.h"

namespace latent {

// ---- Storage ---------------------------------------------------------------------------------

Storage::Storage(std::size_t n_bytes, Device dev)
    : data(backend::allocate(n_bytes, dev)), bytes(n_bytes), device(dev) {}

Storage::~Storage() {
  backend::deallocate(data, device);
}

// ---- basics ----------------------------------------------------------------------------------

void Tensor::check_defined(const char* what) const {
  check(impl_ != nullptr, what, "called on an undefined tensor");
}

const Shape& Tensor::shape() const {
  check_defined("tensor.shape");
  return impl_->shape;
}

DType Tensor::dtype() const {
  check_defined("tensor.dtype");
  return impl_->dtype;
}

Device Tensor::device() const {
  check_defined("tensor.device");
  return impl_->storage->device;
}

TensorOptions Tensor::options() const {
  return {.dtype = dtype(), .device = device()};
}

void* Tensor::raw_data() const {
  check_defined("tensor.data");
  return static_cast<char*>(impl_->storage->data) +
         impl_->offset * static_cast<std::int64_t>(dtype_size(impl_->dtype));
}

template <class T>
T* Tensor::data() const {
  constexpr DType want = std::is_same_v<T, float> ? DType::f32 : DType::f64;
  check_defined("tensor.data");
  check(impl_->dtype == want, "tensor.data", "element type mismatch: tensor is ",
        dtype_name(impl_->dtype), ", asked for ", dtype_name(want));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;

std::string Tensor::str() const {
  if (!impl_) return "undefined";
  return std::string(dtype_name(dtype())) + " " + device().str() + " " + shape().str();
}

autograd::Meta* Tensor::meta() const {
  return impl_ ? impl_->meta.get() : nullptr;
}

autograd::Meta& Tensor::ensure_meta() const {
  check_defined("autograd");
  if (!impl_->meta) {
    impl_->meta = std::make_shared<autograd::Meta>();
    impl_->meta->shape = impl_->shape;
    impl_->meta->dtype = impl_->dtype;
    impl_->meta->device = impl_->storage->device;
  }
  return *impl_->meta;
}

// ---- factories -------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, const TensorOptions& opt) {
  check(!(opt.dtype == DType::f64 && opt.device.is_cuda()), "tensor",
        "float64 tensors are CPU-only (asked for float64 on ", opt.device.str(), ")");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(
      static_cast<std::size_t>(shape.numel()) * dtype_size(opt.dtype), opt.device);
  // A recorded step's kernels write here again at every replay.
  if (dispatch::recording()) dispatch::detail_retain(impl->storage);
  impl->shape = shape;
  impl->dtype = opt.dtype;
  Tensor t(std::move(impl));
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor Tensor::full(const Shape& shape, double value, const TensorOptions& opt) {
  TensorOptions plain = opt;
  plain.requires_grad = false;
  Tensor t = empty(shape, plain);
  t.fill_(value);
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, const TensorOptions& opt) {
  return full(shape, 0.0, opt);
}
Tensor Tensor::ones(const Shape& shape, const TensorOptions& opt) {
  return full(shape, 1.0, opt);
}
Tensor Tensor::scalar(double value, const TensorOptions& opt) {
  return full(Shape{}, value, opt);
}

template <class Src>
static Tensor from_host(std::span<const Src> data, const Shape& shape, const TensorOptions& opt) {
  check(static_cast<std::int64_t>(data.size()) == shape.numel(), "from_data", "got ", data.size(),
        " values for shape ", shape.str(), " (", shape.numel(), " elements)");
  TensorOptions plain = opt;
  plain.requires_grad = false;
  Tensor t = Tensor::empty(shape, plain);
  constexpr DType src_dtype = std::is_same_v<Src, float> ? DType::f32 : DType::f64;
  if (opt.dtype == src_dtype) {
    backend::copy(t.raw_data(), t.device(), data.data(), Device::cpu(), data.size() * sizeof(Src));
  } else {
    // Convert on the host first; float64 exists only there, so the target is float32 or on CPU.
    Tensor host = Tensor::empty(shape, {.dtype = opt.dtype});
    if (opt.dtype == DType::f32)
      kernels::cpu::cast(host.data<float>(), reinterpret_cast<const double*>(data.data()),
                         shape.numel());
    else
      kernels::cpu::cast(host.data<double>(), reinterpret_cast<const float*>(data.data()),
                         shape.numel());
    t.copy_(host);
  }
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor Tensor::from_data(std::span<const float> data, const Shape& shape,
                         const TensorOptions& opt) {
  return from_host(data, shape, opt);
}
Tensor Tensor::from_data(std::span<const double> data, const Shape& shape,
                         const TensorOptions& opt) {
  return from_host(data, shape, opt);
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, const TensorOptions& opt, double lo,
                    double hi) {
  check(lo <= hi, "rand", "lo must not exceed hi, got lo=", lo, " hi=", hi);
  TensorOptions plain = opt;
  plain.requires_grad = false;
  Tensor t = empty(shape, plain);
  const std::int64_t n = shape.numel();
  const std::uint64_t off = gen.take(static_cast<std::uint64_t>(n));
  dispatch::run("rand", t, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(fill_uniform), t.data<T>(), gen.seed(), off, T(lo), T(hi), n);
  });
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, const TensorOptions& opt, double mean,
                     double stddev) {
  check(stddev >= 0, "randn", "stddev must be non-negative, got ", stddev);
  TensorOptions plain = opt;
  plain.requires_grad = false;
  Tensor t = empty(shape, plain);
  const std::int64_t n = shape.numel();
  const std::uint64_t off = gen.take(static_cast<std::uint64_t>(n));
  dispatch::run("randn", t, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(fill_normal), t.data<T>(), gen.seed(), off, T(mean), T(stddev),
                   n, std::int64_t{1});
  });
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor Tensor::randn_draws(std::int64_t draws, const Shape& each, Generator& gen,
                           const TensorOptions& opt) {
  check(draws >= 1, "randn_draws", "draws must be at least 1, got ", draws);
  check(each.ndim() >= 1, "randn_draws", "each draw needs at least one dimension, got ",
        each.str());
  std::vector<std::int64_t> dims(each.begin(), each.end());
  check(dims[0] <= std::numeric_limits<std::int64_t>::max() / draws, "randn_draws", draws,
        " draws of ", each.str(), " overflow the first dimension");
  dims[0] *= draws;
  TensorOptions plain = opt;
  plain.requires_grad = false;
  Tensor t = empty(Shape(std::span<const std::int64_t>(dims)), plain);
  const std::int64_t n = each.numel();
  // Each draw reserves its own blocks, as `draws` calls of randn would: one reservation of them
  // all.
  const std::uint64_t off = gen.take(static_cast<std::uint64_t>(draws) * 4 *
                                     kernels::philox::blocks_for(static_cast<std::uint64_t>(n)));
  dispatch::run("randn_draws", t, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(fill_normal), t.data<T>(), gen.seed(), off, T(0), T(1), n,
                   draws);
  });
  if (opt.requires_grad) t.requires_grad_(true);
  return t;
}

// ---- in-place --------------------------------------------------------------------------------

// In-place writes are invisible to autograd: refuse them on tensors that take part in it while
// the graph is being recorded, instead of silently computing wrong gradients.
static void check_inplace(const Tensor& t, const char* op) {
  check(!(grad_enabled() && t.requires_grad()), op,
        "in-place write to a tensor that requires grad; wrap it in a NoGradGuard (or detach())");
}

void Tensor::bump_version() const {
  check_defined("tensor");
  ++impl_->storage->version;
}

Tensor& Tensor::fill_(double value) {
  check_defined("fill_");
  check_inplace(*this, "fill_");
  const std::int64_t n = numel();
  dispatch::run("fill_", *this, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(fill), data<T>(), T(value), n);
  });
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_defined("copy_");
  check(src.defined(), "copy_", "source is an undefined tensor");
  check_inplace(*this, "copy_");
  check(src.shape() == shape(), "copy_", "shapes differ: ", shape().str(), " <- ",
        src.shape().str());
  if (src.impl_ == impl_) return *this;
  if (src.dtype() == dtype() && src.device() == device()) {
    dispatch::run("copy_", *this, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(copy), data<T>(), src.data<T>(), numel());
    });
  } else if (src.dtype() == dtype()) {
    dispatch::refuse_while_recording("copy_ between devices");
    backend::copy(raw_data(), device(), src.raw_data(), src.device(),
                  static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  } else {
    dispatch::refuse_while_recording("copy_ between dtypes");
    // float64 lives only on the CPU: convert there, then move.
    Tensor host_src = src.device().is_cpu() ? src : src.to(Device::cpu());
    Tensor converted = Tensor::empty(shape(), {.dtype = dtype()});
    if (dtype() == DType::f32)
      kernels::cpu::cast(converted.data<float>(), host_src.data<double>(), numel());
    else
      kernels::cpu::cast(converted.data<double>(), host_src.data<float>(), numel());
    backend::copy(raw_data(), device(), converted.raw_data(), Device::cpu(),
                  static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  }
  bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  dispatch::check_same("add_", {this, &other});
  check_inplace(*this, "add_");
  check(other.shape() == shape(), "add_", "shapes differ: ", shape().str(),
        " += ", other.shape().str());
  const std::int64_t n = numel();
  dispatch::run("add_", *this, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(axpy), data<T>(), other.data<T>(), T(alpha), n);
  });
  bump_version();
  return *this;
}

Tensor& Tensor::mul_(double alpha) {
  check_defined("mul_");
  check_inplace(*this, "mul_");
  const std::int64_t n = numel();
  dispatch::run("mul_", *this, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(scale), data<T>(), T(alpha), n);
  });
  bump_version();
  return *this;
}

// ---- conversion ------------------------------------------------------------------------------

double Tensor::item() const {
  check_defined("item");
  check(numel() == 1, "item", "needs a tensor with one element, got shape ", shape().str());
  dispatch::refuse_while_recording("item (a value read on the host)");
  if (dtype() == DType::f32) {
    float v = 0;
    backend::copy(&v, Device::cpu(), raw_data(), device(), sizeof(float));
    return v;
  }
  double v = 0;
  backend::copy(&v, Device::cpu(), raw_data(), device(), sizeof(double));
  return v;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  check_defined("to_vector");
  dispatch::refuse_while_recording("to_vector (values read on the host)");
  constexpr DType want = std::is_same_v<T, float> ? DType::f32 : DType::f64;
  Tensor src = *this;
  if (dtype() != want) src = detach().to(Device::cpu()).to(want);
  std::vector<T> out(static_cast<std::size_t>(numel()));
  backend::copy(out.data(), Device::cpu(), src.raw_data(), src.device(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;

Tensor Tensor::to(Device dev) const {
  check_defined("to");
  if (dev == device()) return *this;
  backend::check_device(dev);
  check(!(dtype() == DType::f64 && dev.is_cuda()), "to",
        "float64 tensors are CPU-only; convert with .to(DType::f32) before moving to ", dev.str());
  Tensor out = Tensor::empty(shape(), {.dtype = dtype(), .device = dev});
  out.copy_(*this);
  const Device from = device();
  autograd::record("to", out, {this}, [from](const Tensor& dout, autograd::GradSink& g) {
    g.accumulate(0, dout.to(from));
  });
  return out;
}

Tensor Tensor::to(DType dt) const {
  check_defined("to");
  if (dt == dtype()) return *this;
  check(device().is_cpu() || dt == DType::f32, "to",
        "float64 tensors are CPU-only; move to the CPU first (tensor is on ", device().str(), ")");
  Tensor out = Tensor::empty(shape(), {.dtype = dt, .device = device()});
  out.copy_(*this);
  const DType from = dtype();
  autograd::record("to", out, {this}, [from](const Tensor& dout, autograd::GradSink& g) {
    g.accumulate(0, dout.to(from));
  });
  return out;
}

Tensor Tensor::clone() const {
  check_defined("clone");
  Tensor out = Tensor::empty(shape(), options());
  out.copy_(*this);
  autograd::record("clone", out, {this},
                   [](const Tensor& dout, autograd::GradSink& g) { g.accumulate(0, dout); });
  return out;
}

// ---- views -----------------------------------------------------------------------------------

Tensor Tensor::reshape(std::initializer_list<std::int64_t> dims) const {
  check_defined("reshape");
  check(dims.size() <= static_cast<std::size_t>(Shape::kMaxDims), "reshape",
        "at most 4 dimensions, got ", dims.size());
  std::int64_t d[Shape::kMaxDims];
  int infer = -1, i = 0;
  std::int64_t known = 1;
  for (std::int64_t v : dims) {
    if (v == -1) {
      check(infer < 0, "reshape", "only one dimension may be -1");
      infer = i;
    } else {
      check(v >= 0, "reshape", "negative dimension ", v);
      known *= v;
    }
    d[i++] = v;
  }
  if (infer >= 0) {
    check(known > 0 && numel() % known == 0, "reshape", "cannot infer -1: ", shape().str(), " has ",
          numel(), " elements");
    d[infer] = numel() / known;
  }
  return reshape(Shape(std::span<const std::int64_t>(d, dims.size())));
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  check_defined("reshape");
  check(new_shape.numel() == numel(), "reshape", "cannot view ", shape().str(), " (", numel(),
        " elements) as ", new_shape.str());
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->meta = nullptr;
  impl->shape = new_shape;
  Tensor out(std::move(impl));
  const Shape in_shape = shape();
  autograd::record("reshape", out, {this}, [in_shape](const Tensor& dout, autograd::GradSink& g) {
    g.accumulate(0, dout.reshape(in_shape));
  });
  return out;
}

Tensor Tensor::rows(std::int64_t start, std::int64_t count) const {
  check_defined("rows");
  check(ndim() >= 1, "rows", "needs at least one dimension, got a scalar");
  const std::int64_t n = shape()[0];
  check(start >= 0 && count >= 0 && start + count <= n, "rows", "rows [", start, ", ",
        start + count, ") out of range for shape ", shape().str());
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->meta = nullptr;
  impl->shape = shape().with_rows(count);
  impl->offset += start * shape().row_size();
  Tensor out(std::move(impl));
  autograd::record("rows", out, {this}, [start, count](const Tensor& dout, autograd::GradSink& g) {
    Tensor& gx = g.grad(0);
    gx.rows(start, count).detach().add_(dout);
  });
  return out;
}

// ---- autograd --------------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  const autograd::Meta* m = meta();
  return m && m->requires_grad;
}

Tensor& Tensor::requires_grad_(bool value) {
  check_defined("requires_grad_");
  autograd::Meta* m = meta();
  check(!(m && m->grad_fn), "requires_grad_",
        "only leaves can be marked; this tensor was produced by '", grad_fn_name(),
        "' (use detach() to get a leaf)");
  if (!value && !m) return *this;
  ensure_meta().requires_grad = value;
  return *this;
}

bool Tensor::is_leaf() const {
  const autograd::Meta* m = meta();
  return !(m && m->grad_fn);
}

Tensor Tensor::grad() const {
  autograd::Meta* m = meta();
  if (!m) return Tensor();
  if (m->grad_zero) {  // marked zero without a write (zero_grad): make it so now
    m->grad.zero_();
    m->grad_zero = false;
  }
  return m->grad;
}

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined()) {
    check(g.shape() == shape() && g.device() == device() && g.dtype() == dtype(), "set_grad",
          "gradient ", g.str(), " does not match tensor ", str());
  }
  autograd::Meta& m = ensure_meta();
  m.grad = g;
  m.grad_zero = false;
}

void Tensor::zero_grad() const {
  // No kernel: the next backward overwrites the gradient, and grad() fills it if it is read first.
  autograd::Meta* m = meta();
  if (m && m->grad.defined()) m->grad_zero = true;
}

void Tensor::backward() const {
  autograd::run_backward(*this, Tensor());
}
void Tensor::backward(const Tensor& grad) const {
  check(grad.defined(), "backward", "the upstream gradient is an undefined tensor");
  autograd::run_backward(*this, grad);
}

Tensor Tensor::detach() const {
  check_defined("detach");
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->meta = nullptr;
  return Tensor(std::move(impl));
}

std::string Tensor::grad_fn_name() const {
  const autograd::Meta* m = meta();
  return (m && m->grad_fn) ? std::string(m->grad_fn->name) : std::string();
}

}  // namespace latent
