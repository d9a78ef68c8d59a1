#include "kernels/axpy.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"

namespace latent::kernels::cuda {
namespace {

__global__ void axpy_kernel(float* __restrict__ y, const float* __restrict__ x, float alpha,
                            index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void scale_kernel(float* __restrict__ y, float alpha, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    y[i] *= alpha;
}

__global__ void add_scaled_kernel(float* y, float* wb, const float* a, const float* b,
                                  const float* __restrict__ w, index_t n) {
  const float s = *w;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    const float v = s * b[i];
    if (wb) wb[i] = v;
    y[i] = a[i] + v;
  }
}

// With a ramp: one block. Every thread computes the weight from the count, then thread 0 writes
// it and counts the step once all have read the count.
__global__ void add_scaled_ramp_kernel(float* y, float* wb, const float* a, const float* b,
                                       float* w, Ramp ramp, index_t n) {
  const float s = static_cast<float>(ramp.scale * ramp_factor(ramp, *ramp.step));
  for (index_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = s * b[i];
    if (wb) wb[i] = v;
    y[i] = a[i] + v;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    *w = s;
    *ramp.step += 1;
  }
}

__global__ void accumulate_scalars_kernel(double* acc, ScalarList<float> values, double w) {
  const int k = static_cast<int>(threadIdx.x);
  if (k < values.count) acc[k] += w * static_cast<double>(values.v[k][0]);
}

}  // namespace

void accumulate_scalars(double* acc, ScalarList<float> values, double w, Stream stream) {
  if (values.count <= 0) return;
  accumulate_scalars_kernel<<<1, kMaxScalars, 0, stream>>>(acc, values, w);
  LATENT_LAUNCH_CHECK(accumulate_scalars_kernel);
}

void add_scaled(float* y, float* wb, const float* a, const float* b, float* w, Ramp ramp, index_t n,
                Stream stream) {
  if (!ramp.step) {
    LATENT_LAUNCH_LINEAR(add_scaled_kernel, n, stream, y, wb, a, b, w, n);
    return;
  }
  // The count moves even for an empty sum: the step was taken.
  add_scaled_ramp_kernel<<<1, kThreads, 0, stream>>>(y, wb, a, b, w, ramp, n);
  LATENT_LAUNCH_CHECK(add_scaled_ramp_kernel);
}

void axpy(float* y, const float* x, float alpha, index_t n, Stream stream) {
  LATENT_LAUNCH_LINEAR(axpy_kernel, n, stream, y, x, alpha, n);
}

void scale(float* y, float alpha, index_t n, Stream stream) {
  LATENT_LAUNCH_LINEAR(scale_kernel, n, stream, y, alpha, n);
}

}  // namespace latent::kernels::cuda
