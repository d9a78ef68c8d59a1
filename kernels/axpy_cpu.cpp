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

template <class T>
void add_scaled(T* y, T* wb, const T* a, const T* b, T* w, Ramp ramp, index_t n, Stream) {
  if (ramp.step) {
    *w = static_cast<T>(ramp.scale * ramp_factor(ramp, *ramp.step));
    *ramp.step += 1;
  }
  const T s = *w;
  for (index_t i = 0; i < n; ++i) {
    const T v = s * b[i];
    if (wb) wb[i] = v;
    y[i] = a[i] + v;
  }
}

template <class T>
void accumulate_scalars(double* acc, ScalarList<T> values, double w, Stream) {
  for (int k = 0; k < values.count; ++k) acc[k] += w * static_cast<double>(values.v[k][0]);
}

template void accumulate_scalars<float>(double*, ScalarList<float>, double, Stream);
template void accumulate_scalars<double>(double*, ScalarList<double>, double, Stream);
template void add_scaled<float>(float*, float*, const float*, const float*, float*, Ramp, index_t,
                                Stream);
template void add_scaled<double>(double*, double*, const double*, const double*, double*, Ramp,
                                 index_t, Stream);
template void axpy<float>(float*, const float*, float, index_t, Stream);
template void axpy<double>(double*, const double*, double, index_t, Stream);
template void scale<float>(float*, float, index_t, Stream);
template void scale<double>(double*, double, index_t, Stream);

}  // namespace latent::kernels::cpu
