// Dense-layer epilogues: what surrounds the GEMMs of y = act(x W^T + b) (kernels/gemm.h).
//
//   dense_bias_act_forward:   y [N, H] holds x W^T on entry (from the GEMM); in one pass
//                             pre[r, c] = y[r, c] + b[c]      (pre written only when non-null)
//                             y[r, c]   = act(pre[r, c])      (in place)
//                             b [H] may be null (no bias).
//   dense_backward_act_bias:  g[r, c] = dy[r, c] * act'(pre[r, c])
//                             dpre [N, H] = g                 (overwrites; skipped when null;
//                                                              may be dy itself)
//                             db [H] (+)= sum_r g[r, c]       (adds when add_db, else stores;
//                                                              skipped when null)
//                             act' comes from pre when pre is non-null, else from the output y
//                             (math::act_grad_from_output; not for gelu, nor for leaky_relu or
//                             elu with a negative alpha: those need pre). Neither is read for
//                             identity.
//   dense_backward_weight:    dw [H, D] (+)= dz^T [H, N] x [N, D]   (one GEMM; adds when add_w)
//                             db [H] (+)= sum_r dz[r, c]      (when db is non-null)
//   dense_backward_input:     dx [N, D] (+)= dz [N, H] w [H, D]      (one GEMM; adds when add_x)
//                             and, for a layer whose input is act_in(pre_in) (act_in not
//                             identity; add_x must then be false): dx[r, c] *= act_in'(pre_in)
//                             (or from the input y_in, as above), which makes dx the gradient of
//                             pre_in, and db_in [D] (+)= sum_r dx[r, c] when non-null: the
//                             previous layer's bias gradient. A stack of layers thus needs two
//                             GEMMs per layer in its backward and nothing in between.
// Formulas: kernels/scalar_math.h. CPU: column sums run in double, in row order, one column per
// thread, so db does not depend on the thread count. CUDA: each block sums a tile of rows for a
// stripe of 32 columns in double; a second tiny kernel adds the tiles' partials per column in a
// fixed order (no atomics, identical bits run to run).
#pragma once

#include "kernels/common.h"
#include "kernels/scalar_math.h"

namespace latent::kernels {

// Whether act' cannot be recovered from the layer's output, so the backward needs pre.
inline bool dense_needs_pre(ActParams act) {
  const ActInfo* info = act_info(act.act);
  return !info || !info->grad_from_output ||
         ((act.act == Act::leaky_relu || act.act == Act::elu) && act.alpha < 0.0f);
}

namespace cpu {
// The whole forward: y [N, H] = act(x [N, D] w^T + b), with w [H, D], b [H] or null, and
// pre [N, H] = x w^T + b when pre is non-null: the GEMM, then dense_bias_act_forward (skipped for
// identity without bias and pre). Overwrites y (and pre).
template <class T>
void dense_forward(T* y, T* pre, const T* x, const T* w, const T* b, ActParams act, index_t n,
                   index_t d, index_t h, Stream stream = nullptr);
template <class T>
void dense_bias_act_forward(T* y, T* pre, const T* b, ActParams act, index_t n, index_t h,
                            Stream stream = nullptr);
// scratch: unused on the CPU (its column sums live in locals); the GPU's needs it.
template <class T>
void dense_backward_act_bias(T* dpre, T* db, bool add_db, double* scratch, const T* dy, const T* y,
                             const T* pre, ActParams act, index_t n, index_t h,
                             Stream stream = nullptr);
template <class T>
void dense_backward_weight(T* dw, bool add_w, T* db, bool add_db, double* scratch, const T* dz,
                           const T* x, index_t n, index_t d, index_t h, Stream stream = nullptr);
template <class T>
void dense_backward_input(T* dx, bool add_x, T* db_in, bool add_db, double* scratch, const T* dz,
                          const T* w, const T* y_in, const T* pre_in, ActParams act_in, index_t n,
                          index_t d, index_t h, Stream stream = nullptr);
}  // namespace cpu

namespace cuda {
// How the GPU forward applies bias and activation after the product:
//   own       cuBLAS GEMM, then dense_bias_act_forward (every activation; the default).
//   cublaslt  one cuBLASLt matmul with its bias/relu epilogue, for identity and relu when pre is
//             not wanted (the epilogue computes the very same function there). Everything else,
//             and shapes cuBLASLt has no algorithm for, takes the `own` path. cuBLASLt's GELU
//             epilogue is the tanh approximation, not latent's exact erf gelu: never used.
// Both exist so that a benchmark can measure one against the other.
enum class DenseEpilogue : int { own = 0, cublaslt = 1 };
// The path dense_forward takes, process-wide (default: own).
void set_dense_epilogue(DenseEpilogue epilogue);
DenseEpilogue dense_epilogue();
// The dense forwards that took the cuBLASLt path so far in this process: what tells a benchmark
// whether a forward asked for `cublaslt` ran there or fell back to `own`.
std::int64_t dense_cublaslt_forwards();

// The CPU's dense_forward, on the path set_dense_epilogue chose.
void dense_forward(float* y, float* pre, const float* x, const float* w, const float* b,
                   ActParams act, index_t n, index_t d, index_t h, Stream stream);
// The contract above, on the GPU.
void dense_bias_act_forward(float* y, float* pre, const float* b, ActParams act, index_t n,
                            index_t h, Stream stream);
// Doubles of device scratch dense_backward_act_bias needs for db (0: scratch may be null); the
// same for dense_backward_weight with (n, h) and dense_backward_input with (n, d).
index_t dense_backward_scratch(index_t n, index_t h);
void dense_backward_act_bias(float* dpre, float* db, bool add_db, double* scratch, const float* dy,
                             const float* y, const float* pre, ActParams act, index_t n, index_t h,
                             Stream stream);
// The GEMM through cuBLAS, then (where a bias gradient or an activation is asked for) the
// act/bias pass of dense_backward_act_bias on the product: two launches then.
void dense_backward_weight(float* dw, bool add_w, float* db, bool add_db, double* scratch,
                           const float* dz, const float* x, index_t n, index_t d, index_t h,
                           Stream stream);
void dense_backward_input(float* dx, bool add_x, float* db_in, bool add_db, double* scratch,
                          const float* dz, const float* w, const float* y_in, const float* pre_in,
                          ActParams act_in, index_t n, index_t d, index_t h, Stream stream);
}  // namespace cuda
}  // namespace latent::kernels
