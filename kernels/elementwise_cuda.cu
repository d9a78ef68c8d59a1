#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/elementwise.h"

namespace latent::kernels::cuda {
namespace {

__device__ __forceinline__ index_t at(Bcast m, index_t r, index_t c, index_t cols) {
  switch (m) {
    case Bcast::full:
      return r * cols + c;
    case Bcast::row:
      return c;
    case Bcast::col:
      return r;
    case Bcast::scalar:
      return 0;
  }
  return 0;
}

__global__ void unary_forward_kernel(float* __restrict__ y, const float* __restrict__ x,
                                     math::Unary op, float p0, float p1, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] = math::unary_forward(op, x[i], p0, p1);
}

__global__ void unary_backward_kernel(float* __restrict__ dx, bool add,
                                      const float* __restrict__ dy, const float* __restrict__ x,
                                      const float* __restrict__ y, math::Unary op, float p0,
                                      float p1, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const float g = dy[i] * math::unary_grad(op, x[i], y[i], p0, p1);
    dx[i] = add ? dx[i] + g : g;
  }
}

__global__ void binary_forward_kernel(float* __restrict__ y, const float* __restrict__ a, Bcast ba,
                                      const float* __restrict__ b, Bcast bb, math::Binary op,
                                      index_t rows, index_t cols) {
  const index_t n = rows * cols;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / cols, c = i - r * cols;
    y[i] = math::binary_forward(op, a[at(ba, r, c, cols)], b[at(bb, r, c, cols)]);
  }
}

// d(op)/d(operand) at (r, c), for operand 0 (a) or 1 (b).
__device__ __forceinline__ float partial(int which, math::Binary op, const float* a, Bcast ba,
                                         const float* b, Bcast bb, index_t r, index_t c,
                                         index_t cols) {
  const float av = a[at(ba, r, c, cols)], bv = b[at(bb, r, c, cols)];
  return which == 0 ? math::binary_grad_a(op, av, bv) : math::binary_grad_b(op, av, bv);
}

// Full operand: one thread per element.
__global__ void grad_full_kernel(float* __restrict__ d, bool add, int which,
                                 const float* __restrict__ dy, const float* a, Bcast ba,
                                 const float* b, Bcast bb, math::Binary op, index_t rows,
                                 index_t cols) {
  const index_t n = rows * cols;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const index_t r = i / cols, c = i - r * cols;
    const float v = dy[i] * partial(which, op, a, ba, b, bb, r, c, cols);
    d[i] = add ? d[i] + v : v;
  }
}

}  // namespace

void unary_forward(float* y, const float* x, math::Unary op, float p0, float p1, index_t n,
                   Stream stream) {
  LATENT_LAUNCH_LINEAR(unary_forward_kernel, n, stream, y, x, op, p0, p1, n);
}

void unary_backward(float* dx, bool add, const float* dy, const float* x, const float* y,
                    math::Unary op, float p0, float p1, index_t n, Stream stream) {
  LATENT_LAUNCH_LINEAR(unary_backward_kernel, n, stream, dx, add, dy, x, y, op, p0, p1, n);
}

void binary_forward(float* y, const float* a, Bcast ba, const float* b, Bcast bb, math::Binary op,
                    index_t rows, index_t cols, Stream stream) {
  LATENT_LAUNCH_LINEAR(binary_forward_kernel, rows * cols, stream, y, a, ba, b, bb, op, rows, cols);
}

void binary_backward(float* da, bool add_a, float* db, bool add_b, const float* dy, const float* a,
                     Bcast ba, const float* b, Bcast bb, math::Binary op, index_t rows,
                     index_t cols, Stream stream) {
  check_full_gradients(da, ba, db, bb);
  if (rows * cols == 0) return;
  if (da)
    LATENT_LAUNCH_LINEAR(grad_full_kernel, rows * cols, stream, da, add_a, 0, dy, a, ba, b, bb, op,
                         rows, cols);
  if (db)
    LATENT_LAUNCH_LINEAR(grad_full_kernel, rows * cols, stream, db, add_b, 1, dy, a, ba, b, bb, op,
                         rows, cols);
}

}  // namespace latent::kernels::cuda
