// Dense-layer epilogues: what surrounds the GEMMs of y = act(x W^T + b) (kernels/gemm.h).
//
//   dense_bias_act_forward:   y [N, H] holds x W^T on entry (from the GEMM); in one pass
//                             pre[r, c] = y[r, c] + b[c]      (pre written only when non-null)
//                             y[r, c]   = act(pre[r, c])      (in place)
//                             b [H] may be null (no bias).
//   dense_backward_act_bias:  g[r, c] = dy[r, c] * act'(pre[r, c])
//                             dpre [N, H] = g                 (overwrites; skipped when null)
//                             db [H] += sum_r g[r, c]         (accumulates; skipped when null)
//                             act' comes from pre when pre is non-null, else from the output y
//                             (math::act_grad_from_output; not for gelu, nor for leaky_relu or
//                             elu with a negative alpha: those need pre). Neither is read for
//                             identity.
// Formulas: kernels/scalar_math.h. Column sums run in double, in row order, one column per
// thread, so db does not depend on the thread count.
#pragma once

#include "kernels/common.h"
#include "kernels/scalar_math.h"

namespace latent::kernels {

// Whether act' cannot be recovered from the layer's output, so the backward needs pre.
inline bool dense_needs_pre(ActParams act) {
  return act.act == Act::gelu ||
         ((act.act == Act::leaky_relu || act.act == Act::elu) && act.alpha < 0.0f);
}

namespace cpu {
template <class T>
void dense_bias_act_forward(T* y, T* pre, const T* b, ActParams act, index_t n, index_t h);
template <class T>
void dense_backward_act_bias(T* dpre, T* db, const T* dy, const T* y, const T* pre, ActParams act,
                             index_t n, index_t h);
}  // namespace cpu
}  // namespace latent::kernels
