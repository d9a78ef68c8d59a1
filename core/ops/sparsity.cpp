#include "core/ops/sparsity.h"

#include <cmath>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/reduction.h"
#include "kernels/sparsity.h"

namespace latent {
namespace {}  // namespace

Tensor l1_penalty(const Tensor& h, Reduction reduction) {
  const char* op = "l1_penalty";
  dispatch::check_defined(op, {&h});
  check(h.ndim() >= 1, op, "h needs a batch dimension [N, ...], got ", h.shape().str());
  const std::int64_t n = h.dim(0);
  const std::int64_t d = h.shape().row_size();

  const detail::ReduceSpec red = detail::reduce_spec(op, reduction, n, h.numel(), h.shape());
  const bool per_sample = red.per_sample;
  const double scale = red.scale;
  const std::int64_t stride = red.stride;

  Tensor out = Tensor::empty(red.out, h.options());
  dispatch::run(op, h, [&](auto z, auto be) {
    using T = decltype(z);
    const Tensor scratch = per_sample ? Tensor()
                                      : dispatch::scratch_doubles(
                                            LATENT_SCRATCH(be, sparsity_scratch, n, d), h.device());
    dispatch::call(be, LATENT_KERNEL(l1_penalty_forward), out.data<T>(), h.data<T>(), T(scale),
                   per_sample, n, d, dispatch::as_doubles(scratch));
  });
  autograd::SavedTensor sh = h;
  autograd::record(op, out, {&h}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& hv = sh.get(op);
    Tensor& dh = g.grad(0);
    dispatch::run(op, dout, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(l1_penalty_backward), dh.data<T>(), dout.data<T>(), stride,
                     T(scale), hv.data<T>(), n, d);
    });
  });
  return out;
}

Tensor kl_sparsity(const Tensor& h, double rho) {
  const char* op = "kl_sparsity";
  dispatch::check_defined(op, {&h});
  dispatch::check_ndim(op, "h", h, 2);
  check(std::isfinite(rho) && rho > 0.0 && rho < 1.0, op, "rho must lie in (0, 1), got ", rho);
  const std::int64_t n = h.dim(0), hdim = h.dim(1);
  check(n > 0, op, "the mean activation of an empty batch is undefined: ", h.shape().str());

  Tensor out = Tensor::empty({}, h.options());
  Tensor rho_hat = Tensor::empty({hdim}, h.options());
  dispatch::run(op, h, [&](auto z, auto be) {
    using T = decltype(z);
    check(T(rho) > T(0) && T(rho) < T(1), op, "rho = ", rho, " rounds to 0 or 1 in ",
          dtype_name(h.dtype()));
    const Tensor scratch =
        dispatch::scratch_doubles(LATENT_SCRATCH(be, sparsity_scratch, n, hdim), h.device());
    dispatch::call(be, LATENT_KERNEL(kl_sparsity_forward), out.data<T>(), rho_hat.data<T>(),
                   h.data<T>(), T(rho), n, hdim, dispatch::as_doubles(scratch));
  });
  // The backward needs only the column means, not h itself.
  autograd::SavedTensor sr = rho_hat;
  autograd::record(op, out, {&h}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& rv = sr.get(op);
    Tensor& dh = g.grad(0);
    dispatch::run(op, dout, [&](auto z, auto be) {
      using T = decltype(z);
      dispatch::call(be, LATENT_KERNEL(kl_sparsity_backward), dh.data<T>(), dout.data<T>(),
                     rv.data<T>(), T(rho), n, hdim);
    });
  });
  return out;
}

}  // namespace latent
