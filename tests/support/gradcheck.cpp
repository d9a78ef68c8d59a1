#include "support/gradcheck.h"

#include <cmath>
#include <sstream>

namespace latent::testing {

GradCheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double atol, double rtol, double h) {
  GradCheckResult res;
  for (const Tensor& t : inputs) {
    check(t.dtype() == DType::f64 && t.device().is_cpu(), "gradcheck",
          "inputs must be float64 CPU tensors, got ", t.str());
    if (t.requires_grad()) t.set_grad(Tensor());
  }

  Tensor out = fn(inputs);
  Generator wgen(12345);
  // Weights away from zero so no element's gradient is hidden.
  Tensor w = Tensor::rand(out.shape(), wgen, {.dtype = DType::f64}, 0.5, 1.5);
  const std::vector<double> wv = w.to_vector<double>();
  out.backward(w);

  auto objective = [&]() {
    NoGradGuard ng;
    const std::vector<double> o = fn(inputs).to_vector<double>();
    double s = 0;
    for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * wv[i];
    return s;
  };

  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    const Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>()
                    : std::vector<double>(static_cast<std::size_t>(x.numel()), 0.0);
    double* p = x.data<double>();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + h;
      const double fp = objective();
      p[i] = orig - h;
      const double fm = objective();
      p[i] = orig;
      const double numeric = (fp - fm) / (2 * h);
      const double a = analytic[static_cast<std::size_t>(i)];
      const double err = std::fabs(a - numeric);
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (!(err <= atol + rtol * std::fabs(numeric))) {
        if (res.ok) {
          std::ostringstream os;
          os << "input " << k << " element " << i << ": analytic " << a << " numeric " << numeric;
          res.first_failure = os.str();
        }
        res.ok = false;
      }
    }
  }
  return res;
}

}  // namespace latent::testing
