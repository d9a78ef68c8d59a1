#include <atomic>

#include "kernels/cublas_handle.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/gemm.h"

namespace latent::kernels::cuda {
namespace {

std::atomic<bool> g_tf32{false};

// C = beta * C over [m, n] with row stride ldc; beta == 0 writes zeros without reading C, so NaN
// or garbage there does not propagate (BLAS semantics, as on the CPU).
__global__ void scale_matrix_kernel(float* __restrict__ c, index_t ldc, float beta, index_t m,
                                    index_t n) {
  const index_t total = m * n;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / n, col = i - r * n;
    float* p = c + r * ldc + col;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

}  // namespace

void set_tf32(bool enabled) {
  g_tf32.store(enabled, std::memory_order_relaxed);
}

bool tf32_enabled() {
  return g_tf32.load(std::memory_order_relaxed);
}

void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, float alpha, const float* a,
          index_t lda, const float* b, index_t ldb, float beta, float* c, index_t ldc,
          Stream stream) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0.0f) {
    // No product to form: cuBLAS would be asked for a degenerate GEMM, so do C = beta * C here.
    if (beta == 1.0f) return;
    LATENT_LAUNCH_LINEAR(scale_matrix_kernel, m * n, stream, c, ldc, beta, m, n);
    return;
  }
  BlasLease lease(stream);
  // Default math keeps float32 products; TF32 only when asked for.
  LATENT_CUBLAS_CHECK(cublasSetMathMode(
      lease.blas(), tf32_enabled() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  // Row-major C [m, n] is column-major C^T [n, m] = op(B)^T op(A)^T, and a row-major operand read
  // as column-major is its transpose: so B goes first, A second, each with its own flag.
  LATENT_CUBLAS_CHECK(cublasSgemm_64(lease.blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                     a, lda, &beta, c, ldc));
}

}  // namespace latent::kernels::cuda
