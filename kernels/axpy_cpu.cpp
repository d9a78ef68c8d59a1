#include "kernels/axpy.h"

namespace latent::kernels::cpu {

template <class T>
void axpy(T* __restrict y, const T* __restrict x, T alpha, index_t n, Stream) {
  if (alpha == T(1)) {
    for (index_t i = 0; i < n; ++i) y[i] += x[i];
  } else {
    for (index_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }
}

template <class T>
void scale(T* y, T alpha, index_t n, Stream) {
  for (index_t i = 0; i < n; ++i) y[i] *= alpha;
}

template void axpy<float>(float*, const float*, float, index_t, Stream);
template void axpy<double>(double*, const double*, double, index_t, Stream);
template void scale<float>(float*, float, index_t, Stream);
template void scale<double>(double*, double, index_t, Stream);

}  // namespace latent::kernels::cpu
