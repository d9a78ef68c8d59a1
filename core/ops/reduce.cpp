#include "core/ops/reduce.h"

#include <cmath>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/reduce.h"

namespace latent {

namespace {

// A reduction along one dimension of a 2-D tensor, resolved once for forward and backward.
struct DimReduce {
  int dim = 0;  // 0 or 1
  std::int64_t rows = 0, cols = 0;
  std::int64_t count = 0;  // elements per result
  Shape out;
};

DimReduce resolve(const char* op, const Tensor& x, int dim, bool keepdim) {
  dispatch::check_defined(op, {&x});
  check(x.ndim() == 2, op, "reducing along a dimension needs a 2-D tensor, got ", x.shape().str(),
        " with dim ", dim, " (reduce all elements with ", op, "(x))");
  check(dim >= -2 && dim <= 1, op, "dim must be 0, 1, -1 or -2 for a 2-D tensor, got dim ", dim,
        " for ", x.shape().str());
  DimReduce r;
  r.dim = dim < 0 ? dim + 2 : dim;
  r.rows = x.dim(0);
  r.cols = x.dim(1);
  r.count = r.dim == 0 ? r.rows : r.cols;
  if (r.dim == 0)
    r.out = keepdim ? Shape{1, r.cols} : Shape{r.cols};
  else
    r.out = keepdim ? Shape{r.rows, 1} : Shape{r.rows};
  return r;
}

Tensor sum_all(const char* op, const Tensor& x, double scale) {
  Tensor y = Tensor::empty(Shape{}, x.options());
  const std::int64_t n = x.numel();
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch =
        dispatch::scratch_doubles(LATENT_SCRATCH(be, sum_all_scratch, n), x.device());
    dispatch::call(be, LATENT_KERNEL(sum_all_forward), y.data<T>(), x.data<T>(), scale, n,
                   dispatch::as_doubles(scratch));
  });
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(sum_all_backward), dx.data<T>(), !fresh, dy.data<T>(), scale,
                     n);
    });
  });
  return y;
}

Tensor sum_dim(const char* op, const Tensor& x, const DimReduce& r, double scale) {
  Tensor y = Tensor::empty(r.out, x.options());
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch = dispatch::scratch_doubles(
        LATENT_SCRATCH(be, sum_dim_scratch, r.dim, r.rows, r.cols), x.device());
    dispatch::call(be, LATENT_KERNEL(sum_dim_forward), y.data<T>(), x.data<T>(), scale, r.dim,
                   r.rows, r.cols, dispatch::as_doubles(scratch));
  });
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(sum_dim_backward), dx.data<T>(), !fresh, dy.data<T>(), scale,
                     r.dim, r.rows, r.cols);
    });
  });
  return y;
}

Tensor logsumexp_dim(const char* op, const Tensor& x, const DimReduce& r, double shift) {
  Tensor y = Tensor::empty(r.out, x.options());
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch = dispatch::scratch_doubles(
        LATENT_SCRATCH(be, logsumexp_dim_scratch, r.dim, r.rows, r.cols), x.device());
    dispatch::call(be, LATENT_KERNEL(logsumexp_dim_forward), y.data<T>(), x.data<T>(), shift, r.dim,
                   r.rows, r.cols, dispatch::as_doubles(scratch));
  });
  // The backward's softmax weights exp(x - lse) come from x and the output itself.
  autograd::SavedTensor sx = x, sy = y.detach();
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    const Tensor& xv = sx.get(op);
    const Tensor& yv = sy.get(op);
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(logsumexp_dim_backward), dx.data<T>(), !fresh, dy.data<T>(),
                     xv.data<T>(), yv.data<T>(), shift, r.dim, r.rows, r.cols);
    });
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) {
  dispatch::check_defined("sum", {&x});
  return sum_all("sum", x, 1.0);
}

Tensor mean(const Tensor& x) {
  dispatch::check_defined("mean", {&x});
  check(x.numel() > 0, "mean", "the mean of an empty tensor is undefined: ", x.shape().str());
  return sum_all("mean", x, 1.0 / static_cast<double>(x.numel()));
}

Tensor sum(const Tensor& x, int dim, bool keepdim) {
  const DimReduce r = resolve("sum", x, dim, keepdim);
  return sum_dim("sum", x, r, 1.0);
}

Tensor mean(const Tensor& x, int dim, bool keepdim) {
  const DimReduce r = resolve("mean", x, dim, keepdim);
  check(r.count > 0, "mean", "the mean over an empty dimension is undefined: dim ", dim, " of ",
        x.shape().str());
  return sum_dim("mean", x, r, 1.0 / static_cast<double>(r.count));
}

Tensor logsumexp(const Tensor& x, int dim, bool keepdim) {
  const DimReduce r = resolve("logsumexp", x, dim, keepdim);
  return logsumexp_dim("logsumexp", x, r, 0.0);
}

Tensor logmeanexp(const Tensor& x, int dim, bool keepdim) {
  const DimReduce r = resolve("logmeanexp", x, dim, keepdim);
  check(r.count > 0, "logmeanexp", "the mean over an empty dimension is undefined: dim ", dim,
        " of ", x.shape().str());
  return logsumexp_dim("logmeanexp", x, r, -std::log(static_cast<double>(r.count)));
}

}  // namespace latent
