#include "core/ops/linalg.h"

#include <atomic>
#include <string>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/dense.h"
#include "kernels/gemm.h"

namespace latent {

namespace {

std::string operand(const Tensor& t, bool trans) {
  return t.shape().str() + (trans ? "^T" : "");
}

bool valid_act(kernels::Act a) {
  return kernels::act_info(a) != nullptr;
}

#if !LATENT_WITH_CUDA
std::atomic<bool> g_tf32{false};  // remembered only: a CPU-only build has no GEMM it applies to
#endif

}  // namespace

Tensor mlp(const Tensor& x, const std::vector<DenseLayer>& layers) {
  const char* op = "mlp";
  check(!layers.empty(), op, "needs at least one layer");
  dispatch::check_defined(op, {&x});
  dispatch::check_ndim(op, "x", x, 2);
  const std::int64_t n = x.dim(0);
  const std::size_t count = layers.size();
  std::vector<std::int64_t> ins(count), outs(count);
  std::vector<Tensor> inputs{x};
  for (std::size_t l = 0; l < count; ++l) {
    const DenseLayer& L = layers[l];
    dispatch::check_defined(op, {&L.w});
    dispatch::check_ndim(op, "w", L.w, 2);
    if (L.b.defined())
      dispatch::check_same(op, {&x, &L.w, &L.b});
    else
      dispatch::check_same(op, {&x, &L.w});
    ins[l] = l == 0 ? x.dim(1) : outs[l - 1];
    outs[l] = L.w.dim(0);
    check(L.w.dim(1) == ins[l], op, "layer ", l, ": weight ", L.w.shape().str(),
          " does not take inputs of width ", ins[l], " (w is [H, D])");
    if (L.b.defined())
      check(L.b.ndim() == 1 && L.b.dim(0) == outs[l], op, "layer ", l, ": bias must be [", outs[l],
            "], got ", L.b.shape().str());
    check(valid_act(L.act.act), op, "layer ", l, ": unknown activation code ",
          static_cast<int>(L.act.act));
    inputs.push_back(L.w);
    inputs.push_back(L.b);
  }
  const bool graph = autograd::needs_graph(inputs);
  // hs[l] is layer l's input (hs[0] = x), hs[count] the output; pres[l] the pre-activation where
  // the backward needs it (kernels::dense_needs_pre).
  std::vector<Tensor> hs(count + 1), pres(count);
  hs[0] = x;
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    for (std::size_t l = 0; l < count; ++l) {
      const DenseLayer& L = layers[l];
      hs[l + 1] = Tensor::empty({n, outs[l]}, x.options());
      if (graph && kernels::dense_needs_pre(L.act))
        pres[l] = Tensor::empty({n, outs[l]}, x.options());
      dispatch::call(be, LATENT_GEMM_KERNEL(dense_forward), hs[l + 1].data<T>(),
                     pres[l].defined() ? pres[l].data<T>() : nullptr, hs[l].data<T>(),
                     L.w.data<T>(), L.b.defined() ? L.b.data<T>() : nullptr, L.act, n, ins[l],
                     outs[l]);
    }
  });
  Tensor y = hs[count];
  if (!graph) return y;

  // Saved: the input and the parameters (checked against in-place writes), the output when the
  // last act' is read from it, and the internal activations as they are (no one else sees them).
  std::vector<autograd::SavedTensor> params;
  for (std::size_t l = 0; l < count; ++l) params.push_back(layers[l].w);
  std::vector<kernels::ActParams> acts;
  for (const DenseLayer& L : layers) acts.push_back(L.act);
  autograd::SavedTensor sx = x;
  autograd::SavedTensor sy = y.detach();
  std::vector<Tensor> inner(hs.begin() + 1, hs.end() - 1);
  for (Tensor& t : inner) t = t.detach();
  autograd::record(op, y, inputs, [=](const Tensor& dy, autograd::GradSink& g) {
    auto needs_w = [&](std::size_t l) { return g.needs(1 + 2 * static_cast<int>(l)); };
    auto needs_b = [&](std::size_t l) { return g.needs(2 + 2 * static_cast<int>(l)); };
    // The lowest layer whose weight, bias or input needs a gradient: below it nothing runs.
    std::size_t lowest = count;
    for (std::size_t l = 0; l < count && lowest == count; ++l)
      if ((l == 0 && g.needs(0)) || needs_w(l) || needs_b(l)) lowest = l;
    if (lowest == count) return;
    // The saved tensors first: one modified in place throws before any gradient is touched.
    const Tensor& xv = sx.get(op);
    const Tensor& yv = sy.get(op);
    std::vector<const Tensor*> wv;
    for (const autograd::SavedTensor& w : params) wv.push_back(&w.get(op));
    auto input_of = [&](std::size_t l) -> const Tensor& { return l == 0 ? xv : inner[l - 1]; };
    auto output_of = [&](std::size_t l) -> const Tensor& { return l + 1 == count ? yv : inner[l]; };
    // The bias gradient of layer l: its buffer and whether the first write adds.
    auto bias_grad = [&](std::size_t l, bool* add) -> Tensor* {
      if (!needs_b(l)) return nullptr;
      bool fresh = false;
      Tensor* db = &g.grad_out(2 + 2 * static_cast<int>(l), &fresh);
      *add = !fresh;
      return db;
    };
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      auto scratch_for = [&](std::int64_t rows, std::int64_t cols) {
        return dispatch::scratch_doubles(LATENT_SCRATCH(be, dense_backward_scratch, rows, cols),
                                         dy.device());
      };
      std::size_t l = count - 1;
      Tensor dz = dy;  // the gradient of layer l's pre-activation
      bool db_done = false;
      if (acts[l].act != kernels::Act::identity) {
        dz = Tensor::empty({n, outs[l]}, dy.options());
        bool add = false;
        Tensor* db = bias_grad(l, &add);
        const Tensor scratch = db ? scratch_for(n, outs[l]) : Tensor();
        const Tensor* pv = pres[l].defined() ? &pres[l] : nullptr;
        dispatch::call(be, LATENT_KERNEL(dense_backward_act_bias), dz.data<T>(),
                       db ? db->data<T>() : nullptr, add, dispatch::as_doubles(scratch),
                       dy.data<T>(), pv ? nullptr : output_of(l).data<T>(),
                       pv ? pv->data<T>() : nullptr, acts[l], n, outs[l]);
        db_done = true;
      }
      for (;; --l) {
        // Weight (and the bias, unless the GEMM below this layer's made it).
        bool add_b = false;
        Tensor* db = db_done ? nullptr : bias_grad(l, &add_b);
        if (needs_w(l)) {
          bool fresh = false;
          Tensor& dw = g.grad_out(1 + 2 * static_cast<int>(l), &fresh);
          const Tensor scratch = db ? scratch_for(n, outs[l]) : Tensor();
          dispatch::call(be, LATENT_GEMM_KERNEL(dense_backward_weight), dw.data<T>(), !fresh,
                         db ? db->data<T>() : nullptr, add_b, dispatch::as_doubles(scratch),
                         dz.data<T>(), input_of(l).data<T>(), n, ins[l], outs[l]);
        } else if (db) {
          const Tensor scratch = scratch_for(n, outs[l]);
          dispatch::call(be, LATENT_KERNEL(dense_backward_act_bias), static_cast<T*>(nullptr),
                         db->data<T>(), add_b, dispatch::as_doubles(scratch), dz.data<T>(),
                         static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                         kernels::ActParams{}, n, outs[l]);
        }
        const T* w = wv[l]->template data<T>();
        if (l == lowest) {
          if (l == 0 && g.needs(0)) {  // dx (+)= dz w
            bool fresh = false;
            Tensor& dx = g.grad_out(0, &fresh);
            dispatch::call(be, LATENT_GEMM_KERNEL(dense_backward_input), dx.data<T>(), !fresh,
                           static_cast<T*>(nullptr), false, static_cast<double*>(nullptr),
                           dz.data<T>(), w, static_cast<const T*>(nullptr),
                           static_cast<const T*>(nullptr), kernels::ActParams{}, n, ins[0],
                           outs[0]);
          }
          break;
        }
        // The gradient of layer l-1's pre-activation: dz w, times act_{l-1}', with its bias
        // gradient on the way.
        const std::size_t p = l - 1;
        Tensor dprev = Tensor::empty({n, outs[p]}, dy.options());
        bool add_prev = false;
        Tensor* dbp = bias_grad(p, &add_prev);
        const Tensor scratch = dbp ? scratch_for(n, outs[p]) : Tensor();
        const Tensor* pv = pres[p].defined() ? &pres[p] : nullptr;
        dispatch::call(be, LATENT_GEMM_KERNEL(dense_backward_input), dprev.data<T>(), false,
                       dbp ? dbp->data<T>() : nullptr, add_prev, dispatch::as_doubles(scratch),
                       dz.data<T>(), w, pv ? nullptr : output_of(p).data<T>(),
                       pv ? pv->data<T>() : nullptr, acts[p], n, ins[l], outs[l]);
        db_done = true;
        dz = dprev;
      }
    });
  });
  return y;
}

void set_tf32(bool enabled) {
#if LATENT_WITH_CUDA
  kernels::cuda::set_tf32(enabled);
#else
  g_tf32.store(enabled, std::memory_order_relaxed);
#endif
}

bool tf32_enabled() {
#if LATENT_WITH_CUDA
  return kernels::cuda::tf32_enabled();
#else
  return g_tf32.load(std::memory_order_relaxed);
#endif
}

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  dispatch::check_same(op, {&a, &b});
  dispatch::check_ndim(op, "a", a, 2);
  dispatch::check_ndim(op, "b", b, 2);
  const std::int64_t m = trans_a ? a.dim(1) : a.dim(0);
  const std::int64_t k = trans_a ? a.dim(0) : a.dim(1);
  const std::int64_t kb = trans_b ? b.dim(1) : b.dim(0);
  const std::int64_t n = trans_b ? b.dim(0) : b.dim(1);
  check(k == kb, op, "inner dimensions differ: ", operand(a, trans_a), " x ", operand(b, trans_b));
  // Row strides of the stored (untransposed) matrices.
  const std::int64_t lda = a.dim(1);
  const std::int64_t ldb = b.dim(1);

  Tensor y = Tensor::empty({m, n}, a.options());
  dispatch::run(op, a, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_GEMM_KERNEL(gemm), trans_a, trans_b, m, n, k, T(1), a.data<T>(), lda,
                   b.data<T>(), ldb, T(0), y.data<T>(), n);
  });

  // Each gradient needs only the other operand: save just what will be used.
  const bool keep_a = grad_enabled() && b.requires_grad();
  const bool keep_b = grad_enabled() && a.requires_grad();
  autograd::SavedTensor sa = keep_a ? a : Tensor(), sb = keep_b ? b : Tensor();
  autograd::record(op, y, {&a, &b}, [=](const Tensor& dy, autograd::GradSink& g) {
    const bool need_a = g.needs(0), need_b = g.needs(1);
    const Tensor* av = need_b ? &sa.get(op) : nullptr;
    const Tensor* bv = need_a ? &sb.get(op) : nullptr;
    // A gradient nothing wrote yet in this pass is stored (GEMM beta 0), else added to.
    bool fresh_a = false, fresh_b = false;
    Tensor* da = need_a ? &g.grad_out(0, &fresh_a) : nullptr;
    Tensor* db = need_b ? &g.grad_out(1, &fresh_b) : nullptr;
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      // y = op(A) op(B):  d op(A) = dy op(B)^T,  d op(B) = op(A)^T dy; a transposed operand takes
      // the transpose of that, computed directly with swapped GEMM operands.
      constexpr auto kGemm = LATENT_GEMM_KERNEL(gemm);
      const T beta_a = fresh_a ? T(0) : T(1), beta_b = fresh_b ? T(0) : T(1);
      if (da) {
        if (!trans_a)
          dispatch::call(be, kGemm, false, !trans_b, m, k, n, T(1), dy.data<T>(), n, bv->data<T>(),
                         ldb, beta_a, da->data<T>(), k);
        else
          dispatch::call(be, kGemm, trans_b, true, k, m, n, T(1), bv->data<T>(), ldb, dy.data<T>(),
                         n, beta_a, da->data<T>(), m);
      }
      if (db) {
        if (!trans_b)
          dispatch::call(be, kGemm, !trans_a, false, k, n, m, T(1), av->data<T>(), lda,
                         dy.data<T>(), n, beta_b, db->data<T>(), n);
        else
          dispatch::call(be, kGemm, true, trans_a, n, k, m, T(1), dy.data<T>(), n, av->data<T>(),
                         lda, beta_b, db->data<T>(), k);
      }
    });
  });
  return y;
}

Tensor dense(const Tensor& x, const Tensor& w, const Tensor& b, kernels::ActParams act) {
  const char* op = "dense";
  if (b.defined())
    dispatch::check_same(op, {&x, &w, &b});
  else
    dispatch::check_same(op, {&x, &w});
  dispatch::check_ndim(op, "x", x, 2);
  dispatch::check_ndim(op, "w", w, 2);
  const std::int64_t n = x.dim(0), d = x.dim(1), h = w.dim(0);
  check(w.dim(1) == d, op, "input sizes differ: x ", x.shape().str(), " vs w ", w.shape().str(),
        " (x is [N, D], w is [H, D])");
  if (b.defined())
    check(b.ndim() == 1 && b.dim(0) == h, op, "bias must be [H] = (", h, ") for w ",
          w.shape().str(), ", got ", b.shape().str());
  check(valid_act(act.act), op, "unknown activation code ", static_cast<int>(act.act));

  const bool identity = act.act == kernels::Act::identity;
  const bool keep_pre = kernels::dense_needs_pre(act) && autograd::needs_graph({&x, &w, &b});
  Tensor y = Tensor::empty({n, h}, x.options());
  Tensor pre = keep_pre ? Tensor::empty({n, h}, x.options()) : Tensor();
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, LATENT_GEMM_KERNEL(dense_forward), y.data<T>(),
                   keep_pre ? pre.data<T>() : nullptr, x.data<T>(), w.data<T>(),
                   b.defined() ? b.data<T>() : nullptr, act, n, d, h);
  });

  // dx needs w, dw needs x; act' needs the output (or pre, see kernels/dense.h); identity
  // needs neither.
  const bool on = grad_enabled();
  autograd::SavedTensor sx = on && w.requires_grad() ? x : Tensor();
  autograd::SavedTensor sw = on && x.requires_grad() ? w : Tensor();
  autograd::SavedTensor sy = on && !identity && !keep_pre ? y.detach() : Tensor();
  autograd::SavedTensor spre = pre;
  autograd::record(op, y, {&x, &w, &b}, [=](const Tensor& dy, autograd::GradSink& g) {
    const bool need_x = g.needs(0), need_w = g.needs(1), need_b = g.needs(2);
    const Tensor* yv = sy.defined() ? &sy.get(op) : nullptr;
    const Tensor* pv = spre.defined() ? &spre.get(op) : nullptr;
    const Tensor* xv = need_w ? &sx.get(op) : nullptr;
    const Tensor* wv = need_x ? &sw.get(op) : nullptr;
    bool add_b = false;
    Tensor* db = need_b ? &g.grad_out(2, &add_b) : nullptr;
    add_b = !add_b;
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      // For identity dpre is dy itself; otherwise one fused pass makes it, and db on the way. That
      // pass also makes db alone when no weight GEMM could reduce it.
      const bool need_dpre = !identity && (need_x || need_w);
      const bool pass = need_dpre || (db && !need_w);
      Tensor dpre = need_dpre ? Tensor::empty({n, h}, dy.options()) : dy;
      const Tensor scratch = db ? dispatch::scratch_doubles(
                                      LATENT_SCRATCH(be, dense_backward_scratch, n, h), dy.device())
                                : Tensor();
      if (pass)
        dispatch::call(be, LATENT_KERNEL(dense_backward_act_bias),
                       need_dpre ? dpre.data<T>() : nullptr, db ? db->data<T>() : nullptr, add_b,
                       dispatch::as_doubles(scratch), dy.data<T>(), yv ? yv->data<T>() : nullptr,
                       pv ? pv->data<T>() : nullptr, act, n, h);
      if (need_w) {  // dw [H, D] (+)= dpre^T x, with db (+)= the column sums of dpre if not made
        bool fresh_w = false;
        T* dw = g.grad_out(1, &fresh_w).data<T>();
        dispatch::call(be, LATENT_GEMM_KERNEL(dense_backward_weight), dw, !fresh_w,
                       db && !pass ? db->data<T>() : nullptr, add_b, dispatch::as_doubles(scratch),
                       dpre.data<T>(), xv->data<T>(), n, d, h);
      }
      if (need_x) {  // dx [N, D] (+)= dpre w
        bool fresh_x = false;
        T* dx = g.grad_out(0, &fresh_x).data<T>();
        dispatch::call(be, LATENT_GEMM_KERNEL(dense_backward_input), dx, !fresh_x,
                       static_cast<T*>(nullptr), false, static_cast<double*>(nullptr),
                       dpre.data<T>(), wv->data<T>(), static_cast<const T*>(nullptr),
                       static_cast<const T*>(nullptr), kernels::ActParams{}, n, d, h);
      }
    });
  });
  return y;
}

}  // namespace latent
