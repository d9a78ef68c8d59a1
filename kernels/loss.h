// Loss family: losses fused with their reduction, and row-wise log-softmax.
//
// Element-wise losses see their inputs as [N, D] (D = the product of all dimensions but the
// first). Every forward computes the per-sample sums s[n] = sum_j loss(n, j) in double and
//   per_sample: out [N], out[n] = scale * s[n]
//   otherwise:  out [1], out[0] = scale * sum_n s[n]            (overwrites out; sums in order of
//   n)
// Every backward scales sample n's row by g[n] = scale * dout[n * stride] (stride 1 for per-sample
// values, 0 for a reduced scalar) and accumulates (+=) into the gradient buffers that are non-null.
// The op picks scale: 1 (none, sum), 1/N (batch_mean), 1/(N*D) (mean).
//
//   bce_with_logits: loss = max(x, 0) - x*t + log1p(exp(-|x|));  dx += g (sigmoid(x) - t),
//                    dt += g (-x)
//   bce_with_logits_forward_grad: the reduced forward (out [1]) and, in the same pass,
//                    dx = scale (sigmoid(x) - t) (overwrites dx): the gradient of out, known in
//                    the forward, for an op whose output's gradient is 1.
//   gaussian_nll_forward_grad: the reduced forward (out [1]) and, in the same pass,
//                    dmu = scale (mu - t) exp(-lv) (overwrites dmu), for a fixed log-variance.
//   gaussian_packed_forward_grad: the gaussian_nll of p [N, 2D] = (mu | lv) per row against
//                    t [N, D], reduced (out [1]), and dp = scale (dmean | dlogvar) (overwrites dp;
//                    skipped when null): the learned-variance decoder's loss in one pass.
//   categorical_forward_grad: for logits p [N, D*K] (K levels per input dimension, in order) and
//                    data x [N, D] in [0, 1]: the level of x[n, j] is round(x * (K - 1)) (in
//                    double), the term is logsumexp(p[n, j, :]) - p[n, j, level], reduced
//                    (out [1]); dp = scale (softmax(p[n, j, :]) - onehot(level)) (overwrites dp;
//                    skipped when null). A value of x outside [0, 1] (NaN included) makes the loss
//                    and its row of dp NaN: the caller checks its data before.
//   mse:             loss = (x - t)^2;  dx += g 2 (x - t), dt += -(that)
//   gaussian_nll:    loss = 0.5 (log(2 pi) + lv + (t - mu)^2 exp(-lv)) with lv per VarShape:
//                      full   [N, D], lv[n * D + j]
//                      row    [D],    lv[j]      (shared by the samples; dlv sums over n)
//                      scalar [1],    lv[0]      (dlv sums over everything)
//                    dmu += g (mu - t) exp(-lv), dt += -(that), dlv += g 0.5 (1 - (t - mu)^2
//                    exp(-lv)) (sums over broadcast elements in double, in a fixed order)
//
//   log_softmax_forward:  y [M, K], y[m, k] = x[m, k] - logsumexp_k x[m, :]      (overwrites y)
//   log_softmax_backward: dx[m, k] += dy[m, k] - exp(y[m, k]) sum_k dy[m, :]     (accumulates)
//
//   cross_entropy_find_bad_target: the first m whose target[m] is not an integer in [0, K)
//                    (NaN included), or -1 when all are valid. The forward and backward assume
//                    valid targets.
//   cross_entropy_forward:  per row, loss = lse[m] - x[m, target[m]] with lse [M] the row's
//                    logsumexp (written for the backward); out as above with N = M, D = K.
//   cross_entropy_backward: dx[m, k] += g[m] (exp(x[m, k] - lse[m]) - [k == target[m]])
//
// Formulas: kernels/scalar_math.h (loss section). Rows are independent: the CPU splits rows
// across threads and reduces in a fixed order, so results do not depend on the thread count.
//
// CUDA (float32): the same contract, with these differences.
//   - Sums run in double in a fixed-shape order (per row: a warp or a block; a scalar: per-block
//     partials, then one block over the partials; gaussian_nll's row-shared dlv: row chunks per
//     column, then the chunks in order), so two runs give identical bits; the order differs from
//     the CPU's, so results agree with it to rounding, not bit for bit.
//   - `scratch` is device memory for loss_scratch(n, d) doubles (m, k for cross_entropy), contents
//     ignored; null is fine where no two-pass sum runs: the per-sample forwards, and every
//     backward except gaussian_nll's with a row or scalar logvar and a non-null dlv.
//   - cross_entropy has no bad-target search (it would read the targets on the host): a row whose
//     target is not an integer in [0, K) (NaN included) gets NaN as its lse and its loss, hence a
//     NaN reduced value and a NaN gradient row, and is never used as an index.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

// How gaussian_nll's log-variance maps onto the [N, D] elements.
enum class VarShape : int { full, row, scalar };

namespace cpu {

template <class T>
void bce_with_logits_forward(T* out, const T* x, const T* t, T scale, bool per_sample, index_t n,
                             index_t d, double* scratch, Stream stream = nullptr);
template <class T>
void bce_with_logits_forward_grad(T* out, T* dx, const T* x, const T* t, T scale, index_t n,
                                  index_t d, double* scratch, Stream stream = nullptr);
template <class T>
void bce_with_logits_backward(T* dx, T* dt, const T* dout, index_t stride, T scale, const T* x,
                              const T* t, index_t n, index_t d, Stream stream = nullptr);

template <class T>
void mse_forward(T* out, const T* x, const T* t, T scale, bool per_sample, index_t n, index_t d,
                 double* scratch, Stream stream = nullptr);
template <class T>
void mse_backward(T* dx, T* dt, const T* dout, index_t stride, T scale, const T* x, const T* t,
                  index_t n, index_t d, Stream stream = nullptr);

template <class T>
void gaussian_nll_forward(T* out, const T* mu, const T* lv, VarShape vs, const T* t, T scale,
                          bool per_sample, index_t n, index_t d, double* scratch,
                          Stream stream = nullptr);
template <class T>
void gaussian_nll_forward_grad(T* out, T* dmu, const T* mu, const T* lv, VarShape vs, const T* t,
                               T scale, index_t n, index_t d, double* scratch,
                               Stream stream = nullptr);
template <class T>
void gaussian_packed_forward_grad(T* out, T* dp, const T* p, const T* t, T scale, index_t n,
                                  index_t d, double* scratch, Stream stream = nullptr);
template <class T>
void categorical_forward_grad(T* out, T* dp, const T* p, const T* x, T scale, index_t n, index_t d,
                              index_t k, double* scratch, Stream stream = nullptr);
template <class T>
void gaussian_nll_backward(T* dmu, T* dlv, T* dt, const T* dout, index_t stride, T scale,
                           const T* mu, const T* lv, VarShape vs, const T* t, index_t n, index_t d,
                           double* scratch, Stream stream = nullptr);

template <class T>
void log_softmax_forward(T* y, const T* x, index_t m, index_t k, Stream stream = nullptr);
template <class T>
void log_softmax_backward(T* dx, const T* dy, const T* y, index_t m, index_t k,
                          Stream stream = nullptr);

template <class T>
index_t cross_entropy_find_bad_target(const T* target, index_t m, index_t k);
template <class T>
void cross_entropy_forward(T* out, T* lse, const T* x, const T* target, T scale, bool per_sample,
                           index_t m, index_t k, double* scratch, Stream stream = nullptr);
template <class T>
void cross_entropy_backward(T* dx, const T* dout, index_t stride, T scale, const T* x, const T* lse,
                            const T* target, index_t m, index_t k, Stream stream = nullptr);

}  // namespace cpu

namespace cuda {

index_t loss_scratch(index_t n, index_t d);

void bce_with_logits_forward(float* out, const float* x, const float* t, float scale,
                             bool per_sample, index_t n, index_t d, double* scratch, Stream stream);
void bce_with_logits_forward_grad(float* out, float* dx, const float* x, const float* t,
                                  float scale, index_t n, index_t d, double* scratch,
                                  Stream stream);
void bce_with_logits_backward(float* dx, float* dt, const float* dout, index_t stride, float scale,
                              const float* x, const float* t, index_t n, index_t d, Stream stream);

void mse_forward(float* out, const float* x, const float* t, float scale, bool per_sample,
                 index_t n, index_t d, double* scratch, Stream stream);
void mse_backward(float* dx, float* dt, const float* dout, index_t stride, float scale,
                  const float* x, const float* t, index_t n, index_t d, Stream stream);

void gaussian_nll_forward(float* out, const float* mu, const float* lv, VarShape vs, const float* t,
                          float scale, bool per_sample, index_t n, index_t d, double* scratch,
                          Stream stream);
void gaussian_nll_forward_grad(float* out, float* dmu, const float* mu, const float* lv,
                               VarShape vs, const float* t, float scale, index_t n, index_t d,
                               double* scratch, Stream stream);
void gaussian_packed_forward_grad(float* out, float* dp, const float* p, const float* t,
                                  float scale, index_t n, index_t d, double* scratch,
                                  Stream stream);
void categorical_forward_grad(float* out, float* dp, const float* p, const float* x, float scale,
                              index_t n, index_t d, index_t k, double* scratch, Stream stream);
void gaussian_nll_backward(float* dmu, float* dlv, float* dt, const float* dout, index_t stride,
                           float scale, const float* mu, const float* lv, VarShape vs,
                           const float* t, index_t n, index_t d, double* scratch, Stream stream);

void log_softmax_forward(float* y, const float* x, index_t m, index_t k, Stream stream);
void log_softmax_backward(float* dx, const float* dy, const float* y, index_t m, index_t k,
                          Stream stream);

void cross_entropy_forward(float* out, float* lse, const float* x, const float* target, float scale,
                           bool per_sample, index_t m, index_t k, double* scratch, Stream stream);
void cross_entropy_backward(float* dx, const float* dout, index_t stride, float scale,
                            const float* x, const float* lse, const float* target, index_t m,
                            index_t k, Stream stream);

}  // namespace cuda
}  // namespace latent::kernels
