#include "core/ops/contractive.h"

#include <string>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/activation.h"
#include "core/ops/elementwise.h"
#include "core/ops/linalg.h"
#include "core/ops/reduce.h"
#include "core/ops/reduction.h"
#include "kernels/contractive.h"

namespace latent {
namespace {

// Every weight and pre-activation of the chain: defined, 2-D, on one device and dtype, with
// matching shapes; errors name the layer index.
void check_chain(const char* op, const std::vector<Tensor>& weights,
                 const std::vector<Tensor>& preacts, std::size_t acts) {
  const std::size_t layers = weights.size();
  check(layers >= 1, op, "needs at least one layer, got none");
  check(preacts.size() == layers && acts == layers, op,
        "weights, preacts and acts need one entry per layer, got ", layers, ", ", preacts.size(),
        " and ", acts);
  for (std::size_t l = 0; l < layers; ++l) {
    const Tensor& w = weights[l];
    const Tensor& p = preacts[l];
    check(w.defined() && p.defined(), op, "layer ", l, ": weights[", l, "] or preacts[", l,
          "] is an undefined tensor");
    for (const Tensor* t : {&w, &p}) {
      check(t->device() == weights[0].device(), op, "layer ", l,
            ": devices differ: ", weights[0].device().str(), " vs ", t->device().str());
      check(t->dtype() == weights[0].dtype(), op, "layer ", l,
            ": dtypes differ: ", dtype_name(weights[0].dtype()), " vs ", dtype_name(t->dtype()));
    }
    check(w.ndim() == 2, op, "weights[", l, "] must be 2-D [H_out, H_in], got ", w.shape().str());
    check(p.ndim() == 2 && p.dim(0) == preacts[0].dim(0) && p.dim(1) == w.dim(0), op, "preacts[", l,
          "] must be [N, ", w.dim(0), "] (N = ", preacts[0].dim(0), ") to match weights[", l, "] ",
          w.shape().str(), ", got ", p.shape().str());
    if (l > 0)
      check(w.dim(1) == weights[l - 1].dim(0), op, "weights[", l, "] ", w.shape().str(),
            " does not follow weights[", l - 1, "] ", weights[l - 1].shape().str(), ": its ",
            w.dim(1), " columns must equal the ", weights[l - 1].dim(0), " rows of weights[", l - 1,
            "]");
  }
}

}  // namespace

Tensor contractive_penalty(const Tensor& pre, const Tensor& w, kernels::ActParams act,
                           Reduction reduction) {
  const char* op = "contractive_penalty";
  dispatch::check_same(op, {&pre, &w});
  dispatch::check_ndim(op, "pre", pre, 2);
  dispatch::check_ndim(op, "w", w, 2);
  check(pre.dim(1) == w.dim(0), op, "pre [N, H] and w [H, D] disagree on H: ", pre.shape().str(),
        " and ", w.shape().str());
  const std::int64_t n = pre.dim(0), h = w.dim(0), d = w.dim(1);
  const detail::ReduceSpec rs =
      detail::reduce_spec("contractive_penalty", reduction, n, n * h * d, pre.shape());
  Tensor out = Tensor::empty(rs.out, pre.options());
  dispatch::run(op, pre, [&](auto t, auto be) {
    using T = decltype(t);
    const Tensor scratch =
        dispatch::scratch_doubles(LATENT_SCRATCH(be, contractive_scratch, n, h), pre.device());
    dispatch::call(be, LATENT_KERNEL(contractive_forward), out.data<T>(), pre.data<T>(),
                   w.data<T>(), act.act, T(act.alpha), T(rs.scale), rs.per_sample, n, h, d,
                   dispatch::as_doubles(scratch));
  });
  autograd::SavedTensor sp = pre, sw = w;
  autograd::record(op, out, {&pre, &w}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& pv = sp.get(op);
    const Tensor& wv = sw.get(op);
    bool fresh_pre = false, fresh_w = false;
    Tensor* dpre = g.needs(0) ? &g.grad_out(0, &fresh_pre) : nullptr;
    Tensor* dw = g.needs(1) ? &g.grad_out(1, &fresh_w) : nullptr;
    dispatch::run(op, dout, [&](auto t, auto be) {
      using T = decltype(t);
      const Tensor scratch =
          dispatch::scratch_doubles(LATENT_SCRATCH(be, contractive_scratch, n, h), pv.device());
      dispatch::call(be, LATENT_KERNEL(contractive_backward), dpre ? dpre->data<T>() : nullptr,
                     !fresh_pre, dw ? dw->data<T>() : nullptr, !fresh_w, dout.data<T>(),
                     rs.per_sample ? 1 : 0, T(rs.scale), pv.data<T>(), wv.data<T>(), act.act,
                     T(act.alpha), n, h, d, dispatch::as_doubles(scratch));
    });
  });
  return out;
}

Tensor jacobian_seed(const Tensor& d, const Tensor& w) {
  const char* op = "jacobian_seed";
  dispatch::check_same(op, {&d, &w});
  dispatch::check_ndim(op, "d", d, 2);
  dispatch::check_ndim(op, "w", w, 2);
  check(d.dim(1) == w.dim(0), op, "d [N, Z] and w [Z, H] disagree on Z: ", d.shape().str(), " and ",
        w.shape().str());
  const std::int64_t n = d.dim(0), z = w.dim(0), h = w.dim(1);
  Tensor out = Tensor::empty({n * z, h}, d.options());
  dispatch::run(op, d, [&](auto t, auto be) {
    using T = decltype(t);
    dispatch::call(be, LATENT_KERNEL(jacobian_seed_forward), out.data<T>(), d.data<T>(),
                   w.data<T>(), n, z, h);
  });
  autograd::SavedTensor sd = d, sw = w;
  autograd::record(op, out, {&d, &w}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& dv = sd.get(op);
    const Tensor& wv = sw.get(op);
    bool fresh_d = false, fresh_w = false;
    Tensor* dd = g.needs(0) ? &g.grad_out(0, &fresh_d) : nullptr;
    Tensor* dw = g.needs(1) ? &g.grad_out(1, &fresh_w) : nullptr;
    dispatch::run(op, dout, [&](auto t, auto be) {
      using T = decltype(t);
      const Tensor scratch =
          dw ? dispatch::scratch_doubles(LATENT_SCRATCH(be, jacobian_seed_scratch, n, z, h),
                                         dv.device())
             : Tensor();
      dispatch::call(be, LATENT_KERNEL(jacobian_seed_backward), dd ? dd->data<T>() : nullptr,
                     !fresh_d, dw ? dw->data<T>() : nullptr, !fresh_w, dout.data<T>(), dv.data<T>(),
                     wv.data<T>(), n, z, h, dispatch::as_doubles(scratch));
    });
  });
  return out;
}

Tensor scale_row_groups(const Tensor& m, const Tensor& d) {
  const char* op = "scale_row_groups";
  dispatch::check_same(op, {&m, &d});
  dispatch::check_ndim(op, "m", m, 2);
  dispatch::check_ndim(op, "d", d, 2);
  const std::int64_t n = d.dim(0), h = d.dim(1);
  const bool ok = m.dim(1) == h && (n == 0 ? m.dim(0) == 0 : m.dim(0) % n == 0);
  check(ok, op, "m must be [N*G, H] for d [N, H]: m ", m.shape().str(), ", d ", d.shape().str());
  const std::int64_t groups = n == 0 ? 0 : m.dim(0) / n;
  Tensor out = Tensor::empty(m.shape(), m.options());
  dispatch::run(op, m, [&](auto t, auto be) {
    using T = decltype(t);
    dispatch::call(be, LATENT_KERNEL(scale_rows_forward), out.data<T>(), m.data<T>(), d.data<T>(),
                   n, groups, h);
  });
  autograd::SavedTensor sm = m, sd = d;
  autograd::record(op, out, {&m, &d}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& mv = sm.get(op);
    const Tensor& dv = sd.get(op);
    bool fresh_m = false, fresh_d = false;
    Tensor* dm = g.needs(0) ? &g.grad_out(0, &fresh_m) : nullptr;
    Tensor* dd = g.needs(1) ? &g.grad_out(1, &fresh_d) : nullptr;
    dispatch::run(op, dout, [&](auto t, auto be) {
      using T = decltype(t);
      dispatch::call(be, LATENT_KERNEL(scale_rows_backward), dm ? dm->data<T>() : nullptr, !fresh_m,
                     dd ? dd->data<T>() : nullptr, !fresh_d, dout.data<T>(), mv.data<T>(),
                     dv.data<T>(), n, groups, h);
    });
  });
  return out;
}

Tensor jacobian_penalty(const std::vector<Tensor>& weights, const std::vector<Tensor>& preacts,
                        const std::vector<kernels::ActParams>& acts, Reduction reduction) {
  const char* op = "jacobian_penalty";
  check_chain(op, weights, preacts, acts.size());
  const std::size_t layers = weights.size();
  const std::int64_t n = preacts[0].dim(0);
  const std::int64_t zdim = weights[layers - 1].dim(0);
  const std::int64_t d = weights[0].dim(1);
  // Rows (n, z) of M hold d f_z / d h_l for sample n: start at the output layer and multiply by
  // D_l W_l going down, so the GEMMs have N*Z rows whatever the layer widths.
  Tensor m =
      jacobian_seed(activation_grad(preacts[layers - 1], acts[layers - 1]), weights[layers - 1]);
  for (std::size_t l = layers - 1; l-- > 0;)
    m = matmul(scale_row_groups(m, activation_grad(preacts[l], acts[l])), weights[l]);
  // Mean squared Jacobian entry for Reduction::mean: N*Z*D entries.
  Tensor per_sample = sum(square(m).reshape({n, zdim * d}), 1);
  return detail::reduce_per_sample(op, per_sample, reduction, n * zdim * d);
}

}  // namespace latent
