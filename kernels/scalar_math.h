// Per-element formulas and their derivatives, written once for both backends.
// Every function is __host__ __device__ and templated on the scalar type (float, double), so the
// CPU reference and the CUDA kernels evaluate the very same expressions.
#pragma once

#include <cmath>

#include "kernels/common.h"

namespace latent::kernels::math {

template <class T>
LATENT_HD T sigmoid(T x) {
  // Two branches so exp never overflows: for x < 0 use e^x / (1 + e^x).
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

// log(1 + e^x) without overflow or loss of precision for large |x|.
template <class T>
LATENT_HD T softplus(T x) {
  return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x)));
}

// log(sigmoid(x)) = -softplus(-x).
template <class T>
LATENT_HD T log_sigmoid(T x) {
  return -softplus(-x);
}

template <class T>
LATENT_HD T gelu_cdf(T x) {  // Phi(x)
  // erfc keeps relative accuracy in the far left tail, where 1 + erf(.) cancels to 0.
  return T(0.5) * erfc(-x * T(0.70710678118654752440));
}

template <class T>
LATENT_HD T gelu_pdf(T x) {  // phi(x)
  return T(0.39894228040143267794) * exp(T(-0.5) * x * x);
}

// The formulas below have one case per row of LATENT_ACTIVATIONS (kernels/common.h).
static_assert(kActCount == 8, "a new activation needs its cases in every switch of this file");

// act(x)
template <class T>
LATENT_HD T act_forward(Act a, T alpha, T x) {
  switch (a) {
    case Act::identity:
      return x;
    case Act::relu:
      return x > T(0) ? x : T(0);
    case Act::leaky_relu:
      return x > T(0) ? x : alpha * x;
    case Act::elu:
      return x > T(0) ? x : alpha * expm1(x);
    case Act::gelu:
      return x * gelu_cdf(x);
    case Act::sigmoid:
      return sigmoid(x);
    case Act::tanh:
      return tanh(x);
    case Act::softplus:
      return softplus(x);
  }
  return x;
}

// act'(x), from the pre-activation x.
template <class T>
LATENT_HD T act_grad(Act a, T alpha, T x) {
  switch (a) {
    case Act::identity:
      return T(1);
    case Act::relu:
      return x > T(0) ? T(1) : T(0);
    case Act::leaky_relu:
      return x > T(0) ? T(1) : alpha;
    case Act::elu:
      return x > T(0) ? T(1) : alpha * exp(x);
    case Act::gelu:
      return gelu_cdf(x) + x * gelu_pdf(x);
    case Act::sigmoid: {
      const T s = sigmoid(x);
      return s * (T(1) - s);
    }
    case Act::tanh: {
      const T t = tanh(x);
      return T(1) - t * t;
    }
    case Act::softplus:
      return sigmoid(x);
  }
  return T(1);
}

// act''(x): what the backward of the differentiable act' op (deep contractive penalty) needs.
template <class T>
LATENT_HD T act_grad2(Act a, T alpha, T x) {
  switch (a) {
    case Act::identity:
    case Act::relu:
    case Act::leaky_relu:
      return T(0);
    case Act::elu:
      return x > T(0) ? T(0) : alpha * exp(x);
    case Act::gelu:
      return gelu_pdf(x) * (T(2) - x * x);
    case Act::sigmoid: {
      const T s = sigmoid(x);
      return s * (T(1) - s) * (T(1) - T(2) * s);
    }
    case Act::tanh: {
      const T t = tanh(x);
      return T(-2) * t * (T(1) - t * t);
    }
    case Act::softplus: {
      const T s = sigmoid(x);
      return s * (T(1) - s);
    }
  }
  return T(0);
}

// Binary cross-entropy between logits x and targets y in [0, 1], in the form that never
// overflows: max(x, 0) - x*y + log1p(exp(-|x|)).
template <class T>
LATENT_HD T bce_with_logits(T x, T y) {
  return (x > T(0) ? x : T(0)) - x * y + log1p(exp(-fabs(x)));
}

// d/dx of bce_with_logits: sigmoid(x) - y.
template <class T>
LATENT_HD T bce_with_logits_grad(T x, T y) {
  return sigmoid(x) - y;
}

template <class T>
LATENT_HD T clamp(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// ---- element-wise arithmetic (elementwise family) -------------------------------------------

enum class Unary : int {
  neg,
  exp,
  log,
  sqrt,
  square,
  abs,
  clamp,
  add_scalar,
  mul_scalar,
  rsub_scalar,
  rdiv_scalar,
  cb_log_norm,  // the continuous Bernoulli's log normalizer in logits (see cb_log_norm below)
  cb_mean       // the continuous Bernoulli's mean in logits
};
enum class Binary : int { add, sub, mul, div };

// The continuous Bernoulli (Loaiza-Ganem and Cunningham, 2019) in logits eta, lambda =
// sigmoid(eta): the density C(lambda) lambda^x (1 - lambda)^(1 - x) on [0, 1] has
//   log C = log(eta / tanh(eta / 2))              (log 2 at eta = 0)
//   d/deta log C = 1 / eta - 1 / sinh(eta)
//   mean = 1/2 + 1 / (2 tanh(eta / 2)) - 1 / eta  (1/2 at eta = 0)
//   d/deta mean = 1 / eta^2 - 1 / (4 sinh^2(eta / 2))
// Near 0 the closed forms cancel, so below |eta| < cb_series_limit Taylor series take over (their
// error there is under 3e-9 relative in float's range 0.5 and 1e-12 in double's 0.1).
template <class T>
LATENT_HD T cb_series_limit() {
  return sizeof(T) == 4 ? T(0.5) : T(0.1);
}
template <class T>
LATENT_HD T cb_log_norm(T e) {
  const T a = fabs(e);
  if (a < cb_series_limit<T>()) {
    const T e2 = e * e;
    return T(0.69314718055994530942) +
           e2 * (T(1) / T(12) +
                 e2 * (T(-7) / T(1440) + e2 * (T(31) / T(90720) + e2 * (T(-127) / T(4838400)))));
  }
  return log(a) - log(tanh(a * T(0.5)));
}
template <class T>
LATENT_HD T cb_log_norm_grad(T e) {
  if (fabs(e) < cb_series_limit<T>()) {
    const T e2 = e * e;
    return e * (T(1) / T(6) +
                e2 * (T(-7) / T(360) + e2 * (T(31) / T(15120) + e2 * (T(-127) / T(604800)))));
  }
  return T(1) / e - T(1) / sinh(e);
}
template <class T>
LATENT_HD T cb_mean(T e) {
  if (fabs(e) < cb_series_limit<T>()) {
    const T e2 = e * e;
    return T(0.5) + e * (T(1) / T(12) + e2 * (T(-1) / T(720) + e2 * (T(1) / T(30240))));
  }
  return T(0.5) + T(0.5) / tanh(e * T(0.5)) - T(1) / e;
}
template <class T>
LATENT_HD T cb_mean_grad(T e) {
  if (fabs(e) < cb_series_limit<T>()) {
    const T e2 = e * e;
    return T(1) / T(12) + e2 * (T(-1) / T(240) + e2 * (T(1) / T(6048)));
  }
  const T s = sinh(e * T(0.5));
  return T(1) / (e * e) - T(0.25) / (s * s);
}

// f(x); p0, p1: the scalar (add/mul/rsub/rdiv) or the bounds (clamp).
template <class T>
LATENT_HD T unary_forward(Unary op, T x, T p0, T p1) {
  switch (op) {
    case Unary::neg:
      return -x;
    case Unary::exp:
      return exp(x);
    case Unary::log:
      return log(x);
    case Unary::sqrt:
      return sqrt(x);
    case Unary::square:
      return x * x;
    case Unary::abs:
      return fabs(x);
    case Unary::clamp:
      return clamp(x, p0, p1);
    case Unary::add_scalar:
      return x + p0;
    case Unary::mul_scalar:
      return x * p0;
    case Unary::rsub_scalar:
      return p0 - x;
    case Unary::rdiv_scalar:
      return p0 / x;
    case Unary::cb_log_norm:
      return cb_log_norm(x);
    case Unary::cb_mean:
      return cb_mean(x);
  }
  return x;
}

// f'(x), given x and y = f(x).
template <class T>
LATENT_HD T unary_grad(Unary op, T x, T y, T p0, T p1) {
  switch (op) {
    case Unary::neg:
      return T(-1);
    case Unary::exp:
      return y;
    case Unary::log:
      return T(1) / x;
    case Unary::sqrt:
      return T(0.5) / y;
    case Unary::square:
      return T(2) * x;
    case Unary::abs:
      return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case Unary::clamp:
      return (x > p0 && x < p1) ? T(1) : T(0);
    case Unary::add_scalar:
      return T(1);
    case Unary::mul_scalar:
      return p0;
    case Unary::rsub_scalar:
      return T(-1);
    case Unary::rdiv_scalar:
      return -y / x;
    case Unary::cb_log_norm:
      return cb_log_norm_grad(x);
    case Unary::cb_mean:
      return cb_mean_grad(x);
  }
  return T(1);
}

template <class T>
LATENT_HD T binary_forward(Binary op, T a, T b) {
  switch (op) {
    case Binary::add:
      return a + b;
    case Binary::sub:
      return a - b;
    case Binary::mul:
      return a * b;
    case Binary::div:
      return a / b;
  }
  return a;
}

// d(a op b)/da and d(a op b)/db.
template <class T>
LATENT_HD T binary_grad_a(Binary op, T /*a*/, T b) {
  switch (op) {
    case Binary::add:
    case Binary::sub:
      return T(1);
    case Binary::mul:
      return b;
    case Binary::div:
      return T(1) / b;
  }
  return T(1);
}

template <class T>
LATENT_HD T binary_grad_b(Binary op, T a, T b) {
  switch (op) {
    case Binary::add:
      return T(1);
    case Binary::sub:
      return T(-1);
    case Binary::mul:
      return a;
    case Binary::div:
      return -a / (b * b);
  }
  return T(1);
}

// ---- VAE: reparametrized sampling and KL to N(0, I) (vae family) ----------------------------
// lv is the log-variance already clamped to its documented range by the caller.

// Whether the clamp to [lo, hi] left lv unchanged (the gradient w.r.t. lv flows only then).
template <class T>
LATENT_HD bool logvar_active(T lv, T lo, T hi) {
  return lv >= lo && lv <= hi;
}

// z = mu + exp(lv / 2) * eps; dz/dlv = 0.5 * exp(lv / 2) * eps.
template <class T>
LATENT_HD T reparam_sample(T mu, T lv, T eps) {
  return mu + exp(T(0.5) * lv) * eps;
}

// -1/2 (1 + lv - mu^2 - exp(lv)) written as 1/2 (mu^2 + expm1(lv) - lv): no cancellation near
// lv = 0, where exp(lv) - 1 - lv is tiny.
template <class T>
LATENT_HD T kl_normal_term(T mu, T lv) {
  return T(0.5) * (mu * mu + expm1(lv) - lv);
}

// d kl_normal_term / d lv = 1/2 (exp(lv) - 1); d / d mu = mu.
template <class T>
LATENT_HD T kl_normal_term_dlogvar(T lv) {
  return T(0.5) * expm1(lv);
}

// ---- optimizers: PyTorch's update rules, one element at a time (optim family) ----------------

// SGD. With L2 decay d = g + wd * p; with momentum mu > 0 the buffer b becomes d on the first
// step and mu * b + (1 - dampening) * d afterwards, and the step direction is d + mu * b
// (Nesterov) or b; p -= lr * direction. b is null (and unused) when mu == 0.
template <class T>
LATENT_HD void sgd_update(T& p, T* b, T g, T lr, T mu, T dampening, T wd, bool nesterov,
                          bool first) {
  T d = g + wd * p;
  if (b) {
    *b = first ? d : mu * *b + (T(1) - dampening) * d;
    d = nesterov ? d + mu * *b : *b;
  }
  p -= lr * d;
}

// Adam (decoupled == false: L2 decay folded into the gradient) and AdamW (decoupled: p is first
// shrunk by (1 - lr * wd)). step_size = lr / (1 - beta1^t) and inv_sqrt_bc2 = 1 / sqrt(1 -
// beta2^t) carry the bias corrections, computed once on the host:
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2,
//   p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps).
template <class T>
LATENT_HD void adam_update(T& p, T& m, T& v, T g, T lr, T beta1, T beta2, T eps, T wd,
                           bool decoupled, T step_size, T inv_sqrt_bc2) {
  if (decoupled)
    p -= lr * wd * p;
  else
    g += wd * p;
  m = beta1 * m + (T(1) - beta1) * g;
  v = beta2 * v + (T(1) - beta2) * g * g;
  p -= step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps);
}

// ---- reductions: logsumexp (reduce family) --------------------------------------------------

// Running maximum that lets a NaN through (a plain `x > m` would skip it), so a NaN anywhere in
// a row makes its logsumexp NaN.
template <class T>
LATENT_HD T max_propagate_nan(T m, T x) {
  return (x > m || x != x) ? x : m;
}

// log(sum_j exp(x_j)) from m = max_j x_j and s = sum_j exp(x_j - m). A non-finite max is the
// answer itself: -inf for a row of -inf (or an empty one), +inf, or NaN.
template <class T>
LATENT_HD T logsumexp_finish(T m, T s) {
  return fabs(m) < T(INFINITY) ? m + log(s) : m;  // false for +-inf and NaN
}

// d logsumexp / d x_j = exp(x_j - lse), the softmax weight. An element at -inf has weight 0,
// which also keeps a row of -inf (lse = -inf) free of NaN.
template <class T>
LATENT_HD T logsumexp_weight(T x, T lse) {
  return x == -INFINITY ? T(0) : exp(x - lse);
}

// ---- losses and sparsity penalties (loss and sparsity families) ------------------------------
// bce_with_logits and its gradient are above; these are the other per-element terms.

// (x - t)^2 and its derivative w.r.t. x (w.r.t. t it is the negative).
template <class T>
LATENT_HD T squared_error(T x, T t) {
  const T e = x - t;
  return e * e;
}

template <class T>
LATENT_HD T squared_error_grad(T x, T t) {
  return T(2) * (x - t);
}

// -log N(t; mu, exp(lv)) = 0.5 (log(2 pi) + lv + (t - mu)^2 exp(-lv)), in nats.
// The level of a value v in [0, 1] among k levels: round(v (k - 1)), in double; -1 outside [0, 1]
// (NaN included).
template <class T>
LATENT_HD long long level_of(T v, long long k) {
  const double x = static_cast<double>(v);
  if (!(x >= 0.0 && x <= 1.0)) return -1;
  return static_cast<long long>(::round(x * static_cast<double>(k - 1)));
}

template <class T>
LATENT_HD T gaussian_nll(T mu, T lv, T t) {
  const T e = t - mu;
  return T(0.5) * (T(1.83787706640934548356) + lv + e * e * exp(-lv));
}

// d/dmu = (mu - t) exp(-lv); d/dt is its negative.
template <class T>
LATENT_HD T gaussian_nll_dmean(T mu, T lv, T t) {
  return (mu - t) * exp(-lv);
}

// d/dlv = 0.5 (1 - (t - mu)^2 exp(-lv)).
template <class T>
LATENT_HD T gaussian_nll_dlogvar(T mu, T lv, T t) {
  const T e = t - mu;
  return T(0.5) * (T(1) - e * e * exp(-lv));
}

// d|h|/dh, taken as 0 at 0 (the subgradient that leaves exact zeros in place).
template <class T>
LATENT_HD T l1_grad(T h) {
  return h > T(0) ? T(1) : (h < T(0) ? T(-1) : T(0));
}

// KL(Bernoulli(rho) || Bernoulli(q)) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q)),
// for rho, q in (0, 1).
template <class T>
LATENT_HD T kl_bernoulli(T rho, T q) {
  return rho * log(rho / q) + (T(1) - rho) * log((T(1) - rho) / (T(1) - q));
}

// d kl_bernoulli / dq = -rho / q + (1 - rho) / (1 - q).
template <class T>
LATENT_HD T kl_bernoulli_dq(T rho, T q) {
  return -rho / q + (T(1) - rho) / (T(1) - q);
}

// ---- dense layer: act' from the output (linalg family) ---------------------------------------

// act'(pre) recovered from y = act(pre), so the dense layer's backward needs only its output.
// Valid for alpha >= 0 (leaky_relu, elu: then y > 0 exactly when pre > 0, and for pre <= 0 elu's
// y + alpha = alpha e^pre). gelu is not invertible: callers keep pre for it (NaN here).
template <class T>
LATENT_HD T act_grad_from_output(Act a, T alpha, T y) {
  switch (a) {
    case Act::identity:
      return T(1);
    case Act::relu:
      return y > T(0) ? T(1) : T(0);
    case Act::leaky_relu:
      return y > T(0) ? T(1) : alpha;
    case Act::elu:
      return y > T(0) ? T(1) : y + alpha;
    case Act::gelu:
      return T(NAN);
    case Act::sigmoid:
      return y * (T(1) - y);
    case Act::tanh:
      return T(1) - y * y;
    case Act::softplus:  // sigmoid(pre) = 1 - e^(-softplus(pre))
      return -expm1(-y);
  }
  return T(1);
}

}  // namespace latent::kernels::math
