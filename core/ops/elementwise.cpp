#include "core/ops/elementwise.h"

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/reduce.h"
#include "kernels/axpy.h"
#include "kernels/elementwise.h"

namespace latent {

using kernels::Bcast;
using kernels::math::Binary;
using kernels::math::Unary;

namespace {

bool is_scalar_shape(const Shape& s) {
  return s.numel() == 1 && s.ndim() <= 1;
}

struct Broadcast {
  Shape out;
  Bcast ma = Bcast::full, mb = Bcast::full;
  std::int64_t rows = 0, cols = 0;
};

// How `small` maps onto `big`, or false when it does not under latent's rules.
bool mode_of(const Shape& small, const Shape& big, Bcast& m) {
  if (small == big) return m = Bcast::full, true;
  if (is_scalar_shape(small)) return m = Bcast::scalar, true;
  if (small.ndim() == 1 && big.ndim() >= 2 && small[0] == big.dim(-1)) return m = Bcast::row, true;
  if (small.ndim() == 2 && big.ndim() == 2 && small[1] == 1 && small[0] == big[0])
    return m = Bcast::col, true;
  return false;
}

Broadcast broadcast(const char* op, const Tensor& a, const Tensor& b) {
  Broadcast r;
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  // The result has the larger shape; ties (equal numel) prefer more dimensions. An empty batch
  // is smaller than its row ((0, D) with (D)): when the smaller shape does not map onto the
  // larger, the other way round is tried.
  const bool a_big =
      sa.numel() > sb.numel() || (sa.numel() == sb.numel() && sa.ndim() >= sb.ndim());
  const auto onto = [&](bool a_out) {
    r.out = a_out ? sa : sb;
    r.ma = r.mb = Bcast::full;
    return a_out ? mode_of(sb, sa, r.mb) : mode_of(sa, sb, r.ma);
  };
  const bool ok = onto(a_big) || onto(!a_big);
  check(ok, op, "shapes cannot be broadcast: ", sa.str(), " and ", sb.str(),
        " (supported: equal shapes, [N, D] with [D] or [N, 1], or a scalar)");
  r.cols = r.out.ndim() == 0 ? 1 : r.out.dim(-1);
  r.rows = r.cols == 0 ? 0 : r.out.numel() / r.cols;
  return r;
}

// The gradient of operand `which` (a: 0, b: 1), broadcast by `m` (row, col or scalar): the
// products p = dy * d(op)/d(operand) over the result, summed over the elements the operand was
// repeated to by the reductions, whose kernels spread a sum over the whole device (in double, in
// a fixed order). p is dy itself for add and sub, dy * b or dy * a for mul, dy / b and
// -(dy * a / b / b) for div. The saved operands and dy record nothing.
Tensor broadcast_grad(Binary kind, int which, Bcast m, const Tensor& dy, const Tensor& a,
                      const Tensor& b, const Broadcast& bc) {
  Tensor p = dy;
  if (kind == Binary::mul) p = mul(dy, which == 0 ? b : a);
  if (kind == Binary::div) p = which == 0 ? div(dy, b) : div(div(mul(dy, a), b), b);
  const Tensor grid = p.reshape(Shape{bc.rows, bc.cols});
  Tensor s = m == Bcast::scalar ? sum(grid) : sum(grid, m == Bcast::row ? 0 : 1);
  if (which == 1 && (kind == Binary::sub || kind == Binary::div)) s = neg(s);
  return s.reshape((which == 0 ? a : b).shape());
}

Tensor binary(const char* op, Binary kind, const Tensor& a, const Tensor& b) {
  dispatch::check_same(op, {&a, &b});
  const Broadcast bc = broadcast(op, a, b);
  Tensor y = Tensor::empty(bc.out, a.options());
  if (bc.out.numel() > 0) {
    dispatch::run(op, a, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(binary_forward), y.data<T>(), a.data<T>(), bc.ma,
                     b.data<T>(), bc.mb, kind, bc.rows, bc.cols);
    });
  }
  autograd::SavedTensor sa = a, sb = b;
  autograd::record(op, y, {&a, &b}, [=](const Tensor& dy, autograd::GradSink& g) {
    if (bc.out.numel() == 0) {
      // An empty batch: a broadcast input (a bias) still gets its gradient, zeros.
      for (int i = 0; i < 2; ++i)
        if (g.needs(i)) g.grad(i);
      return;
    }
    if (kind == Binary::add && bc.ma == kernels::Bcast::full && bc.mb == kernels::Bcast::full) {
      // Both gradients are dy itself: handed over, no kernel.
      g.adopt(0, dy);
      g.adopt(1, dy);
      return;
    }
    const Tensor& av = sa.get(op);
    const Tensor& bv = sb.get(op);
    // A broadcast operand's gradient is a sum over the elements it was repeated to: the products
    // dy * d(op)/d(operand) (dy itself for add and sub), summed by the reduction kernels, which
    // spread a sum over the whole device (a kernel of its own gave too few threads each a long
    // serial sum).
    for (int i = 0; i < 2; ++i) {
      const Bcast m = i == 0 ? bc.ma : bc.mb;
      if (m != Bcast::full && g.needs(i))
        g.accumulate(i, broadcast_grad(kind, i, m, dy, av, bv, bc));
    }
    const bool full_a = bc.ma == Bcast::full && g.needs(0);
    const bool full_b = bc.mb == Bcast::full && g.needs(1);
    if (!full_a && !full_b) return;
    bool fresh_a = false, fresh_b = false;
    Tensor* da = full_a ? &g.grad_out(0, &fresh_a) : nullptr;
    Tensor* db = full_b ? &g.grad_out(1, &fresh_b) : nullptr;
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(binary_backward), da ? da->data<T>() : nullptr, !fresh_a,
                     db ? db->data<T>() : nullptr, !fresh_b, dy.data<T>(), av.data<T>(), bc.ma,
                     bv.data<T>(), bc.mb, kind, bc.rows, bc.cols);
    });
  });
  return y;
}

Tensor unary(const char* op, Unary kind, const Tensor& x, double p0 = 0, double p1 = 0) {
  dispatch::check_defined(op, {&x});
  Tensor y = Tensor::empty(x.shape(), x.options());
  const std::int64_t n = x.numel();
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(unary_forward), y.data<T>(), x.data<T>(), kind, T(p0), T(p1),
                   n);
  });
  autograd::SavedTensor sx = x, sy = y.detach();
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    const Tensor& xv = sx.get(op);
    const Tensor& yv = sy.get(op);
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(unary_backward), dx.data<T>(), !fresh, dy.data<T>(),
                     xv.data<T>(), yv.data<T>(), kind, T(p0), T(p1), n);
    });
  });
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary("add", Binary::add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary("sub", Binary::sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary("mul", Binary::mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary("div", Binary::div, a, b);
}

Tensor add(const Tensor& a, double s) {
  return unary("add_scalar", Unary::add_scalar, a, s);
}
Tensor mul(const Tensor& a, double s) {
  return unary("mul_scalar", Unary::mul_scalar, a, s);
}
Tensor rsub(double s, const Tensor& a) {
  return unary("rsub_scalar", Unary::rsub_scalar, a, s);
}
Tensor rdiv(double s, const Tensor& a) {
  return unary("rdiv_scalar", Unary::rdiv_scalar, a, s);
}

Tensor neg(const Tensor& x) {
  return unary("neg", Unary::neg, x);
}
Tensor exp(const Tensor& x) {
  return unary("exp", Unary::exp, x);
}
Tensor log(const Tensor& x) {
  return unary("log", Unary::log, x);
}

Tensor cb_log_norm(const Tensor& logits) {
  return unary("cb_log_norm", Unary::cb_log_norm, logits);
}

Tensor cb_mean(const Tensor& logits) {
  return unary("cb_mean", Unary::cb_mean, logits);
}
Tensor sqrt(const Tensor& x) {
  return unary("sqrt", Unary::sqrt, x);
}
Tensor square(const Tensor& x) {
  return unary("square", Unary::square, x);
}
Tensor abs(const Tensor& x) {
  return unary("abs", Unary::abs, x);
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  check(lo <= hi, "clamp", "lo must not exceed hi, got lo=", lo, " hi=", hi);
  return unary("clamp", Unary::clamp, x, lo, hi);
}

namespace {

ScaledSum add_scaled_impl(const Tensor& a, const Tensor& b, const Tensor& w, kernels::Ramp ramp,
                          const Tensor* step) {
  const char* op = "add_scaled";
  dispatch::check_same(op, {&a, &b, &w});
  check(a.shape() == b.shape(), op, "a and b must have one shape, got ", a.shape().str(), " and ",
        b.shape().str());
  check(w.numel() == 1, op, "w must have one element, got ", w.shape().str());
  check(!w.requires_grad() || !grad_enabled(), op,
        "w gets no gradient: pass a tensor that does not require one (detach())");
  if (step) {
    dispatch::check_defined(op, {step});
    check(step->device() == a.device(), op, "the step count must be on ", a.device().str(),
          ", got ", step->device().str());
    check(step->numel() * dtype_size(step->dtype()) >= 8, op, "the step count needs 8 bytes, got ",
          step->shape().str(), " ", dtype_name(step->dtype()));
    check(ramp.steps >= 1 && ramp.ratio > 0 && ramp.ratio <= 1 && std::isfinite(ramp.scale), op,
          "a ramp needs steps >= 1, ratio in (0, 1] and a finite scale, got steps ", ramp.steps,
          ", ratio ", ramp.ratio, ", scale ", ramp.scale);
    ramp.step = reinterpret_cast<std::int64_t*>(step->raw_data());
  } else {
    ramp.step = nullptr;
  }
  ScaledSum out{Tensor::empty(a.shape(), a.options()), Tensor::empty(a.shape(), a.options()), w};
  const std::int64_t n = a.numel();
  dispatch::run(op, a, [&](auto t, auto be) {
    using T = decltype(t);
    dispatch::call(be, LATENT_KERNEL(add_scaled), out.sum.data<T>(), out.scaled.data<T>(),
                   a.data<T>(), b.data<T>(), w.data<T>(), ramp, n);
  });
  const Tensor wv = w.detach();
  // d(w b) = dout * w: a kernel, unless dout is the implicit 1 and b has one element.
  auto grad_b = [wv](const Tensor& dout, const Shape& shape) {
    if (autograd::is_unit_seed(dout) && dout.numel() == 1) return wv.reshape(shape);
    return mul(dout, wv);
  };
  autograd::record(op, out.sum, {&a, &b}, [=](const Tensor& dout, autograd::GradSink& g) {
    g.adopt(0, dout);
    if (g.needs(1)) g.adopt(1, grad_b(dout, dout.shape()));
  });
  autograd::record(op, out.scaled, {&b}, [=](const Tensor& dout, autograd::GradSink& g) {
    g.adopt(0, grad_b(dout, dout.shape()));
  });
  return out;
}

}  // namespace

ScaledSum add_scaled(const Tensor& a, const Tensor& b, const Tensor& w) {
  return add_scaled_impl(a, b, w, {}, nullptr);
}

ScaledSum add_scaled(const Tensor& a, const Tensor& b, kernels::Ramp ramp, const Tensor& step) {
  dispatch::check_defined("add_scaled", {&a});
  return add_scaled_impl(a, b, Tensor::empty({}, a.options()), ramp, &step);
}

}  // namespace latent
