#include "core/ops/activation.h"

#include "core/autograd.h"
#include "core/dispatch.h"
#include "kernels/activation.h"

namespace latent {

namespace {

std::size_t act_index(Act a) {
  check(kernels::act_info(a) != nullptr, "activation", "unknown activation code ",
        static_cast<int>(a));
  return static_cast<std::size_t>(a);
}

// y = act(x) (grad_op false) or y = act'(x) (grad_op true); the backward multiplies dy by the
// next derivative, evaluated at the saved pre-activation x.
Tensor apply(const char* op, const Tensor& x, ActParams p, bool grad_op) {
  dispatch::check_defined(op, {&x});
  Tensor y = Tensor::empty(x.shape(), x.options());
  const std::int64_t n = x.numel();
  dispatch::run(op, x, [&](auto z, auto be) {
    using T = decltype(z);
    if (grad_op)
      dispatch::call(be, LATENT_KERNEL(activation_grad_forward), y.data<T>(), x.data<T>(), p, n);
    else
      dispatch::call(be, LATENT_KERNEL(activation_forward), y.data<T>(), x.data<T>(), p, n);
  });
  autograd::SavedTensor sx = x;
  autograd::record(op, y, {&x}, [=](const Tensor& dy, autograd::GradSink& g) {
    const Tensor& xv = sx.get(op);
    bool fresh = false;
    Tensor& dx = g.grad_out(0, &fresh);
    dispatch::run(op, dy, [&](auto z, auto be) {
      using T = decltype(z);
      if (grad_op)
        dispatch::call(be, LATENT_KERNEL(activation_grad_backward), dx.data<T>(), !fresh,
                       dy.data<T>(), xv.data<T>(), p, n);
      else
        dispatch::call(be, LATENT_KERNEL(activation_backward), dx.data<T>(), !fresh, dy.data<T>(),
                       xv.data<T>(), p, n);
    });
  });
  return y;
}

}  // namespace

Act parse_act(const std::string& name) {
  std::string valid;
  for (int i = 0; i < kernels::kActCount; ++i) {
    const char* known = kernels::kActInfo[i].name;
    if (name == known) return static_cast<Act>(i);
    valid += valid.empty() ? known : std::string(", ") + known;
  }
  throw Error("parse_act", "unknown activation '" + name + "'; valid names: " + valid);
}

const char* act_name(Act a) {
  return kernels::kActInfo[act_index(a)].name;
}

Tensor activation(const Tensor& x, ActParams params) {
  return apply(kernels::kActInfo[act_index(params.act)].name, x, params, false);
}

Tensor activation_grad(const Tensor& x, ActParams params) {
  return apply(kernels::kActInfo[act_index(params.act)].grad_name, x, params, true);
}

Tensor relu(const Tensor& x) {
  return activation(x, {.act = Act::relu});
}
Tensor leaky_relu(const Tensor& x, double slope) {
  return activation(x, {.act = Act::leaky_relu, .alpha = static_cast<float>(slope)});
}
Tensor elu(const Tensor& x, double alpha) {
  return activation(x, {.act = Act::elu, .alpha = static_cast<float>(alpha)});
}
Tensor gelu(const Tensor& x) {
  return activation(x, {.act = Act::gelu});
}
Tensor sigmoid(const Tensor& x) {
  return activation(x, {.act = Act::sigmoid});
}
Tensor tanh(const Tensor& x) {
  return activation(x, {.act = Act::tanh});
}
Tensor softplus(const Tensor& x) {
  return activation(x, {.act = Act::softplus});
}

}  // namespace latent
