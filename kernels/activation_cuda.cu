#include <type_traits>

#include "kernels/activation.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

// The four element-wise maps of the family, one kernel template: the activation and the map are
// compile-time constants, so each instance is a straight-line loop body.
enum class Map { forward, backward, grad_forward, grad_backward };

template <Map M, Act A>
__global__ void activation_kernel(float* __restrict__ out, bool add, const float* __restrict__ dy,
                                  const float* __restrict__ x, float alpha, index_t n) {
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    if constexpr (M == Map::forward)
      out[i] = math::act_forward(A, alpha, x[i]);
    else if constexpr (M == Map::backward)
      put(out[i], dy[i] * math::act_grad(A, alpha, x[i]), add);
    else if constexpr (M == Map::grad_forward)
      out[i] = math::act_grad(A, alpha, x[i]);
    else
      put(out[i], dy[i] * math::act_grad2(A, alpha, x[i]), add);
  }
}

template <Map M, Act A>
void launch_as(float* out, bool add, const float* dy, const float* x, float alpha, index_t n,
               Stream stream) {
  activation_kernel<M, A><<<grid_for(n), kThreads, 0, stream>>>(out, add, dy, x, alpha, n);
  LATENT_LAUNCH_CHECK(activation_kernel);
}

template <Map M>
void launch(float* out, bool add, const float* dy, const float* x, ActParams p, index_t n,
            Stream stream) {
  if (n <= 0) return;
  switch (p.act) {
    case Act::identity:
      return launch_as<M, Act::identity>(out, add, dy, x, p.alpha, n, stream);
    case Act::relu:
      return launch_as<M, Act::relu>(out, add, dy, x, p.alpha, n, stream);
    case Act::leaky_relu:
      return launch_as<M, Act::leaky_relu>(out, add, dy, x, p.alpha, n, stream);
    case Act::elu:
      return launch_as<M, Act::elu>(out, add, dy, x, p.alpha, n, stream);
    case Act::gelu:
      return launch_as<M, Act::gelu>(out, add, dy, x, p.alpha, n, stream);
    case Act::sigmoid:
      return launch_as<M, Act::sigmoid>(out, add, dy, x, p.alpha, n, stream);
    case Act::tanh:
      return launch_as<M, Act::tanh>(out, add, dy, x, p.alpha, n, stream);
    case Act::softplus:
      return launch_as<M, Act::softplus>(out, add, dy, x, p.alpha, n, stream);
  }
}

}  // namespace

void activation_forward(float* y, const float* x, ActParams p, index_t n, Stream stream) {
  launch<Map::forward>(y, false, nullptr, x, p, n, stream);
}

void activation_backward(float* dx, bool add, const float* dy, const float* x, ActParams p,
                         index_t n, Stream stream) {
  launch<Map::backward>(dx, add, dy, x, p, n, stream);
}

void activation_grad_forward(float* g, const float* x, ActParams p, index_t n, Stream stream) {
  launch<Map::grad_forward>(g, false, nullptr, x, p, n, stream);
}

void activation_grad_backward(float* dx, bool add, const float* dy, const float* x, ActParams p,
                              index_t n, Stream stream) {
  launch<Map::grad_backward>(dx, add, dy, x, p, n, stream);
}

}  // namespace latent::kernels::cuda
