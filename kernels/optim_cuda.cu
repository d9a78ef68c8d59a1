#include <cmath>
#include <cub/block/block_reduce.cuh>

#include "kernels/cuda_check.h"
#include "kernels/cuda_launch.cuh"
#include "kernels/optim.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

// A block's unit of work: this many consecutive elements of one tensor (chunks never straddle
// tensors, and their boundaries depend on the sizes alone).
constexpr index_t kChunk = 4096;
constexpr index_t kMaxBlocks = 2048;

struct AdamDev {
  float* p;
  float* m;
  float* v;
  const float* g;
  index_t n;
  index_t param;  // its values in the state: t, lr / (1 - beta1^t), 1 / sqrt(1 - beta2^t)
};

struct SgdDev {
  float* p;
  float* buf;
  const float* g;
  index_t n;
  index_t param;
};

struct SquaresDev {
  const float* x;
  index_t n;
};

// The tensors of one launch, passed by value as a kernel parameter (__grid_constant__: read in
// place from the parameter space, never copied per thread).
template <class D>
struct Batch {
  D t[kMaxTensorsPerLaunch];
  index_t chunk_begin[kMaxTensorsPerLaunch + 1];  // tensor k owns chunks [begin[k], begin[k+1])
  int count;
};
// Kernel parameters are limited to 4 KiB on every toolkit; leave room for the scalars.
static_assert(sizeof(Batch<AdamDev>) + 64 <= 4096, "Adam batch exceeds the kernel parameter limit");
static_assert(sizeof(Batch<SgdDev>) + 64 <= 4096, "SGD batch exceeds the kernel parameter limit");

// The tensor owning chunk `job`: the last k with chunk_begin[k] <= job (every tensor of a batch
// has at least one chunk, so the begins increase strictly).
template <class D>
__device__ __forceinline__ int tensor_of(const Batch<D>& b, index_t job) {
  int lo = 0, hi = b.count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (b.chunk_begin[mid] <= job)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// The step's values come from `state` (optim_begin_step wrote them earlier on the stream).
__global__ void optim_begin_step_kernel(double* __restrict__ state, LrSpec schedule, double beta1,
                                        double beta2, ParamMask mask, index_t count) {
  const double steps = state[0];
  __syncthreads();  // every thread has read the count before it changes
  const double lr = lr_at(schedule, static_cast<std::int64_t>(steps) + schedule.offset);
  if (threadIdx.x == 0) {
    state[0] = steps + 1;
    state[1] = lr;
  }
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    if (!mask.has(i)) continue;
    double* s = state + 2 + 3 * i;
    const double t = s[0] + 1;
    s[0] = t;
    s[1] = lr / (1.0 - pow(beta1, t));
    s[2] = 1.0 / sqrt(1.0 - pow(beta2, t));
  }
}

__global__ void adam_multi_kernel(const __grid_constant__ Batch<AdamDev> batch,
                                  const double* __restrict__ state, float b1, float b2, float eps,
                                  float wd, bool decoupled) {
  const index_t jobs = batch.chunk_begin[batch.count];
  const float lr = static_cast<float>(state[1]);
  for (index_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int k = tensor_of(batch, job);
    const AdamDev& t = batch.t[k];
    const index_t start = (job - batch.chunk_begin[k]) * kChunk;
    const index_t end = start + kChunk < t.n ? start + kChunk : t.n;
    const float step_size = static_cast<float>(state[3 + 3 * t.param]);
    const float inv_sqrt_bc2 = static_cast<float>(state[4 + 3 * t.param]);
    for (index_t i = start + threadIdx.x; i < end; i += blockDim.x) {
      float p = t.p[i], m = t.m[i], v = t.v[i];
      math::adam_update(p, m, v, t.g[i], lr, b1, b2, eps, wd, decoupled, step_size, inv_sqrt_bc2);
      t.p[i] = p;
      t.m[i] = m;
      t.v[i] = v;
    }
  }
}

__global__ void sgd_multi_kernel(const __grid_constant__ Batch<SgdDev> batch,
                                 const double* __restrict__ state, float mu, float dampening,
                                 float wd, bool nesterov) {
  const index_t jobs = batch.chunk_begin[batch.count];
  const float lr = static_cast<float>(state[1]);
  for (index_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int k = tensor_of(batch, job);
    const SgdDev& t = batch.t[k];
    const index_t start = (job - batch.chunk_begin[k]) * kChunk;
    const index_t end = start + kChunk < t.n ? start + kChunk : t.n;
    const bool first = state[2 + 3 * t.param] == 1.0;  // the buffer starts as the gradient
    for (index_t i = start + threadIdx.x; i < end; i += blockDim.x) {
      float p = t.p[i];
      math::sgd_update(p, t.buf ? t.buf + i : nullptr, t.g[i], lr, mu, dampening, wd, nesterov,
                       first);
      t.p[i] = p;
    }
  }
}

using BlockSum = cub::BlockReduce<double, kThreads>;

// partials[job] = sum of x^2 over chunk `job`, in double, by a fixed block tree.
__global__ void squares_multi_kernel(double* __restrict__ partials,
                                     const __grid_constant__ Batch<SquaresDev> batch) {
  __shared__ typename BlockSum::TempStorage tmp;
  const index_t jobs = batch.chunk_begin[batch.count];
  for (index_t job = blockIdx.x; job < jobs; job += gridDim.x) {
    const int k = tensor_of(batch, job);
    const SquaresDev& t = batch.t[k];
    const index_t start = (job - batch.chunk_begin[k]) * kChunk;
    const index_t end = start + kChunk < t.n ? start + kChunk : t.n;
    double acc = 0.0;
    for (index_t i = start + threadIdx.x; i < end; i += blockDim.x) {
      const double v = static_cast<double>(t.x[i]);
      acc += v * v;
    }
    const double s = BlockSum(tmp).Sum(acc);
    if (threadIdx.x == 0) partials[job] = s;
    __syncthreads();  // tmp is reused by the next chunk
  }
}

// One block: out[0] = sum of the partials (strided per thread, then the block tree).
__global__ void sum_partials_kernel(double* __restrict__ out, const double* __restrict__ partials,
                                    index_t count) {
  __shared__ typename BlockSum::TempStorage tmp;
  double acc = 0.0;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  const double s = BlockSum(tmp).Sum(acc);
  if (threadIdx.x == 0) out[0] = s;
}

__global__ void clip_factor_kernel(double* clip, double max_norm) {
  const double norm = sqrt(clip[0]);
  clip[1] = norm;
  clip[2] = !isfinite(norm) ? 0.0 : norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

__global__ void clip_scale_kernel(float* __restrict__ x, const double* __restrict__ clip,
                                  index_t n) {
  const double f = clip[2];
  if (f == 1.0) return;
  const float ft = static_cast<float>(f);
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<index_t>(gridDim.x) * blockDim.x)
    x[i] = f == 0.0 ? 0.0f : x[i] * ft;
}

inline index_t chunks_of(index_t n) {
  return (n + kChunk - 1) / kChunk;
}

inline unsigned blocks_for(index_t jobs) {
  return static_cast<unsigned>(jobs < kMaxBlocks ? jobs : kMaxBlocks);
}

// Packs the non-empty tensors of `src` into batches of at most kMaxTensorsPerLaunch and calls
// launch(batch, jobs) for each.
template <class D, class Src, class ToDev, class Launch>
void in_batches(const Src* src, std::size_t count, ToDev to_dev, Launch launch) {
  Batch<D> b{};
  index_t jobs = 0;
  auto flush = [&] {
    if (b.count == 0) return;
    b.chunk_begin[b.count] = jobs;
    launch(b, jobs);
    b.count = 0;
    jobs = 0;
  };
  for (std::size_t i = 0; i < count; ++i) {
    if (src[i].n <= 0) continue;
    b.t[b.count] = to_dev(src[i]);
    b.chunk_begin[b.count] = jobs;
    jobs += chunks_of(src[i].n);
    ++b.count;
    if (static_cast<std::size_t>(b.count) == kMaxTensorsPerLaunch) flush();
  }
  flush();
}

}  // namespace

void optim_begin_step(double* state, LrSpec schedule, double beta1, double beta2, ParamMask mask,
                      index_t count, Stream stream) {
  optim_begin_step_kernel<<<1, kThreads, 0, stream>>>(state, schedule, beta1, beta2, mask, count);
  LATENT_LAUNCH_CHECK(optim_begin_step_kernel);
}

void adam_step_multi(const AdamTensor* tensors, std::size_t count, AdamStep hp, const double* state,
                     Stream stream) {
  const float b1 = static_cast<float>(hp.beta1), b2 = static_cast<float>(hp.beta2);
  const float eps = static_cast<float>(hp.eps), wd = static_cast<float>(hp.weight_decay);
  auto to_dev = [](const AdamTensor& t) { return AdamDev{t.p, t.m, t.v, t.g, t.n, t.param}; };
  in_batches<AdamDev>(tensors, count, to_dev, [&](const Batch<AdamDev>& b, index_t jobs) {
    adam_multi_kernel<<<blocks_for(jobs), kThreads, 0, stream>>>(b, state, b1, b2, eps, wd,
                                                                 hp.decoupled);
    LATENT_LAUNCH_CHECK(adam_multi_kernel);
  });
}

void sgd_step_multi(const SgdTensor* tensors, std::size_t count, SgdStep hp, const double* state,
                    Stream stream) {
  const float mu = static_cast<float>(hp.momentum), damp = static_cast<float>(hp.dampening);
  const float wd = static_cast<float>(hp.weight_decay);
  auto to_dev = [](const SgdTensor& t) { return SgdDev{t.p, t.buf, t.g, t.n, t.param}; };
  in_batches<SgdDev>(tensors, count, to_dev, [&](const Batch<SgdDev>& b, index_t jobs) {
    sgd_multi_kernel<<<blocks_for(jobs), kThreads, 0, stream>>>(b, state, mu, damp, wd,
                                                                hp.nesterov);
    LATENT_LAUNCH_CHECK(sgd_multi_kernel);
  });
}

void clip_factor(double* clip, double max_norm, Stream stream) {
  clip_factor_kernel<<<1, 1, 0, stream>>>(clip, max_norm);
  LATENT_LAUNCH_CHECK(clip_factor_kernel);
}

void clip_scale(float* x, const double* clip, index_t n, Stream stream) {
  LATENT_LAUNCH_LINEAR(clip_scale_kernel, n, stream, x, clip, n);
}

index_t sum_squares_scratch(const SquaresTensor* tensors, std::size_t count) {
  index_t total = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (tensors[i].n > 0) total += chunks_of(tensors[i].n);
  return total;
}

void sum_squares_multi(double* out, double* scratch, const SquaresTensor* tensors,
                       std::size_t count, Stream stream) {
  const index_t total = sum_squares_scratch(tensors, count);
  check(total == 0 || scratch != nullptr, "clip_grad_norm", "needs ", total,
        " doubles of device scratch");
  index_t offset = 0;  // each launch writes the partials of its own chunks, in list order
  auto to_dev = [](const SquaresTensor& t) { return SquaresDev{t.x, t.n}; };
  in_batches<SquaresDev>(tensors, count, to_dev, [&](const Batch<SquaresDev>& b, index_t jobs) {
    squares_multi_kernel<<<blocks_for(jobs), kThreads, 0, stream>>>(scratch + offset, b);
    LATENT_LAUNCH_CHECK(squares_multi_kernel);
    offset += jobs;
  });
  // With no elements at all this still runs: it writes 0.
  sum_partials_kernel<<<1, kThreads, 0, stream>>>(out, scratch, total);
  LATENT_LAUNCH_CHECK(sum_partials_kernel);
}

}  // namespace latent::kernels::cuda
