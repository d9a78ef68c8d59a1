// The one place that chooses between the CPU and CUDA backends, plus the argument checks every op
// shares. An op calls
//
//   dispatch::run("exp", x,
//       [&](auto t) { using T = decltype(t); kernels::cpu::exp_forward<T>(...); },
//       [&](kernels::Stream s) { kernels::cuda::exp_forward(..., s); });
//
// or passes dispatch::no_cuda while the family has no CUDA kernel yet, which makes a CUDA call
// throw latent::Error naming the op.
#pragma once

#include <initializer_list>
#include <type_traits>

#include "core/backend.h"
#include "core/error.h"
#include "core/tensor.h"

namespace latent::dispatch {

struct NoCuda {};
inline constexpr NoCuda no_cuda{};

template <class CpuFn, class CudaFn>
void run(const char* op, Device device, DType dtype, CpuFn&& cpu, [[maybe_unused]] CudaFn&& cuda) {
  if (device.is_cpu()) {
    if (dtype == DType::f32)
      cpu(float{});
    else
      cpu(double{});
    return;
  }
  check(dtype == DType::f32, op, "float64 tensors are CPU-only, got float64 on ", device.str());
  if constexpr (std::is_same_v<std::decay_t<CudaFn>, NoCuda>) {
    throw Error(op, "has no CUDA kernel yet; run it on the CPU (tensor.to(Device::cpu()))");
  } else {
#if LATENT_WITH_CUDA
    cuda(backend::stream(device));
#else
    backend::check_device(device);  // throws: no CUDA backend in this build
#endif
  }
}

template <class CpuFn, class CudaFn>
void run(const char* op, const Tensor& like, CpuFn&& cpu, CudaFn&& cuda) {
  run(op, like.device(), like.dtype(), std::forward<CpuFn>(cpu), std::forward<CudaFn>(cuda));
}

// Device scratch for CUDA kernels that accumulate in double: `count` doubles from the device's
// stream-ordered pool, held as float32 storage (float64 tensors are CPU-only) and returned to the
// pool behind the queued kernels when the tensor goes. Undefined for count <= 0.
Tensor scratch_doubles(std::int64_t count, Device device);
// The scratch's memory as doubles; null for an undefined tensor.
double* as_doubles(const Tensor& scratch);

// Throws unless every tensor is defined.
void check_defined(const char* op, std::initializer_list<const Tensor*> ts);
// Throws unless every tensor is defined and all share one device and one dtype, naming them:
//   [add] devices differ: cpu vs cuda:0
void check_same(const char* op, std::initializer_list<const Tensor*> ts);
// Throws unless t has exactly `ndim` dimensions: "[matmul] a must be 2-D, got (3, 4, 5)".
void check_ndim(const char* op, const char* name, const Tensor& t, int ndim);

}  // namespace latent::dispatch
