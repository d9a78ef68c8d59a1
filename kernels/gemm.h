// General matrix product on the CPU, row-major, BLAS semantics:
//   C = alpha * op(A) * op(B) + beta * C
//   op(A) [m, k]: A is [m, k] with row stride lda (>= k), or [k, m] with lda >= m when trans_a
//   op(B) [k, n]: B is [k, n] with row stride ldb (>= n), or [n, k] with ldb >= k when trans_b
//   C     [m, n] with row stride ldc >= n
// beta == 0 overwrites C without reading it (NaN or garbage in C does not propagate); k == 0 or
// alpha == 0 gives C = beta * C. C must not alias A or B.
//
// Cache-blocked with packed panels and a register-tiled micro-kernel, parallel over tiles of C
// with OpenMP. Every element of C is computed by one thread in a fixed order of k, so the result
// does not depend on the number of threads.
#pragma once

#include "kernels/common.h"

namespace latent::kernels::cpu {

template <class T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
          index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc);

}  // namespace latent::kernels::cpu
