#include "core/ops/loss.h"

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/elementwise.h"
#include "core/ops/reduction.h"
#include "kernels/loss.h"

namespace latent {

using kernels::VarShape;

namespace {

// Checks shared by the losses on [N, ...] inputs of one shape: defined, same device and dtype,
// a batch dimension.
void check_pair(const char* op, const Tensor& x, const char* xname, const Tensor& t,
                const char* tname) {
  dispatch::check_same(op, {&x, &t});
  check(x.ndim() >= 1, op, xname, " needs a batch dimension [N, ...], got ", x.shape().str());
  check(x.shape() == t.shape(), op, xname, " and ", tname, " shapes differ: ", x.shape().str(),
        " vs ", t.shape().str());
}

// The element-wise losses of two same-shape inputs (bce_with_logits, mse): one forward kernel
// writing the reduced value, one backward kernel writing both gradients.
template <class Fwd, class Bwd>
Tensor pair_loss(const char* op, const Tensor& x, const Tensor& t, Reduction reduction,
                 const dispatch::Kernel<Fwd>& fwd, const dispatch::Kernel<Bwd>& bwd) {
  const std::int64_t n = x.dim(0);
  const std::int64_t d = x.shape().row_size();
  const detail::ReduceSpec red = detail::reduce_spec(op, reduction, n, x.numel(), x.shape());
  Tensor out = Tensor::empty(red.out, x.options());
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch = red.per_sample ? Tensor()
                                          : dispatch::scratch_doubles(
                                                LATENT_SCRATCH(be, loss_scratch, n, d), x.device());
    dispatch::call(be, fwd, out.data<T>(), x.data<T>(), t.data<T>(), T(red.scale), red.per_sample,
                   n, d, dispatch::as_doubles(scratch));
  });
  autograd::SavedTensor sx = x, st = t;
  autograd::record(op, out, {&x, &t}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& xv = sx.get(op);
    const Tensor& tv = st.get(op);
    Tensor* dx = g.needs(0) ? &g.grad(0) : nullptr;
    Tensor* dt = g.needs(1) ? &g.grad(1) : nullptr;
    dispatch::run(op, dout, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, bwd, dx ? dx->data<T>() : nullptr, dt ? dt->data<T>() : nullptr,
                     dout.data<T>(), red.stride, T(red.scale), xv.data<T>(), tv.data<T>(), n, d);
    });
  });
  return out;
}

// A training loss whose kernel also writes the gradient of p (the model's output) in the forward
// pass, reduced as `red` says over n samples of d elements: launch(T-typed zero, backend, out, dp
// or null, scale, scratch) makes the call. The backward hands that gradient over when the loss is
// what backward() starts from (its gradient is exactly 1: no kernel), and scales it otherwise.
// The other inputs get no gradient.
template <class Launch>
Tensor loss_with_gradient(const char* op, const Tensor& p, const detail::ReduceSpec& red,
                          std::int64_t n, std::int64_t d, Launch&& launch) {
  Tensor out = Tensor::empty(red.out, p.options());
  const bool graph = autograd::needs_graph({&p});
  Tensor dp = graph ? Tensor::empty(p.shape(), p.options()) : Tensor();
  dispatch::run(op, p, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch =
        dispatch::scratch_doubles(LATENT_SCRATCH(be, loss_scratch, n, d), p.device());
    launch(z, be, out.data<T>(), graph ? dp.data<T>() : nullptr, T(red.scale),
           dispatch::as_doubles(scratch));
  });
  if (!graph) return out;
  autograd::record(op, out, {&p}, [=](const Tensor& dout, autograd::GradSink& g) {
    g.adopt(0, autograd::is_unit_seed(dout) ? dp : mul(dp, dout));
  });
  return out;
}

// The checks of a likelihood loss over data [N, D] that only the decoder's output differentiates.
detail::ReduceSpec data_loss_spec(const char* op, const Tensor& data, Reduction reduction) {
  check(reduction != Reduction::none, op, "needs a reduced output (sum, batch_mean or mean)");
  check(!data.requires_grad() || !grad_enabled(), op, "the data gets no gradient");
  return detail::reduce_spec(op, reduction, data.dim(0), data.numel(), data.shape());
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  const char* op = "bce_with_logits";
  check_pair(op, logits, "logits", target, "target");
  const bool reduced = reduction != Reduction::none;
  if (reduced && autograd::needs_graph({&logits}) && !autograd::needs_graph({&target})) {
    // A training loss: its gradient is known in the forward pass, which writes it on the way.
    const std::int64_t n = logits.dim(0);
    const std::int64_t d = logits.shape().row_size();
    const detail::ReduceSpec red =
        detail::reduce_spec(op, reduction, n, logits.numel(), logits.shape());
    return loss_with_gradient(
        op, logits, red, n, d, [&](auto z, auto be, auto* out, auto* dx, auto scale, double* sc) {
          using T = decltype(z);
          dispatch::call(be, LATENT_KERNEL(bce_with_logits_forward_grad), out, dx, logits.data<T>(),
                         target.data<T>(), scale, n, d, sc);
        });
  }
  return pair_loss(op, logits, target, reduction, LATENT_KERNEL(bce_with_logits_forward),
                   LATENT_KERNEL(bce_with_logits_backward));
}

Tensor gaussian_nll_packed(const Tensor& params, const Tensor& target, Reduction reduction) {
  const char* op = "gaussian_nll_packed";
  dispatch::check_same(op, {&params, &target});
  dispatch::check_ndim(op, "params", params, 2);
  dispatch::check_ndim(op, "target", target, 2);
  const std::int64_t n = target.dim(0), d = target.dim(1);
  check(params.dim(0) == n && params.dim(1) == 2 * d, op, "params must be [N, 2D] = (", n, ", ",
        2 * d, ") for target ", target.shape().str(), ", got ", params.shape().str());
  return loss_with_gradient(op, params, data_loss_spec(op, target, reduction), n, d,
                            [&](auto z, auto be, auto* out, auto* dp, auto scale, double* scratch) {
                              using T = decltype(z);
                              dispatch::call(be, LATENT_KERNEL(gaussian_packed_forward_grad), out,
                                             dp, params.data<T>(), target.data<T>(), scale, n, d,
                                             scratch);
                            });
}

Tensor categorical_nll(const Tensor& logits, const Tensor& x, std::int64_t levels,
                       Reduction reduction) {
  const char* op = "categorical_nll";
  dispatch::check_same(op, {&logits, &x});
  dispatch::check_ndim(op, "logits", logits, 2);
  dispatch::check_ndim(op, "x", x, 2);
  check(levels >= 2, op, "levels must be >= 2, got ", levels);
  const std::int64_t n = x.dim(0), d = x.dim(1);
  check(logits.dim(0) == n && logits.dim(1) == d * levels, op, "logits must be [N, D*K] = (", n,
        ", ", d * levels, ") for x ", x.shape().str(), " and ", levels, " levels, got ",
        logits.shape().str());
  return loss_with_gradient(op, logits, data_loss_spec(op, x, reduction), n, d,
                            [&](auto z, auto be, auto* out, auto* dp, auto scale, double* scratch) {
                              using T = decltype(z);
                              dispatch::call(be, LATENT_KERNEL(categorical_forward_grad), out, dp,
                                             logits.data<T>(), x.data<T>(), scale, n, d, levels,
                                             scratch);
                            });
}

Tensor mse(const Tensor& pred, const Tensor& target, Reduction reduction) {
  const char* op = "mse";
  check_pair(op, pred, "pred", target, "target");
  return pair_loss(op, pred, target, reduction, LATENT_KERNEL(mse_forward),
                   LATENT_KERNEL(mse_backward));
}

Tensor gaussian_nll(const Tensor& mean, const Tensor& logvar, const Tensor& target,
                    Reduction reduction) {
  const char* op = "gaussian_nll";
  check_pair(op, mean, "mean", target, "target");
  dispatch::check_same(op, {&mean, &logvar});
  const Shape& ms = mean.shape();
  const Shape& ls = logvar.shape();
  const Shape row_shape(std::span<const std::int64_t>(ms.begin() + 1, ms.end()));
  VarShape vs;
  if (ls == ms) {
    vs = VarShape::full;
  } else if (ls.numel() == 1 && ls.ndim() <= 1) {
    vs = VarShape::scalar;
  } else if (ls == row_shape) {
    vs = VarShape::row;
  } else {
    throw Error(op, "logvar must have mean's shape " + ms.str() + ", its row shape " +
                        row_shape.str() + " (shared by the samples) or be a scalar, got " +
                        ls.str());
  }

  const std::int64_t n = mean.dim(0);
  const std::int64_t d = ms.row_size();
  const detail::ReduceSpec red = detail::reduce_spec(op, reduction, n, mean.numel(), ms);
  if (!red.per_sample && autograd::needs_graph({&mean}) &&
      !autograd::needs_graph({&logvar, &target})) {
    // A training loss with a fixed variance: the mean's gradient is written in the forward pass.
    return loss_with_gradient(
        op, mean, red, n, d, [&](auto z, auto be, auto* out, auto* dm, auto scale, double* sc) {
          using T = decltype(z);
          dispatch::call(be, LATENT_KERNEL(gaussian_nll_forward_grad), out, dm, mean.data<T>(),
                         logvar.data<T>(), vs, target.data<T>(), scale, n, d, sc);
        });
  }
  Tensor out = Tensor::empty(red.out, mean.options());
  dispatch::run(op, mean, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch =
        red.per_sample
            ? Tensor()
            : dispatch::scratch_doubles(LATENT_SCRATCH(be, loss_scratch, n, d), mean.device());
    dispatch::call(be, LATENT_KERNEL(gaussian_nll_forward), out.data<T>(), mean.data<T>(),
                   logvar.data<T>(), vs, target.data<T>(), T(red.scale), red.per_sample, n, d,
                   dispatch::as_doubles(scratch));
  });
  autograd::SavedTensor sm = mean, sl = logvar, st = target;
  autograd::record(
      op, out, {&mean, &logvar, &target}, [=](const Tensor& dout, autograd::GradSink& g) {
        const Tensor& mv = sm.get(op);
        const Tensor& lv = sl.get(op);
        const Tensor& tv = st.get(op);
        Tensor* dm = g.needs(0) ? &g.grad(0) : nullptr;
        Tensor* dl = g.needs(1) ? &g.grad(1) : nullptr;
        Tensor* dt = g.needs(2) ? &g.grad(2) : nullptr;
        dispatch::run(op, dout, [&](auto z, auto be) {
          using T = decltype(z);
          // Only a shared log-variance's gradient needs the two-pass sums.
          const bool shared = dl && vs != VarShape::full;
          const Tensor scratch = shared ? dispatch::scratch_doubles(
                                              LATENT_SCRATCH(be, loss_scratch, n, d), mv.device())
                                        : Tensor();
          dispatch::call(be, LATENT_KERNEL(gaussian_nll_backward), dm ? dm->data<T>() : nullptr,
                         dl ? dl->data<T>() : nullptr, dt ? dt->data<T>() : nullptr, dout.data<T>(),
                         red.stride, T(red.scale), mv.data<T>(), lv.data<T>(), vs, tv.data<T>(), n,
                         d, dispatch::as_doubles(scratch));
        });
      });
  return out;
}

Tensor log_softmax(const Tensor& logits) {
  const char* op = "log_softmax";
  dispatch::check_defined(op, {&logits});
  dispatch::check_ndim(op, "logits", logits, 2);
  const std::int64_t m = logits.dim(0), k = logits.dim(1);
  Tensor y = Tensor::empty(logits.shape(), logits.options());
  dispatch::run(op, logits, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_KERNEL(log_softmax_forward), y.data<T>(), logits.data<T>(), m, k);
  });
  // The backward needs only the output: softmax = exp(y).
  autograd::SavedTensor sy = y.detach();
  autograd::record(op, y, {&logits}, [=](const Tensor& dy, autograd::GradSink& g) {
    const Tensor& yv = sy.get(op);
    Tensor& dx = g.grad(0);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(log_softmax_backward), dx.data<T>(), dy.data<T>(),
                     yv.data<T>(), m, k);
    });
  });
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  const char* op = "cross_entropy";
  dispatch::check_same(op, {&logits, &target});
  dispatch::check_ndim(op, "logits", logits, 2);
  const std::int64_t m = logits.dim(0), k = logits.dim(1);
  check(target.ndim() == 1 && target.dim(0) == m, op,
        "target must hold one class index per row of logits: logits ", logits.shape().str(),
        ", target ", target.shape().str());
  // The per-sample values are the rows, so `mean` divides by M as batch_mean does.
  const detail::ReduceSpec red = detail::reduce_spec(op, reduction, m, m, logits.shape());
  Tensor out = Tensor::empty(red.out, logits.options());
  Tensor lse = Tensor::empty({m}, logits.options());
  dispatch::run(op, logits, [&](auto z, auto be) {
    using T = decltype(z);
    if constexpr (!decltype(be)::is_cuda) {
      // Not on the GPU: it would copy the targets to the host and stall the stream. The CUDA
      // kernel turns a row with a bad target into NaN instead (see core/ops/loss.h).
      const T* tp = target.data<T>();
      const std::int64_t bad = kernels::cpu::cross_entropy_find_bad_target<T>(tp, m, k);
      if (bad >= 0)
        throw Error(op,
                    detail::cat("target[", bad, "] = ", tp[bad], " is not a class index in [0, ", k,
                                ") (logits ", logits.shape().str(), ")"));
    }
    const Tensor scratch =
        red.per_sample
            ? Tensor()
            : dispatch::scratch_doubles(LATENT_SCRATCH(be, loss_scratch, m, k), logits.device());
    dispatch::call(be, LATENT_KERNEL(cross_entropy_forward), out.data<T>(), lse.data<T>(),
                   logits.data<T>(), target.data<T>(), T(red.scale), red.per_sample, m, k,
                   dispatch::as_doubles(scratch));
  });
  // Only the logits get a gradient: the loss is piecewise constant in the class indices.
  autograd::SavedTensor sx = logits, sl = lse, st = target.detach();
  autograd::record(op, out, {&logits}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& xv = sx.get(op);
    const Tensor& lv = sl.get(op);
    const Tensor& tv = st.get(op);
    Tensor& dx = g.grad(0);
    dispatch::run(op, dout, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(cross_entropy_backward), dx.data<T>(), dout.data<T>(),
                     red.stride, T(red.scale), xv.data<T>(), lv.data<T>(), tv.data<T>(), m, k);
    });
  });
  return out;
}

}  // namespace latent
