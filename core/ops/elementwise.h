// Element-wise arithmetic and unary math, differentiable.
//
// Broadcasting is limited to what autoencoders need. For a binary op, each operand is either
//   - the full shape of the result,
//   - a row vector [D] against a result [..., D] (bias-like; repeated over rows),
//   - a column [N, 1] against a 2-D result [N, D] (per-sample scale),
//   - a scalar: shape () or (1).
// Any other pair of shapes throws latent::Error naming the op and both shapes. The gradient of a
// broadcast operand is reduced back to its shape.
#pragma once

#include "core/tensor.h"
#include "kernels/axpy.h"

namespace latent {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// sum = a + w b and scaled = w b, for a and b of one shape and w of one element (read from
// memory when the kernel runs, so a recorded step sees its new value; w gets no gradient). One
// kernel forward. A backward from sum hands its gradient to a as is, and to b as w itself when
// sum's gradient is backward()'s implicit 1: no kernel at all. scaled has its own node, so that
// backward() from it also works.
struct ScaledSum {
  Tensor sum;
  Tensor scaled;
  Tensor weight;  // the w of the call (one element)
};
ScaledSum add_scaled(const Tensor& a, const Tensor& b, const Tensor& w);
// The same, w following a step count in memory (kernels::Ramp; ramp.step is ignored): the kernel
// computes w = ramp.scale * ramp_factor(ramp, count), writes it into the call's own `weight` (a
// new one-element tensor, which the backward reads) and counts the step, the count being an
// int64 in the first 8 bytes of `step` (on a's device, written by the caller). For a weight that
// moves with training (a KL warm-up): a recorded step replays with each step's weight, and two
// calls before one backward each keep their own.
ScaledSum add_scaled(const Tensor& a, const Tensor& b, kernels::Ramp ramp, const Tensor& step);

// a op s for a host scalar s.
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
// s - a and s / a.
Tensor rsub(double s, const Tensor& a);
Tensor rdiv(double s, const Tensor& a);

Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);   // natural log; log of a non-positive value gives -inf/nan
Tensor sqrt(const Tensor& x);  // gradient 1/(2 sqrt(x)), infinite at 0
Tensor square(const Tensor& x);
Tensor abs(const Tensor& x);  // gradient sign(x), 0 at 0
// min(max(x, lo), hi); the gradient is 1 strictly inside (lo, hi) and 0 outside. lo <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
// The continuous Bernoulli in logits (kernels/scalar_math.h): log(eta / tanh(eta / 2)), its log
// normalizer (log 2 at 0), and its mean 1/2 + 1 / (2 tanh(eta / 2)) - 1 / eta; both stable at 0.
Tensor cb_log_norm(const Tensor& logits);
Tensor cb_mean(const Tensor& logits);

inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator-(const Tensor& a) {
  return neg(a);
}
inline Tensor operator+(const Tensor& a, double s) {
  return add(a, s);
}
inline Tensor operator+(double s, const Tensor& a) {
  return add(a, s);
}
inline Tensor operator-(const Tensor& a, double s) {
  return add(a, -s);
}
inline Tensor operator-(double s, const Tensor& a) {
  return rsub(s, a);
}
inline Tensor operator*(const Tensor& a, double s) {
  return mul(a, s);
}
inline Tensor operator*(double s, const Tensor& a) {
  return mul(a, s);
}
inline Tensor operator/(const Tensor& a, double s) {
  return mul(a, 1.0 / s);
}
inline Tensor operator/(double s, const Tensor& a) {
  return rdiv(s, a);
}

}  // namespace latent
