#include "core/optim/clip.h"

#include <cmath>
#include <unordered_set>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/optim.h"

namespace latent::optim {

double grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  std::unordered_set<const TensorImpl*> seen;  // a tensor listed twice counts once
  for (const Tensor& p : params) {
    check(p.defined(), "clip_grad_norm", "a parameter is an undefined tensor");
    if (!seen.insert(p.impl().get()).second) continue;
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch::run(
        "clip_grad_norm", g,
        [&](auto z) {
          using T = decltype(z);
          total += kernels::cpu::sum_squares<T>(g.data<T>(), g.numel());
        },
        dispatch::no_cuda);
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
