#include "core/optim/clip.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_set>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/dispatch.h"
#include "kernels/optim.h"

namespace latent::optim {

double grad_norm(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;                   // in parameter order
  std::unordered_set<const TensorImpl*> seen;  // a tensor listed twice counts once
  for (const Tensor& p : params) {
    check(p.defined(), "clip_grad_norm", "a parameter is an undefined tensor");
    if (!seen.insert(p.impl().get()).second) continue;
    const Tensor g = p.grad();
    if (g.defined()) grads.push_back(g);
  }
  // Per device (in order of first appearance): the CPU adds each tensor's sum in order; a GPU
  // sums all of its gradients in one deterministic multi-tensor reduction and hands back one
  // double, which waits for the device (the API returns the norm as a number).
  std::vector<std::vector<const Tensor*>> groups;
  for (const Tensor& g : grads) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& grp) {
      return grp.front()->device() == g.device() && grp.front()->dtype() == g.dtype();
    });
    if (it == groups.end())
      groups.push_back({&g});
    else
      it->push_back(&g);
  }
  double total = 0;
  for (const auto& group : groups) {
    const Tensor& first = *group.front();
    dispatch::run(
        "clip_grad_norm", first.device(), first.dtype(),
        [&](auto z) {
          using T = decltype(z);
          for (const Tensor* g : group)
            total += kernels::cpu::sum_squares<T>(g->data<T>(), g->numel());
        },
        [&](kernels::Stream s) {
          std::vector<kernels::cuda::SquaresTensor> ts;
          for (const Tensor* g : group) ts.push_back({.x = g->data<float>(), .n = g->numel()});
          const std::int64_t parts = kernels::cuda::sum_squares_scratch(ts.data(), ts.size());
          // [partials..., result] as doubles, in float32 storage (float64 is CPU-only).
          const Tensor scratch = dispatch::scratch_doubles(parts + 1, first.device());
          double* base = dispatch::as_doubles(scratch);
          kernels::cuda::sum_squares_multi(base + parts, base, ts.data(), ts.size(), s);
          double sum = 0;
          backend::copy(&sum, Device::cpu(), base + parts, first.device(), sizeof(double));
          total += sum;
        });
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  check(std::isfinite(max_norm) && max_norm >= 0, "clip_grad_norm",
        "max_norm must be finite and non-negative, got ", max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double scale = max_norm / (norm + 1e-6);
  NoGradGuard no_grad;
  std::unordered_set<const TensorImpl*> seen;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined() && seen.insert(g.impl().get()).second) g.mul_(scale);
  }
  return norm;
}

GradClipper::GradClipper(double max_norm) : max_norm_(max_norm) {
  check(std::isfinite(max_norm) && max_norm >= 0, "clip_grad_norm",
        "max_norm must be finite and non-negative, got ", max_norm);
}

void GradClipper::clip(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  std::unordered_set<const TensorImpl*> seen;  // a gradient listed twice counts once
  for (const Tensor& p : params) {
    check(p.defined(), "clip_grad_norm", "a parameter is an undefined tensor");
    const Tensor g = p.grad();
    if (g.defined() && seen.insert(g.impl().get()).second) grads.push_back(g);
  }
  if (grads.empty()) return;
  const Device device = grads.front().device();
  for (const Tensor& g : grads)
    check(g.device() == device, "clip_grad_norm", "gradients on ", device.str(), " and ",
          g.device().str(), ": clip the parameters of one device at a time");
  if (!mem_.defined() || mem_.device() != device) mem_ = dispatch::scratch_doubles(3, device);
  double* mem = dispatch::as_doubles(mem_);
  dispatch::run("clip_grad_norm", device, grads.front().dtype(), [&](auto z, auto be) {
    using T = decltype(z);
    if constexpr (decltype(be)::is_cuda) {
      // One deterministic multi-tensor reduction into mem[0].
      dispatch::refuse_unless_captured("clip_grad_norm");
      std::vector<kernels::cuda::SquaresTensor> ts;
      for (const Tensor& g : grads) ts.push_back({.x = g.data<float>(), .n = g.numel()});
      const Tensor scratch = dispatch::scratch_doubles(
          kernels::cuda::sum_squares_scratch(ts.data(), ts.size()), device);
      dispatch::detail::count_launch("sum_squares_multi", 0);
      kernels::cuda::sum_squares_multi(mem, dispatch::as_doubles(scratch), ts.data(), ts.size(),
                                       be.stream);
    } else {
      bool first = true;
      for (const Tensor& g : grads) {
        check(g.dtype() == grads.front().dtype(), "clip_grad_norm",
              "gradients of one dtype at a time");
        dispatch::call(be, LATENT_CPU_KERNEL(clip_accumulate), mem, g.data<T>(), g.numel(), first);
        first = false;
      }
    }
    dispatch::call(be, LATENT_KERNEL(clip_factor), mem, max_norm_);
    for (const Tensor& g : grads)
      dispatch::call(be, LATENT_KERNEL(clip_scale), g.data<T>(), static_cast<const double*>(mem),
                     g.numel());
  });
  for (const Tensor& g : grads) g.bump_version();
}

const double* GradClipper::norm_memory() const {
  return mem_.defined() ? dispatch::as_doubles(mem_) + 1 : nullptr;
}

double GradClipper::last_norm() const {
  if (!mem_.defined()) return std::numeric_limits<double>::quiet_NaN();
  dispatch::refuse_while_recording("reading the gradient norm on the host");
  double v[3] = {};
  backend::copy(v, Device::cpu(), dispatch::as_doubles(mem_), mem_.device(), sizeof v);
  return v[1];
}

}  // namespace latent::optim
