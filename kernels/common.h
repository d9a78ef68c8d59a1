// Shared vocabulary of every kernel family: the host/device qualifier, the stream handle and the
// index type. Contract headers include only this file (never CUDA headers), so they compile in a
// CPU-only build and in plain C++ translation units.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LATENT_HD __host__ __device__ __forceinline__
#else
#define LATENT_HD inline
#endif

// cudaStream_t is `struct CUstream_st*`; naming the struct here keeps CUDA headers out of the
// contracts while staying the very same type.
struct CUstream_st;

namespace latent::kernels {

using index_t = std::int64_t;
using Stream = CUstream_st*;

// Activations of the fused dense layer and of the standalone activation ops. The numbering is
// part of the checkpoint format (stored in model configs): append, never reorder.
enum class Act : int {
  identity = 0,
  relu = 1,
  leaky_relu = 2,
  elu = 3,
  gelu = 4,
  sigmoid = 5,
  tanh = 6,
  softplus = 7,
};

// Parameters some activations take (leaky_relu: negative slope; elu: alpha). Others ignore it.
struct ActParams {
  Act act = Act::identity;
  float alpha = 0.0f;
};

}  // namespace latent::kernels
