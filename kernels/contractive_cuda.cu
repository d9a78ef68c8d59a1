#include "kernels/contractive.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/fill.h"
#include "kernels/scalar_math.h"

namespace latent::kernels::cuda {
namespace {

// ---- contractive penalty ---------------------------------------------------------------------

struct SquareTerm {  // w[i]^2, for the row norms c_j = ||w_j||^2
  const float* w;
  __device__ double operator()(index_t i, index_t, index_t) const {
    const double v = static_cast<double>(w[i]);
    return v * v;
  }
};

struct PenaltyTerm {  // a'(pre[n, j])^2 c_j
  const float* pre;
  const double* c;
  Act act;
  float alpha;
  __device__ double operator()(index_t i, index_t, index_t j) const {
    const double a = static_cast<double>(math::act_grad(act, alpha, pre[i]));
    return a * a * c[j];
  }
};

// c[j] = ||w_j||^2 for w [h, d], in double, once per call.
void row_norms(double* c, const float* w, index_t h, index_t d, Stream stream) {
  row_sums(h, d, SquareTerm{w}, DoubleStore{c}, stream);
}

// One pass over pre [N, H] in the column-sum layout (block (x, y): columns [32x, 32x + 32), row
// chunk y; every element visited once): dpre += g 2 a' a'' c_j, and, when partials is non-null,
// the chunk's sum of g a'^2 per column j (the 8 row lanes added in order).
__global__ void contractive_backward_kernel(float* __restrict__ dpre, bool add_pre,
                                            double* __restrict__ partials,
                                            const float* __restrict__ dout, index_t stride_n,
                                            float scale, const float* __restrict__ pre,
                                            const double* __restrict__ c, Act act, float alpha,
                                            index_t n, index_t h, index_t chunk_rows) {
  const index_t j = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * chunk_rows;
  const index_t r1 = r0 + chunk_rows < n ? r0 + chunk_rows : n;
  double acc = 0.0;
  if (j < h) {
    const double cj = c[j];
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      const double g = static_cast<double>(scale) * static_cast<double>(dout[r * stride_n]);
      const float p = pre[r * h + j];
      const double a = static_cast<double>(math::act_grad(act, alpha, p));
      if (dpre) {
        const double a2 = static_cast<double>(math::act_grad2(act, alpha, p));
        put(dpre[r * h + j], static_cast<float>(2.0 * g * a * a2 * cj), add_pre);
      }
      acc += g * a * a;
    }
  }
  if (!partials) return;  // uniform over the grid: no thread is left waiting at the barrier
  const double s = sum_col_lanes(acc);
  if (threadIdx.y == 0 && j < h) partials[static_cast<index_t>(blockIdx.y) * h + j] = s;
}

// One block per row j of w: coef_j = the sum of its chunk partials (fixed block order), then
// dw[j, :] += 2 coef_j w[j, :] (coalesced along the row).
__global__ void contractive_dw_kernel(float* __restrict__ dw, bool add,
                                      const double* __restrict__ partials, index_t chunks,
                                      const float* __restrict__ w, index_t h, index_t d) {
  for (index_t j = blockIdx.x; j < h; j += gridDim.x) {
    double acc = 0.0;
    for (index_t k = threadIdx.x; k < chunks; k += kThreads) acc += partials[k * h + j];
    const float two_coef = static_cast<float>(2.0 * group_sum<kThreads>(acc));
    for (index_t k = threadIdx.x; k < d; k += kThreads)
      put(dw[j * d + k], two_coef * w[j * d + k], add);
  }
}

// ---- Jacobian chain blocks -------------------------------------------------------------------

__global__ void jacobian_seed_forward_kernel(float* __restrict__ out, const float* __restrict__ d,
                                             const float* __restrict__ w, index_t z, index_t h,
                                             index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / h;
    out[i] = d[row] * w[(row % z) * h + (i - row * h)];
  }
}

struct SeedDdTerm {  // dout[(n, z), k] w[z, k], summed over k for dd[(n, z)]
  const float* dout;
  const float* w;
  index_t z;
  index_t h;
  __device__ double operator()(index_t i, index_t row, index_t k) const {
    return static_cast<double>(dout[i]) * static_cast<double>(w[(row % z) * h + k]);
  }
};

// dout seen as [N, Z*H]: column q*H + k of row n is dout[(n, q), k], weighted by d[n, q].
struct SeedDwTerm {
  const float* dout;
  const float* d;
  index_t z;
  index_t h;
  __device__ double operator()(index_t i, index_t n, index_t col) const {
    return static_cast<double>(d[n * z + col / h]) * static_cast<double>(dout[i]);
  }
};

__global__ void scale_rows_forward_kernel(float* __restrict__ out, const float* __restrict__ m,
                                          const float* __restrict__ d, index_t g, index_t h,
                                          index_t count) {
  for (index_t i = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; i < count;
       i += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t row = i / h;
    out[i] = m[i] * d[(row / g) * h + (i - row * h)];
  }
}

// One thread per element (n, k) of d [N, H]: it owns column k of sample n's G rows, so it updates
// their dm and sums dd[n, k] over them in order (coalesced along k). dm and dd are not restrict:
// scale_row_groups(x, x) with G = 1 makes them one buffer (each element still has one thread).
__global__ void scale_rows_backward_kernel(float* dm, bool add_m, float* dd, bool add_d,
                                           const float* __restrict__ dout,
                                           const float* __restrict__ m, const float* __restrict__ d,
                                           index_t n, index_t g, index_t h) {
  const index_t count = n * h;
  for (index_t e = static_cast<index_t>(blockIdx.x) * kThreads + threadIdx.x; e < count;
       e += static_cast<index_t>(gridDim.x) * kThreads) {
    const index_t s = e / h;
    const index_t k = e - s * h;
    const float dv = d[e];
    double acc = 0.0;
    for (index_t q = 0; q < g; ++q) {
      const index_t i = (s * g + q) * h + k;
      if (dm) put(dm[i], dout[i] * dv, add_m);
      if (dd) acc += static_cast<double>(dout[i]) * static_cast<double>(m[i]);
    }
    if (dd) put(dd[e], static_cast<float>(acc), add_d);
  }
}

}  // namespace

index_t contractive_scratch(index_t n, index_t h) {
  // The row norms, then the partials (flat for the reduced forward, per chunk in the backward).
  const index_t cols = col_chunks(n, h) * h;
  return h + (cols > total_sum_scratch() ? cols : total_sum_scratch());
}

void contractive_forward(float* out, const float* pre, const float* w, Act act, float alpha,
                         float scale, bool per_sample, index_t n, index_t h, index_t d,
                         double* scratch, Stream stream) {
  double* c = scratch;
  row_norms(c, w, h, d, stream);
  const PenaltyTerm term{pre, c, act, alpha};
  const ScaledStore store{out, static_cast<double>(scale)};
  if (per_sample)
    row_sums(n, h, term, store, stream);
  else
    total_sum(scratch + h, n * h, h, term, store, stream);
}

void contractive_backward(float* dpre, bool add_pre, float* dw, bool add_w, const float* dout,
                          index_t stride_n, float scale, const float* pre, const float* w, Act act,
                          float alpha, index_t n, index_t h, index_t d, double* scratch,
                          Stream stream) {
  if (n * h == 0 || (!dpre && !dw)) {
    if (dw && !add_w) fill(dw, 0.0f, h * d, stream);  // no samples: a zero gradient, stored
    return;
  }
  double* c = scratch;
  double* partials = dw ? scratch + h : nullptr;
  row_norms(c, w, h, d, stream);
  const index_t chunks = col_chunks(n, h);
  const index_t chunk_rows = (n + chunks - 1) / chunks;
  const dim3 grid(static_cast<unsigned>((h + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  contractive_backward_kernel<<<grid, dim3(kColTile, kColLanes), 0, stream>>>(
      dpre, add_pre, partials, dout, stride_n, scale, pre, c, act, alpha, n, h, chunk_rows);
  LATENT_LAUNCH_CHECK(contractive_backward_kernel);
  if (!dw || d == 0) return;
  contractive_dw_kernel<<<blocks_for(h, 1), kThreads, 0, stream>>>(dw, add_w, partials, chunks, w,
                                                                   h, d);
  LATENT_LAUNCH_CHECK(contractive_dw_kernel);
}

void jacobian_seed_forward(float* out, const float* d, const float* w, index_t n, index_t z,
                           index_t h, Stream stream) {
  const index_t count = n * z * h;
  if (count == 0) return;
  jacobian_seed_forward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(out, d, w, z,
                                                                                     h, count);
  LATENT_LAUNCH_CHECK(jacobian_seed_forward_kernel);
}

index_t jacobian_seed_scratch(index_t n, index_t z, index_t h) {
  return column_sums_scratch(n, z * h);
}

void jacobian_seed_backward(float* dd, bool add_d, float* dw, bool add_w, const float* dout,
                            const float* d, const float* w, index_t n, index_t z, index_t h,
                            double* scratch, Stream stream) {
  if (n * z * h == 0) {
    if (dw && !add_w) fill(dw, 0.0f, z * h, stream);  // no samples: a zero gradient, stored
    if (dd && !add_d) fill(dd, 0.0f, n * z, stream);  // (h == 0: sums over nothing)
    return;
  }
  if (dd) row_sums(n * z, h, SeedDdTerm{dout, w, z, h}, PutStore{dd, add_d}, stream);
  if (dw) column_sums(scratch, n, z * h, SeedDwTerm{dout, d, z, h}, PutStore{dw, add_w}, stream);
}

void scale_rows_forward(float* out, const float* m, const float* d, index_t n, index_t g, index_t h,
                        Stream stream) {
  const index_t count = n * g * h;
  if (count == 0) return;
  scale_rows_forward_kernel<<<blocks_for(count, kThreads), kThreads, 0, stream>>>(out, m, d, g, h,
                                                                                  count);
  LATENT_LAUNCH_CHECK(scale_rows_forward_kernel);
}

void scale_rows_backward(float* dm, bool add_m, float* dd, bool add_d, const float* dout,
                         const float* m, const float* d, index_t n, index_t g, index_t h,
                         Stream stream) {
  if (n * h == 0 || (!dm && !dd)) return;
  scale_rows_backward_kernel<<<blocks_for(n * h, kThreads), kThreads, 0, stream>>>(
      dm, add_m, dd, add_d, dout, m, d, n, g, h);
  LATENT_LAUNCH_CHECK(scale_rows_backward_kernel);
}

}  // namespace latent::kernels::cuda
