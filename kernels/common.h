// Shared vocabulary of every kernel family: the host/device qualifier, the stream handle and the
// index type. Contract headers include only this file (never CUDA headers), so they compile in a
// CPU-only build and in plain C++ translation units.
#pragma once

#include <cmath>
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

// How a backward kernel writes a gradient: o += v when `add`, else o = v (the first write of a
// backward pass, whose buffer holds nothing yet: autograd's GradSink::grad_out).
template <class T>
LATENT_HD void put(T& o, T v, bool add) {
  o = add ? o + v : v;
}

// Every activation, one row each (adding one is a row here plus its formulas in scalar_math.h):
//   X(name, grad_from_output, kaiming, gain)
//   grad_from_output  act' can be recovered from the output y = act(pre) for alpha >= 0, so a
//                     dense layer's backward needs no pre (math::act_grad_from_output)
//   kaiming           the layers before it are initialized Kaiming-style (the relu family)
//   gain              the default init gain; `alpha` is the activation's parameter
// The numbering (row order) is part of the checkpoint format (stored in model configs): append,
// never reorder.
#define LATENT_ACTIVATIONS(X)                                  \
  X(identity, true, false, 1.0)                                \
  X(relu, true, true, 1.4142135623730951)                      \
  X(leaky_relu, true, true, sqrt(2.0 / (1.0 + alpha * alpha))) \
  X(elu, true, true, 1.4142135623730951)                       \
  X(gelu, false, true, 1.4142135623730951)                     \
  X(sigmoid, true, false, 1.0)                                 \
  X(tanh, true, false, 5.0 / 3.0)                              \
  X(softplus, true, false, 1.0)

// Activations of the fused dense layer and of the standalone activation ops.
#define LATENT_ACT_ENUM(name, from_output, kaiming, gain) name,
enum class Act : int { LATENT_ACTIVATIONS(LATENT_ACT_ENUM) };
#undef LATENT_ACT_ENUM
#define LATENT_ACT_COUNT(name, from_output, kaiming, gain) +1
inline constexpr int kActCount = 0 LATENT_ACTIVATIONS(LATENT_ACT_COUNT);
#undef LATENT_ACT_COUNT

// The table's columns (but the gain) for each code, in row order.
struct ActInfo {
  const char* name;       // "relu"
  const char* grad_name;  // "relu_grad": its derivative as an op
  bool grad_from_output;
  bool kaiming;
};
#define LATENT_ACT_INFO(name, from_output, kaiming, gain) \
  ActInfo{#name, #name "_grad", from_output, kaiming},
inline constexpr ActInfo kActInfo[] = {LATENT_ACTIVATIONS(LATENT_ACT_INFO)};
#undef LATENT_ACT_INFO

// The row of `a`, or null for a code outside the table.
inline const ActInfo* act_info(Act a) {
  const int i = static_cast<int>(a);
  return i >= 0 && i < kActCount ? &kActInfo[i] : nullptr;
}
inline double act_gain(Act a, double alpha) {
  using std::sqrt;
  switch (a) {
#define LATENT_ACT_CASE(name, from_output, kaiming, gain) \
  case Act::name:                                         \
    return gain;
    LATENT_ACTIVATIONS(LATENT_ACT_CASE)
#undef LATENT_ACT_CASE
  }
  return 1.0;
}

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
#define LATENT_ACT_CASE(name, from_output, kaiming, gain) \
  case Act::name:                                         \
    return f(std::integral_constant<Act, Act::name>{});
    LATENT_ACTIVATIONS(LATENT_ACT_CASE)
#undef LATENT_ACT_CASE
  }
}

}  // namespace latent::kernels
