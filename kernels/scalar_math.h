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
  return T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
}

template <class T>
LATENT_HD T gelu_pdf(T x) {  // phi(x)
  return T(0.39894228040143267794) * exp(T(-0.5) * x * x);
}

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
  rdiv_scalar
};
enum class Binary : int { add, sub, mul, div };

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

}  // namespace latent::kernels::math
