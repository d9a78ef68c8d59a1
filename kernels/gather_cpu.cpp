#include <cstring>

#include "kernels/cpu_parallel.h"
#include "kernels/gather.h"
#include "kernels/philox.h"

namespace latent::kernels::cpu {

template <class T>
void gather_rows(T* y, const T* x, const index_t* index, index_t n, index_t row) {
  // Whole rows with memcpy: a batch is a few hundred rows of a few hundred elements, and the
  // copy is bound by memory, not arithmetic.
  const std::size_t bytes = static_cast<std::size_t>(row) * sizeof(T);
  parallel_for(n, n * row, [&](index_t i) { std::memcpy(y + i * row, x + index[i] * row, bytes); });
}

template <class T>
void batch_rows(T* y, const T* x, const index_t* perm, std::int64_t* state, bool binarize,
                std::uint64_t seed, index_t skip, index_t n, index_t advance, index_t row, Stream) {
  const index_t cursor = state[0] + skip;  // the first row drawn
  const auto base = static_cast<std::uint64_t>(state[2]);
  const std::size_t bytes = static_cast<std::size_t>(row) * sizeof(T);
  parallel_for(n, n * row, [&](index_t r) {
    const T* src = x + perm[cursor + r] * row;
    T* dst = y + r * row;
    if (!binarize) {
      std::memcpy(dst, src, bytes);
      return;
    }
    const auto first = static_cast<std::uint64_t>((cursor + r) * row);
    for (index_t c = 0; c < row; ++c) {
      const float u = philox::uniform_at(seed, base, first + static_cast<std::uint64_t>(c));
      dst[c] = static_cast<T>(u) < src[c] ? T(1) : T(0);
    }
  });
  state[0] = cursor - skip + advance;
}

template void batch_rows<float>(float*, const float*, const index_t*, std::int64_t*, bool,
                                std::uint64_t, index_t, index_t, index_t, index_t, Stream);
template void batch_rows<double>(double*, const double*, const index_t*, std::int64_t*, bool,
                                 std::uint64_t, index_t, index_t, index_t, index_t, Stream);
template void gather_rows<float>(float*, const float*, const index_t*, index_t, index_t);
template void gather_rows<double>(double*, const double*, const index_t*, index_t, index_t);

}  // namespace latent::kernels::cpu
