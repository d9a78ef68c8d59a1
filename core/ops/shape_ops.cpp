#include "core/ops/shape_ops.h"

#include <array>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/shape.h"

namespace latent {

namespace {

// Every tensor of a list is defined and shares the first one's device and dtype.
void check_list(const char* op, const std::vector<Tensor>& xs) {
  check(!xs.empty(), op, "needs at least one tensor, got an empty list");
  for (std::size_t k = 0; k < xs.size(); ++k) {
    check(xs[k].defined(), op, "input ", k, " is undefined");
    dispatch::check_same(op, {&xs[0], &xs[k]});
  }
}

// `s` with its first dimension replaced by `first`.
Shape with_first_dim(const Shape& s, std::int64_t first) {
  std::array<std::int64_t, Shape::kMaxDims> d{};
  for (int i = 0; i < s.ndim(); ++i) d[static_cast<std::size_t>(i)] = s[i];
  d[0] = first;
  return Shape(std::span<const std::int64_t>(d.data(), static_cast<std::size_t>(s.ndim())));
}

}  // namespace

Tensor narrow_cols(const Tensor& x, std::int64_t start, std::int64_t length) {
  const char* op = "narrow_cols";
  dispatch::check_defined(op, {&x});
  dispatch::check_ndim(op, "x", x, 2);
  const std::int64_t n = x.dim(0), d = x.dim(1);
  check(start >= 0 && length >= 0 && start <= d && length <= d - start, op, "columns [", start,
        ", ", start + length, ") are out of range for ", x.shape().str());
  Tensor y = Tensor::empty({n, length}, x.options());
  // An empty result moves nothing (and its source pointer may point into no storage).
  const bool empty = y.numel() == 0;
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    if (!empty)
      dispatch::call(be, LATENT_KERNEL(copy_2d), y.data<T>(), length, x.data<T>() + start, d, n,
                     length);
  });
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    Tensor& dx = g.grad(0);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      if (!empty)
        dispatch::call(be, LATENT_KERNEL(accumulate_2d), dx.data<T>() + start, d, dy.data<T>(),
                       length, n, length);
    });
  });
  return y;
}

Tensor concat_cols(const std::vector<Tensor>& xs) {
  const char* op = "concat_cols";
  check_list(op, xs);
  const std::int64_t n = xs[0].ndim() == 2 ? xs[0].dim(0) : 0;
  std::vector<std::int64_t> widths;
  std::int64_t total = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    check(xs[k].ndim() == 2, op, "every input must be 2-D, input ", k, " is ", xs[k].shape().str());
    check(xs[k].dim(0) == n, op, "row counts differ: ", xs[0].shape().str(), " and ",
          xs[k].shape().str(), " (input ", k, ")");
    widths.push_back(xs[k].dim(1));
    total += xs[k].dim(1);
  }
  Tensor y = Tensor::empty({n, total}, xs[0].options());
  const bool empty = y.numel() == 0;
  dispatch::run(op, xs[0], [&](auto z, auto be) {
    using T = decltype(z);
    if (empty) return;
    std::int64_t off = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      dispatch::call(be, LATENT_KERNEL(copy_2d), y.data<T>() + off, total, xs[k].data<T>(),
                     widths[k], n, widths[k]);
      off += widths[k];
    }
  });
  autograd::record(op, y, xs, [=](const Tensor& dy, autograd::GradSink& g) {
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      if (empty) return;
      std::int64_t off = 0;
      for (std::size_t k = 0; k < widths.size(); ++k) {
        const int i = static_cast<int>(k);
        if (g.needs(i)) {  // the band is the whole gradient: copied when nothing wrote it yet
          bool fresh = false;
          T* dst = g.grad_out(i, &fresh).template data<T>();
          if (fresh)
            dispatch::call(be, LATENT_KERNEL(copy_2d), dst, widths[k], dy.data<T>() + off, total, n,
                           widths[k]);
          else
            dispatch::call(be, LATENT_KERNEL(accumulate_2d), dst, widths[k], dy.data<T>() + off,
                           total, n, widths[k]);
        }
        off += widths[k];
      }
    });
  });
  return y;
}

Tensor concat_rows(const std::vector<Tensor>& xs) {
  const char* op = "concat_rows";
  check_list(op, xs);
  const Shape& s0 = xs[0].shape();
  check(s0.ndim() >= 1, op, "inputs need at least one dimension, input 0 is ", s0.str());
  std::vector<std::int64_t> counts;  // rows of each input
  std::int64_t total = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    check(with_first_dim(s, 0) == with_first_dim(s0, 0) && s.ndim() == s0.ndim(), op,
          "shapes differ beyond the first dimension: ", s0.str(), " and ", s.str(), " (input ", k,
          ")");
    counts.push_back(s[0]);
    total += s[0];
  }
  const std::int64_t rs = s0.row_size();
  Tensor y = Tensor::empty(with_first_dim(s0, total), xs[0].options());
  dispatch::run(op, xs[0], [&](auto z, auto be) {
    using T = decltype(z);
    std::int64_t off = 0;
    for (std::size_t k = 0; k < xs.size(); ++k) {
      dispatch::call(be, LATENT_KERNEL(copy_2d), y.data<T>() + off * rs, rs, xs[k].data<T>(), rs,
                     counts[k], rs);
      off += counts[k];
    }
  });
  autograd::record(op, y, xs, [=](const Tensor& dy, autograd::GradSink& g) {
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      std::int64_t off = 0;
      for (std::size_t k = 0; k < counts.size(); ++k) {
        const int i = static_cast<int>(k);
        if (g.needs(i)) {  // the block is the whole gradient: copied when nothing wrote it yet
          bool fresh = false;
          T* dst = g.grad_out(i, &fresh).template data<T>();
          if (fresh)
            dispatch::call(be, LATENT_KERNEL(copy_2d), dst, rs, dy.data<T>() + off * rs, rs,
                           counts[k], rs);
          else
            dispatch::call(be, LATENT_KERNEL(accumulate_2d), dst, rs, dy.data<T>() + off * rs, rs,
                           counts[k], rs);
        }
        off += counts[k];
      }
    });
  });
  return y;
}

Tensor tile_rows(const Tensor& x, std::int64_t repeats) {
  const char* op = "tile_rows";
  dispatch::check_defined(op, {&x});
  check(x.ndim() >= 1, op, "needs at least one dimension, got ", x.shape().str());
  check(repeats >= 0, op, "repeats must be non-negative, got ", repeats, " for ", x.shape().str());
  const std::int64_t m = x.numel();
  Tensor y = Tensor::empty(with_first_dim(x.shape(), repeats * x.dim(0)), x.options());
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    // Source stride 0: the same block of m elements, written `repeats` times.
    dispatch::call(be, LATENT_KERNEL(copy_2d), y.data<T>(), m, x.data<T>(), std::int64_t{0},
                   repeats, m);
  });
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(tile_backward), dx.data<T>(), !fresh, dy.data<T>(), repeats,
                     m);
    });
  });
  return y;
}

Tensor transpose(const Tensor& x) {
  const char* op = "transpose";
  dispatch::check_defined(op, {&x});
  dispatch::check_ndim(op, "x", x, 2);
  const std::int64_t rows = x.dim(0), cols = x.dim(1);
  Tensor y = Tensor::empty({cols, rows}, x.options());
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(transpose_forward), y.data<T>(), x.data<T>(), rows, cols);
  });
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      // dy [cols, rows]: a gradient nothing wrote yet is dy's transpose, stored.
      if (fresh)
        dispatch::call(be, LATENT_KERNEL(transpose_forward), dx.data<T>(), dy.data<T>(), cols,
                       rows);
      else
        dispatch::call(be, LATENT_KERNEL(transpose_backward), dx.data<T>(), dy.data<T>(), rows,
                       cols);
    });
  });
  return y;
}

}  // namespace latent
