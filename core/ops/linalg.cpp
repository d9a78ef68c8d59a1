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
    Tensor* da = need_a ? &g.grad(0) : nullptr;
    Tensor* db = need_b ? &g.grad(1) : nullptr;
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      // y = op(A) op(B):  d op(A) = dy op(B)^T,  d op(B) = op(A)^T dy; a transposed operand takes
      // the transpose of that, computed directly with swapped GEMM operands.
      constexpr auto kGemm = LATENT_GEMM_KERNEL(gemm);
      if (da) {
        if (!trans_a)
          dispatch::call(be, kGemm, false, !trans_b, m, k, n, T(1), dy.data<T>(), n, bv->data<T>(),
                         ldb, T(1), da->data<T>(), k);
        else
          dispatch::call(be, kGemm, trans_b, true, k, m, n, T(1), bv->data<T>(), ldb, dy.data<T>(),
                         n, T(1), da->data<T>(), m);
      }
      if (db) {
        if (!trans_b)
          dispatch::call(be, kGemm, !trans_a, false, k, n, m, T(1), av->data<T>(), lda,
                         dy.data<T>(), n, T(1), db->data<T>(), n);
        else
          dispatch::call(be, kGemm, true, trans_a, n, k, m, T(1), dy.data<T>(), n, av->data<T>(),
                         lda, T(1), db->data<T>(), k);
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
    Tensor* db = need_b ? &g.grad(2) : nullptr;
    // For identity dpre is dy itself; otherwise one fused pass makes it (and db on the way).
    const bool need_dpre = (need_x || need_w) && !identity;
    Tensor dpre = need_dpre ? Tensor::empty({n, h}, dy.options()) : dy;
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      if (need_dpre || db) {
        const Tensor scratch =
            db ? dispatch::scratch_doubles(LATENT_SCRATCH(be, dense_backward_scratch, n, h),
                                           dy.device())
               : Tensor();
        dispatch::call(be, LATENT_KERNEL(dense_backward_act_bias),
                       need_dpre ? dpre.data<T>() : nullptr, db ? db->data<T>() : nullptr,
                       dispatch::as_doubles(scratch), dy.data<T>(), yv ? yv->data<T>() : nullptr,
                       pv ? pv->data<T>() : nullptr, act, n, h);
      }
      constexpr auto kGemm = LATENT_GEMM_KERNEL(gemm);
      if (need_x)  // dx [N, D] += dpre [N, H] . w [H, D]
        dispatch::call(be, kGemm, false, false, n, d, h, T(1), dpre.data<T>(), h, wv->data<T>(), d,
                       T(1), g.grad(0).data<T>(), d);
      if (need_w)  // dw [H, D] += dpre^T [H, N] . x [N, D]
        dispatch::call(be, kGemm, true, false, h, d, n, T(1), dpre.data<T>(), h, xv->data<T>(), d,
                       T(1), g.grad(1).data<T>(), d);
    });
  });
  return y;
}

}  // namespace latent
