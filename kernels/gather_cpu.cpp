#include <cstring>

#include "kernels/gather.h"

namespace latent::kernels::cpu {

template <class T>
void gather_rows(T* y, const T* x, const index_t* index, index_t n, index_t row) {
  // Whole rows with memcpy: a batch is a few hundred rows of a few hundred elements, and the
  // copy is bound by memory, not arithmetic.
  const std::size_t bytes = static_cast<std::size_t>(row) * sizeof(T);
#pragma omp parallel for schedule(static) if (n * row > (1 << 18))
  for (index_t i = 0; i < n; ++i) std::memcpy(y + i * row, x + index[i] * row, bytes);
}

template void gather_rows<float>(float*, const float*, const index_t*, index_t, index_t);
template void gather_rows<double>(double*, const double*, const index_t*, index_t, index_t);

}  // namespace latent::kernels::cpu
