// Shared vocabulary of every kernel family: the host/device qualifier, the stream handle and the
// index type. Contract headers include only this file (never CUDA headers), so they compile in a
// CPU-only build and in plain C++ translation units.
#pragma once

#include <cstdint>
#include <type_traits>

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

// Calls f(std::integral_constant<Act, a>) so that the activation is a compile-time constant in
// the kernel or loop f instantiates: the switch in scalar_math.h folds away and each instance
// stays branch-free. Host code (it selects the instance to launch or run).
template <class F>
void with_act(Act a, F&& f) {
  switch (a) {
    case Act::identity:
      return f(std::integral_constant<Act, Act::identity>{});
    case Act::relu:
      return f(std::integral_constant<Act, Act::relu>{});
    case Act::leaky_relu:
      return f(std::integral_constant<Act, Act::leaky_relu>{});
    case Act::elu:
      return f(std::integral_constant<Act, Act::elu>{});
    case Act::gelu:
      return f(std::integral_constant<Act, Act::gelu>{});
    case Act::sigmoid:
      return f(std::integral_constant<Act, Act::sigmoid>{});
    case Act::tanh:
      return f(std::integral_constant<Act, Act::tanh>{});
    case Act::softplus:
      return f(std::integral_constant<Act, Act::softplus>{});
  }
}

}  // namespace latent::kernels
