#include "core/optim/clip.h"

#include <algorithm>
#include <cmath>
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

}  // namespace latent::optim
