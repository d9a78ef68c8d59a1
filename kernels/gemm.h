// General matrix product on the CPU, row-major, BLAS semantics:
//   C = alpha * op(A) * op(B) + beta * C
//   op(A) [m, k]: A is [m, k] with row stride lda (>= k), or [k, m] with lda >= m when trans_a
//   op(B) [k, n]: B is [k, n] with row stride ldb (>= n), or [n, k] with ldb >= k when trans_b
//   C     [m, n] with row stride ldc >= n
// beta == 0 overwrites C without reading it (NaN or garbage in C does not propagate); k == 0 or
// alpha == 0 gives C = beta * C. C must not alias A or B.
//
// CPU: OpenBLAS (cblas_sgemm / cblas_dgemm) in a build with it (LATENT_BLAS, the OpenMP build of
// OpenBLAS, whose threads are OpenMP's). OpenBLAS splits C among its threads by rows and columns,
// never along k, so every element is one thread's sum in a fixed order of k and the result does
// not depend on the number of threads (the tests check it). Without OpenBLAS, or after
// set_gemm_impl(GemmImpl::own): latent's own kernel, cache-blocked with packed panels and a
// register-tiled micro-kernel, parallel over tiles of C with OpenMP, with the same guarantee. The
// two give different last bits (another summation order).
//
// CUDA (float32, device pointers): cuBLAS, row-major through the column-major identity
// C^T = op(B)^T op(A)^T, on the device's one handle and workspace (kernels/cublas_handle.h).
// Results repeat bit for bit run to run on one GPU model (cuBLAS with one stream and atomics
// off); they differ from the CPU's in the last bits (another summation order). beta == 0, k == 0
// and alpha == 0 behave as on the CPU.
#pragma once

#include "kernels/common.h"

namespace latent::kernels {

namespace cpu {
template <class T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
          index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc, Stream stream = nullptr);

// Which implementation the CPU GEMMs use, process-wide, from the next GEMM on (the benchmarks
// time both). The default is `blas` in a build with OpenBLAS, else `own`; choosing `blas` in a
// build without it throws latent::Error. A GEMM whose sizes exceed OpenBLAS's 32-bit integers
// uses the own kernel.
enum class GemmImpl { blas, own };
void set_gemm_impl(GemmImpl impl);
GemmImpl gemm_impl();
// Whether this build has OpenBLAS, and its description ("OpenBLAS 0.3.21 ... MAX_THREADS=64",
// openblas_get_config()); "none" without.
bool gemm_has_blas();
const char* gemm_blas_config();
}  // namespace cpu

namespace cuda {
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc,
          Stream stream);

// TF32 tensor cores for every float32 GEMM on the GPU (cuBLAS and cuBLASLt), process-wide, from
// the next GEMM on. Off by default: products in full float32, within float rounding of the CPU.
// On: inputs rounded to 10 mantissa bits (relative error about 1e-3), several times faster for
// large GEMMs on Ampere and later.
void set_tf32(bool enabled);
bool tf32_enabled();
}  // namespace cuda

}  // namespace latent::kernels
