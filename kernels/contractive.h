// Contractive family: the penalty ||df/dx||_F^2 of a dense encoder and the two building blocks of
// the Jacobian chain of a deep one. a' and a'' are the activation's first and second derivatives
// (kernels/scalar_math.h: act_grad, act_grad2) at the pre-activation.
//
//   contractive_forward:  pre [N, H], w [H, D]; with c_j = ||w_j||^2 (row norms, computed once)
//                         per_sample: out [N], out[n] = scale * sum_j a'(pre[n, j])^2 * c_j
//                         otherwise:  out [1], out[0] = scale * sum_n (the same)
//                         (overwrites out; sums in double, in a fixed order)
//   contractive_backward: g_n = scale * dout[n * stride_n] (stride 1 per sample, 0 for a scalar)
//                         dpre[n, j] (+)= g_n * 2 a'(pre) a''(pre) c_j
//                         dw[j, :]   (+)= (sum_n g_n a'(pre[n, j])^2) * 2 w[j, :]
//                         (null gradient pointers are skipped)
//
//   jacobian_seed_forward:  d [N, Z], w [Z, H] -> out [N*Z, H], out[n*Z + z, h] = d[n, z] w[z, h]
//   jacobian_seed_backward: dd[n, z] (+)= sum_h dout[n*Z + z, h] w[z, h]
//                           dw[z, h] (+)= sum_n dout[n*Z + z, h] d[n, z]
//   scale_rows_forward:     m [N*G, H], d [N, H] -> out [N*G, H],
//                           out[n*G + g, h] = m[n*G + g, h] d[n, h]
//   scale_rows_backward:    dm[n*G + g, h] (+)= dout[n*G + g, h] d[n, h]
//                           dd[n, h] (+)= sum_g dout[n*G + g, h] m[n*G + g, h]
// Forward kernels overwrite; backward kernels add to a gradient whose add_* flag is set and store
// into it otherwise (the first write of a pass, kernels::put), writing all of it even when N is 0.
// Every sum runs in double in a fixed order, so results do not depend on the thread count.
//
// CUDA (float32): the same contract. Sums run in double in a fixed-shape order (warp or block per
// row; reduced penalty: per-block partials, then one block; sums over samples: row chunks per
// column, then the chunks in order), so two runs give identical bits. `scratch` is device memory
// for contractive_scratch(n, h) doubles (contractive_forward/backward) or
// jacobian_seed_scratch(n, z, h) doubles (jacobian_seed_backward with a non-null dw, else null);
// contents ignored.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {
namespace cpu {

template <class T>
void contractive_forward(T* out, const T* pre, const T* w, Act act, T alpha, T scale,
                         bool per_sample, index_t n, index_t h, index_t d, double* scratch,
                         Stream stream = nullptr);
template <class T>
void contractive_backward(T* dpre, bool add_pre, T* dw, bool add_w, const T* dout, index_t stride_n,
                          T scale, const T* pre, const T* w, Act act, T alpha, index_t n, index_t h,
                          index_t d, double* scratch, Stream stream = nullptr);

template <class T>
void jacobian_seed_forward(T* out, const T* d, const T* w, index_t n, index_t z, index_t h,
                           Stream stream = nullptr);
template <class T>
void jacobian_seed_backward(T* dd, bool add_d, T* dw, bool add_w, const T* dout, const T* d,
                            const T* w, index_t n, index_t z, index_t h, double* scratch,
                            Stream stream = nullptr);

template <class T>
void scale_rows_forward(T* out, const T* m, const T* d, index_t n, index_t g, index_t h,
                        Stream stream = nullptr);
template <class T>
void scale_rows_backward(T* dm, bool add_m, T* dd, bool add_d, const T* dout, const T* m,
                         const T* d, index_t n, index_t g, index_t h, Stream stream = nullptr);

}  // namespace cpu

namespace cuda {

index_t contractive_scratch(index_t n, index_t h);
void contractive_forward(float* out, const float* pre, const float* w, Act act, float alpha,
                         float scale, bool per_sample, index_t n, index_t h, index_t d,
                         double* scratch, Stream stream);
void contractive_backward(float* dpre, bool add_pre, float* dw, bool add_w, const float* dout,
                          index_t stride_n, float scale, const float* pre, const float* w, Act act,
                          float alpha, index_t n, index_t h, index_t d, double* scratch,
                          Stream stream);

void jacobian_seed_forward(float* out, const float* d, const float* w, index_t n, index_t z,
                           index_t h, Stream stream);
index_t jacobian_seed_scratch(index_t n, index_t z, index_t h);
void jacobian_seed_backward(float* dd, bool add_d, float* dw, bool add_w, const float* dout,
                            const float* d, const float* w, index_t n, index_t z, index_t h,
                            double* scratch, Stream stream);

void scale_rows_forward(float* out, const float* m, const float* d, index_t n, index_t g, index_t h,
                        Stream stream);
void scale_rows_backward(float* dm, bool add_m, float* dd, bool add_d, const float* dout,
                         const float* m, const float* d, index_t n, index_t g, index_t h,
                         Stream stream);

}  // namespace cuda
}  // namespace latent::kernels
