#include "core/ops/vae.h"

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/ops/reduction.h"
#include "kernels/vae.h"

namespace latent {
namespace {

// Z of h [N, 2Z] (mu | logvar), after checking h's shape.
std::int64_t latent_dim(const char* op, const Tensor& h) {
  dispatch::check_defined(op, {&h});
  dispatch::check_ndim(op, "h", h, 2);
  check(h.dim(1) > 0 && h.dim(1) % 2 == 0, op,
        "h must be [N, 2Z] (mu | logvar) with an even, positive number of columns, got ",
        h.shape().str());
  return h.dim(1) / 2;
}

// Both overloads of reparametrize: eps is either explicit (saved for backward) or undefined, in
// which case the forward kernel draws it from `key` and the backward draws it again from `again`
// (`used` holds the draw's start in memory and is kept alive for the backward).
Tensor reparametrize_impl(const Tensor& h, const Tensor& eps, kernels::philox::Key key,
                          kernels::philox::Key again, const Tensor& used, std::int64_t samples) {
  const char* op = "reparametrize";
  const std::int64_t n = h.dim(0);
  const std::int64_t zdim = h.dim(1) / 2;
  Tensor z = Tensor::empty({samples * n, zdim}, h.options());
  dispatch::run(op, h, [&](auto t, auto be) {
    using T = decltype(t);
    dispatch::call(be, LATENT_KERNEL(reparametrize_forward), z.data<T>(), h.data<T>(),
                   eps.defined() ? eps.data<T>() : nullptr, key, T(kLogvarMin), T(kLogvarMax),
                   samples, n, zdim);
  });
  autograd::SavedTensor sh = h;
  autograd::SavedTensor se = eps.defined() ? eps.detach() : Tensor();
  autograd::record(op, z, {&h}, [=, start = used](const Tensor& dz, autograd::GradSink& g) {
    (void)start;  // holds the draw's start, which `again` points to
    const Tensor& hv = sh.get(op);
    if (!se.defined()) {  // drawn noise: the kernel stores into a gradient nothing wrote yet
      bool fresh = false;
      Tensor& dh = g.grad_out(0, &fresh);
      dispatch::run(op, dz, [&](auto t, auto be) {
        using T = decltype(t);
        dispatch::call(be, LATENT_KERNEL(reparametrize_kl_backward), dh.data<T>(), !fresh,
                       dz.data<T>(), static_cast<const T*>(nullptr), T(0), hv.data<T>(), again,
                       T(kLogvarMin), T(kLogvarMax), samples, n, zdim);
      });
      return;
    }
    Tensor& dh = g.grad(0);
    dispatch::run(op, dz, [&](auto t, auto be) {
      using T = decltype(t);
      dispatch::call(be, LATENT_KERNEL(reparametrize_backward), dh.data<T>(), dz.data<T>(),
                     hv.data<T>(), se.get(op).data<T>(), again, T(kLogvarMin), T(kLogvarMax),
                     samples, n, zdim);
    });
  });
  return z;
}

}  // namespace

Tensor reparametrize(const Tensor& h, std::int64_t samples, Generator& gen) {
  latent_dim("reparametrize", h);
  check(samples >= 1, "reparametrize", "samples must be at least 1, got ", samples);
  // The forward kernel moves the generator's offset itself (take_inside); the backward reads the
  // draw's start from draw.used.
  const Generator::Draw draw = gen.take_rows(samples, h.dim(0), h.dim(1) / 2, h.device());
  return reparametrize_impl(h, Tensor(), draw.key, draw.again(), draw.used, samples);
}

Tensor reparametrize(const Tensor& h, const Tensor& eps) {
  const char* op = "reparametrize";
  const std::int64_t zdim = latent_dim(op, h);
  dispatch::check_same(op, {&h, &eps});
  const std::int64_t n = h.dim(0);
  const bool ok = eps.ndim() == 2 && eps.dim(1) == zdim &&
                  (n == 0 ? eps.dim(0) == 0 : eps.dim(0) >= n && eps.dim(0) % n == 0);
  check(ok, op, "eps must be [R*N, Z] with R >= 1 for h [N, 2Z]: h ", h.shape().str(), ", eps ",
        eps.shape().str());
  const std::int64_t samples = n == 0 ? 1 : eps.dim(0) / n;
  return reparametrize_impl(h, eps, {}, {}, Tensor(), samples);
}

SampleAndKl reparametrize_kl(const Tensor& h, std::int64_t samples, Generator& gen) {
  const char* op = "reparametrize_kl";
  const std::int64_t zdim = latent_dim(op, h);
  check(samples >= 1, op, "samples must be at least 1, got ", samples);
  const std::int64_t n = h.dim(0);
  // The sampling kernel moves the generator's offset itself (no launch of its own); the backward
  // reads the draw's start from draw.used.
  const Generator::Draw draw = gen.take_rows(samples, n, zdim, h.device());
  const kernels::philox::Key key = draw.again();  // for the backward
  const detail::ReduceSpec rs =
      detail::reduce_spec(op, Reduction::batch_mean, n, n * zdim, h.shape());
  SampleAndKl out{Tensor::empty({samples * n, zdim}, h.options()),
                  Tensor::empty(rs.out, h.options())};
  dispatch::run(op, h, [&](auto t, auto be) {
    using T = decltype(t);
    const Tensor scratch =
        dispatch::scratch_doubles(LATENT_SCRATCH(be, kl_normal_scratch, n, zdim), h.device());
    dispatch::call(be, LATENT_KERNEL(reparametrize_kl_forward), out.z.data<T>(), out.kl.data<T>(),
                   h.data<T>(), draw.key, T(rs.scale), T(kLogvarMin), T(kLogvarMax), samples, n,
                   zdim, dispatch::as_doubles(scratch));
  });
  if (!autograd::needs_graph({&h})) return out;
  // z's node computes both gradients in one kernel. The KL's node is recorded as a consumer of z
  // (its value came from the same kernel): it runs first and leaves the KL's gradient where z's
  // backward reads it. It adds nothing to z's gradient itself.
  auto kl_grad = std::make_shared<Tensor>();
  autograd::SavedTensor sh = h;
  autograd::record(
      op, out.z, {&h}, [=, start = draw.used](const Tensor& dz, autograd::GradSink& g) {
        (void)start;  // holds the draw's start, which `key` points to
        const Tensor& hv = sh.get(op);
        const Tensor dkl = *kl_grad;
        *kl_grad = Tensor();
        bool fresh = false;
        Tensor& dh = g.grad_out(0, &fresh);
        dispatch::run(op, dz, [&](auto t, auto be) {
          using T = decltype(t);
          dispatch::call(be, LATENT_KERNEL(reparametrize_kl_backward), dh.data<T>(), !fresh,
                         dz.data<T>(), dkl.defined() ? dkl.data<T>() : nullptr, T(rs.scale),
                         hv.data<T>(), key, T(kLogvarMin), T(kLogvarMax), samples, n, zdim);
        });
      });
  autograd::record("kl_normal", out.kl, {&out.z},
                   [kl_grad](const Tensor& dkl, autograd::GradSink&) { *kl_grad = dkl; });
  return out;
}

Tensor kl_normal(const Tensor& h, Reduction reduction) {
  const char* op = "kl_normal";
  const std::int64_t zdim = latent_dim(op, h);
  const std::int64_t n = h.dim(0);
  const detail::ReduceSpec rs = detail::reduce_spec("kl_normal", reduction, n, n * zdim, h.shape());
  Tensor out = Tensor::empty(rs.out, h.options());
  dispatch::run(op, h, [&](auto t, auto be) {
    using T = decltype(t);
    // The reduced KL sums per-block partials in a second pass on the GPU: scratch doubles from
    // the pool (float32 storage read as double), returned behind the queued kernels.
    const Tensor scratch =
        rs.per_sample
            ? Tensor()
            : dispatch::scratch_doubles(LATENT_SCRATCH(be, kl_normal_scratch, n, zdim), h.device());
    dispatch::call(be, LATENT_KERNEL(kl_normal_forward), out.data<T>(), h.data<T>(), T(rs.scale),
                   rs.per_sample, T(kLogvarMin), T(kLogvarMax), n, zdim,
                   dispatch::as_doubles(scratch));
  });
  autograd::SavedTensor sh = h;
  autograd::record(op, out, {&h}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& hv = sh.get(op);
    Tensor& dh = g.grad(0);
    dispatch::run(op, dout, [&](auto t, auto be) {
      using T = decltype(t);
      dispatch::call(be, LATENT_KERNEL(kl_normal_backward), dh.data<T>(), dout.data<T>(),
                     rs.per_sample ? 1 : 0, 0, T(rs.scale), hv.data<T>(), T(kLogvarMin),
                     T(kLogvarMax), n, zdim);
    });
  });
  return out;
}

Tensor kl_normal_terms(const Tensor& h) {
  const char* op = "kl_normal_terms";
  const std::int64_t zdim = latent_dim(op, h);
  const std::int64_t n = h.dim(0);
  Tensor out = Tensor::empty({n, zdim}, h.options());
  dispatch::run(op, h, [&](auto t, auto be) {
    using T = decltype(t);
    dispatch::call(be, LATENT_KERNEL(kl_normal_terms_forward), out.data<T>(), h.data<T>(),
                   T(kLogvarMin), T(kLogvarMax), n, zdim);
  });
  autograd::SavedTensor sh = h;
  autograd::record(op, out, {&h}, [=](const Tensor& dout, autograd::GradSink& g) {
    const Tensor& hv = sh.get(op);
    Tensor& dh = g.grad(0);
    dispatch::run(op, dout, [&](auto t, auto be) {
      using T = decltype(t);
      dispatch::call(be, LATENT_KERNEL(kl_normal_backward), dh.data<T>(), dout.data<T>(), zdim,
                     std::int64_t{1}, T(1), hv.data<T>(), T(kLogvarMin), T(kLogvarMax), n, zdim);
    });
  });
  return out;
}

}  // namespace latent
