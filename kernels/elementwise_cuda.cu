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

// Broadcast operands: the gradient is a sum over the broadcast elements, taken in double (as on the
// CPU) and in a fixed order, so it is deterministic and agrees with the CPU reference to float
// rounding of the final value.

// Row operand [cols]: one thread per column sums over rows in order (coalesced across the threads
// of a warp).
__global__ void grad_row_kernel(float* __restrict__ d, bool add, int which,
                                const float* __restrict__ dy, const float* a, Bcast ba,
                                const float* b, Bcast bb, math::Binary op, index_t rows,
                                index_t cols) {
  for (index_t c = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; c < cols;
       c += static_cast<index_t>(gridDim.x) * blockDim.x) {
    double acc = 0.0;
    for (index_t r = 0; r < rows; ++r)
      acc += static_cast<double>(dy[r * cols + c] * partial(which, op, a, ba, b, bb, r, c, cols));
    d[c] = add ? d[c] + static_cast<float>(acc) : static_cast<float>(acc);
  }
}

// Column operand [rows] or scalar: one block per row (or one block for everything), a fixed-shape
// tree reduction in shared memory (deterministic).
__global__ void grad_rowsum_kernel(float* __restrict__ d, bool add, int which,
                                   const float* __restrict__ dy, const float* a, Bcast ba,
                                   const float* b, Bcast bb, math::Binary op, index_t rows,
                                   index_t cols, bool scalar) {
  __shared__ double buf[kThreads];
  const index_t r0 = scalar ? 0 : blockIdx.x;
  const index_t r1 = scalar ? rows : blockIdx.x + 1;
  double acc = 0.0;
  for (index_t r = r0; r < r1; ++r)
    for (index_t c = threadIdx.x; c < cols; c += blockDim.x)
      acc += static_cast<double>(dy[r * cols + c] * partial(which, op, a, ba, b, bb, r, c, cols));
  buf[threadIdx.x] = acc;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    float& o = d[scalar ? 0 : blockIdx.x];
    o = add ? o + static_cast<float>(buf[0]) : static_cast<float>(buf[0]);
  }
}

void grad_of(float* d, bool add, int which, Bcast mode, const float* dy, const float* a, Bcast ba,
             const float* b, Bcast bb, math::Binary op, index_t rows, index_t cols, Stream stream) {
  switch (mode) {
    case Bcast::full:
      LATENT_LAUNCH_LINEAR(grad_full_kernel, rows * cols, stream, d, add, which, dy, a, ba, b, bb,
                           op, rows, cols);
      break;
    case Bcast::row:
      LATENT_LAUNCH_LINEAR(grad_row_kernel, cols, stream, d, add, which, dy, a, ba, b, bb, op, rows,
                           cols);
      break;
    case Bcast::col:
      grad_rowsum_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
          d, add, which, dy, a, ba, b, bb, op, rows, cols, false);
      LATENT_LAUNCH_CHECK(grad_rowsum_kernel);
      break;
    case Bcast::scalar:
      grad_rowsum_kernel<<<1, kThreads, 0, stream>>>(d, add, which, dy, a, ba, b, bb, op, rows,
                                                     cols, true);
      LATENT_LAUNCH_CHECK(grad_rowsum_kernel);
      break;
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
  if (rows * cols == 0) {
    // Nothing flows back, but a broadcast operand's gradient (the bias of an empty batch) is
    // still written when it is not accumulated: zeros, as on the CPU.
    auto zero = [&](float* d, bool add, Bcast m) {
      if (d == nullptr || add || m == Bcast::full) return;
      const index_t len = m == Bcast::row ? cols : m == Bcast::col ? rows : 1;
      if (len > 0)
        LATENT_CUDA_CHECK(
            cudaMemsetAsync(d, 0, static_cast<std::size_t>(len) * sizeof(float), stream));
    };
    zero(da, add_a, ba);
    zero(db, add_b, bb);
    return;
  }
  if (da) grad_of(da, add_a, 0, ba, dy, a, ba, b, bb, op, rows, cols, stream);
  if (db) grad_of(db, add_b, 1, bb, dy, a, ba, b, bb, op, rows, cols, stream);
}

}  // namespace latent::kernels::cuda
