// The one way CPU kernels split a loop over threads (OpenMP):
//
//   parallel_for(n, work, [&](index_t i) { ... });
//     runs body(i) for every i in [0, n): on the calling thread alone when `work` (about the
//     elements the loop touches) is below kParallelWork, where waking the pool costs more than it
//     saves; otherwise over the threads, each taking one contiguous range of i (a static
//     schedule).
//   parallel_for_with(n, work, make, [&](auto& state, index_t i) { ... });
//     the same with per-thread scratch: make() runs once in each thread (buffers a row needs).
//
// A kernel's result must not depend on the thread count: every i is computed the same way by
// whichever thread gets it, and sums over i run in a fixed order outside the loop.
//
// The thread count (OpenMP's, which the GEMMs use too): cpu_threads() and set_cpu_threads(n);
// usable_processors() is how many processors this process may run on (its affinity mask, which a
// launcher's binding narrows), online_processors() how many the machine has.
#pragma once

#include "kernels/common.h"

namespace latent::kernels::cpu {

inline constexpr index_t kParallelWork = index_t{1} << 15;

int cpu_threads();
void set_cpu_threads(int n);  // n < 1 counts as 1
int usable_processors();
int online_processors();

template <class Body>
void parallel_for(index_t n, index_t work, Body&& body) {
#pragma omp parallel for schedule(static) if (work >= kParallelWork)
  for (index_t i = 0; i < n; ++i) body(i);
}

template <class Make, class Body>
void parallel_for_with(index_t n, index_t work, Make&& make, Body&& body) {
#pragma omp parallel if (work >= kParallelWork)
  {
    auto state = make();
#pragma omp for schedule(static)
    for (index_t i = 0; i < n; ++i) body(state, i);
  }
}

}  // namespace latent::kernels::cpu
