#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>

#include "kernels/cublas_handle.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_reduce.cuh"
#include "kernels/dense.h"
#include "kernels/gemm.h"

namespace latent::kernels::cuda {
namespace {

// The backward's blocks are kColTile columns (one warp reads 128 contiguous bytes of a row) by
// kColLanes thread rows, each block summing one chunk of rows; the chunks (row_chunks) depend on N
// alone, so the summation order of db is fixed by the shape (kernels/cuda_reduce.cuh).

std::atomic<int> g_epilogue{static_cast<int>(DenseEpilogue::own)};
std::atomic<std::int64_t> g_lt_forwards{0};

// act' at element i: from pre when given, else from the output y; neither is read for identity.
template <Act A>
__device__ __forceinline__ float grad_at(float alpha, const float* y, const float* pre, index_t i) {
  if constexpr (A == Act::identity) {
    return 1.0f;
  } else {
    return pre ? math::act_grad(A, alpha, pre[i]) : math::act_grad_from_output(A, alpha, y[i]);
  }
}

template <Act A>
__global__ void bias_act_kernel(float* __restrict__ y, float* __restrict__ pre,
                                const float* __restrict__ b, float alpha, index_t n, index_t h) {
  const index_t total = n * h;
  for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<index_t>(gridDim.x) * blockDim.x) {
    float v = y[i];
    if (b) v += b[i % h];
    if (pre) pre[i] = v;
    y[i] = math::act_forward(A, alpha, v);
  }
}

// g = dy * act' for one chunk of rows and 32 columns; dpre = g; the chunk's column sums of g (in
// double, each thread over its rows in order, then the 8 thread rows in order) go to db directly
// when there is one chunk, else to partials[chunk, column] for col_final_kernel.
template <Act A>
__global__ void act_bias_grad_kernel(float* dpre, float* __restrict__ db, bool add_db,
                                     double* __restrict__ partials, const float* dy,
                                     const float* __restrict__ y, const float* __restrict__ pre,
                                     float alpha, index_t n, index_t h, index_t rows_per_chunk) {
  const index_t c = static_cast<index_t>(blockIdx.x) * kColTile + threadIdx.x;
  const index_t r0 = static_cast<index_t>(blockIdx.y) * rows_per_chunk;
  const index_t r1 = r0 + rows_per_chunk < n ? r0 + rows_per_chunk : n;
  double acc = 0.0;
  if (c < h) {
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColLanes) {
      const index_t i = r * h + c;
      const float g = dy[i] * grad_at<A>(alpha, y, pre, i);
      if (dpre) dpre[i] = g;
      acc += static_cast<double>(g);
    }
  }
  if (db == nullptr) return;  // the same for every thread of the block
  const double s = sum_col_lanes(acc);
  if (threadIdx.y == 0 && c < h) {
    if (gridDim.y == 1)
      db[c] = add_db ? db[c] + static_cast<float>(s) : static_cast<float>(s);
    else
      partials[static_cast<index_t>(blockIdx.y) * h + c] = s;
  }
}

// ---- the cuBLASLt path -----------------------------------------------------------------------

// Owners of cuBLASLt descriptors (destroyed on every exit path).
struct MatmulDesc {
  cublasLtMatmulDesc_t h = nullptr;
  MatmulDesc() = default;
  MatmulDesc(const MatmulDesc&) = delete;
  MatmulDesc& operator=(const MatmulDesc&) = delete;
  ~MatmulDesc() {
    if (h) cublasLtMatmulDescDestroy(h);
  }
};

struct Layout {
  cublasLtMatrixLayout_t h = nullptr;
  Layout() = default;
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
  ~Layout() {
    if (h) cublasLtMatrixLayoutDestroy(h);
  }
};

struct Preference {
  cublasLtMatmulPreference_t h = nullptr;
  Preference() = default;
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  ~Preference() {
    if (h) cublasLtMatmulPreferenceDestroy(h);
  }
};

// The largest power of two (up to 256) dividing the address: cuBLASLt's heuristic otherwise
// assumes 256-byte alignment, which a view into a larger tensor need not have.
std::uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint32_t al = 256;
  while (al > 4 && a % al != 0) al /= 2;
  return al;
}

// The heuristic's choice per shape, epilogue, math mode and alignments (asking costs tens of
// microseconds; the answer does not change). nullopt: cuBLASLt has no algorithm, use our path.
using LtKey = std::tuple<int, index_t, index_t, index_t, int, bool, std::uint32_t, std::uint32_t,
                         std::uint32_t, std::uint32_t>;

struct LtCache {
  std::mutex mu;
  std::map<LtKey, std::optional<cublasLtMatmulAlgo_t>> algos;
};

LtCache& lt_cache() {
  static LtCache cache;
  return cache;
}

template <class V>
void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const V& value) {
  LATENT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}

template <class V>
void set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
              const V& value) {
  LATENT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &value, sizeof(value)));
}

// y = act(x w^T + b) for identity or relu in one cuBLASLt call. In column-major terms
// y^T [H, N] = w [H, D] x^T [D, N]: w stored row-major [H, D] is column-major [D, H] (transposed
// by the op), x row-major [N, D] is column-major [D, N], and the bias runs along y^T's rows.
// Returns false (nothing done) when cuBLASLt offers no algorithm.
bool lt_dense_forward(float* y, const float* x, const float* w, const float* b, Act act, index_t n,
                      index_t d, index_t h, Stream stream) {
  BlasLease lease(stream);
  const bool tf32 = tf32_enabled();
  const cublasLtEpilogue_t epilogue =
      act == Act::relu ? (b ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                       : (b ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
  MatmulDesc op;
  LATENT_CUBLAS_CHECK(cublasLtMatmulDescCreate(
      &op.h, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_attr(op.h, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
  set_attr(op.h, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
  set_attr(op.h, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (b) set_attr(op.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(b));
  Layout lw, lx, ly;
  LATENT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lw.h, CUDA_R_32F, static_cast<std::uint64_t>(d),
                                                 static_cast<std::uint64_t>(h), d));
  LATENT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lx.h, CUDA_R_32F, static_cast<std::uint64_t>(d),
                                                 static_cast<std::uint64_t>(n), d));
  LATENT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ly.h, CUDA_R_32F, static_cast<std::uint64_t>(h),
                                                 static_cast<std::uint64_t>(n), h));

  const std::uint32_t aw = alignment(w), ax = alignment(x), ay = alignment(y);
  const std::uint32_t ab = b ? alignment(b) : 256;
  // cuBLASLt's alignment preferences cover A to D, not the bias: a bias off 16 bytes (a view at an
  // offset) takes our own path rather than a kernel that may assume the alignment.
  if (ab < 16) return false;
  const LtKey key{lease.device(), n, d, h, static_cast<int>(epilogue), tf32, aw, ax, ay, ab};
  std::optional<cublasLtMatmulAlgo_t> algo;
  bool known = false;
  {
    LtCache& cache = lt_cache();
    std::lock_guard<std::mutex> lock(cache.mu);
    const auto it = cache.algos.find(key);
    if (it != cache.algos.end()) {
      known = true;
      algo = it->second;
    }
  }
  if (!known) {
    Preference pref;
    LATENT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref.h));
    set_pref(pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
             static_cast<std::uint64_t>(lease.workspace_bytes()));
    set_pref(pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, aw);
    set_pref(pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, ax);
    set_pref(pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, ay);
    set_pref(pref.h, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, ay);
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lease.lt(), op.h, lw.h, lx.h, ly.h,
                                                             ly.h, pref.h, 1, &result, &count);
    if (st != CUBLAS_STATUS_NOT_SUPPORTED) LATENT_CUBLAS_CHECK(st);
    if (st == CUBLAS_STATUS_SUCCESS && count > 0) algo = result.algo;
    LtCache& cache = lt_cache();
    std::lock_guard<std::mutex> lock(cache.mu);
    cache.algos.emplace(key, algo);
  }
  if (!algo) return false;
  const float one = 1.0f, zero = 0.0f;
  LATENT_CUBLAS_CHECK(cublasLtMatmul(lease.lt(), op.h, &one, w, lw.h, x, lx.h, &zero, y, ly.h, y,
                                     ly.h, &*algo, lease.workspace(), lease.workspace_bytes(),
                                     stream));
  return true;
}

}  // namespace

void set_dense_epilogue(DenseEpilogue epilogue) {
  g_epilogue.store(static_cast<int>(epilogue), std::memory_order_relaxed);
}

DenseEpilogue dense_epilogue() {
  return static_cast<DenseEpilogue>(g_epilogue.load(std::memory_order_relaxed));
}

std::int64_t dense_cublaslt_forwards() {
  return g_lt_forwards.load(std::memory_order_relaxed);
}

void dense_bias_act_forward(float* y, float* pre, const float* b, ActParams act, index_t n,
                            index_t h, Stream stream) {
  if (n <= 0 || h <= 0) return;
  with_act(act.act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    bias_act_kernel<A>
        <<<blocks_for(n * h, kThreads), kThreads, 0, stream>>>(y, pre, b, act.alpha, n, h);
    LATENT_LAUNCH_CHECK(bias_act_kernel);
  });
}

void dense_forward(float* y, float* pre, const float* x, const float* w, const float* b,
                   ActParams act, index_t n, index_t d, index_t h, Stream stream) {
  if (n <= 0 || h <= 0) return;
  const bool lt_fits = dense_epilogue() == DenseEpilogue::cublaslt && pre == nullptr && d > 0 &&
                       (act.act == Act::identity || act.act == Act::relu);
  if (lt_fits && lt_dense_forward(y, x, w, b, act.act, n, d, h, stream)) {
    g_lt_forwards.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  gemm(false, true, n, h, d, 1.0f, x, d, w, d, 0.0f, y, h, stream);
  if (b || act.act != Act::identity || pre) dense_bias_act_forward(y, pre, b, act, n, h, stream);
}

index_t dense_backward_scratch(index_t n, index_t h) {
  const index_t chunks = row_chunks(n);
  return chunks > 1 ? chunks * h : 0;
}

void dense_backward_act_bias(float* dpre, float* db, bool add_db, double* scratch, const float* dy,
                             const float* y, const float* pre, ActParams act, index_t n, index_t h,
                             Stream stream) {
  if ((!dpre && !db) || h <= 0) return;
  if (n <= 0) {  // no rows: the bias gradient of nothing is 0
    if (db && !add_db)
      LATENT_CUDA_CHECK(
          cudaMemsetAsync(db, 0, static_cast<std::size_t>(h) * sizeof(float), stream));
    return;
  }
  const index_t chunks = row_chunks(n);
  const index_t rows_per_chunk = (n + chunks - 1) / chunks;
  check(!db || chunks == 1 || scratch != nullptr, "dense",
        "the bias gradient needs device scratch (dense_backward_scratch)");
  const dim3 block(kColTile, kColLanes);
  const dim3 grid(static_cast<unsigned>((h + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  with_act(act.act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    act_bias_grad_kernel<A><<<grid, block, 0, stream>>>(dpre, db, add_db, scratch, dy, y, pre,
                                                        act.alpha, n, h, rows_per_chunk);
    LATENT_LAUNCH_CHECK(act_bias_grad_kernel);
  });
  if (db && chunks > 1) {
    // db[c] (+)= the sum over chunks k, in order, of partials[k, c].
    if (add_db)
      col_final_kernel<<<blocks_for(h, kThreads), kThreads, 0, stream>>>(scratch, chunks, h,
                                                                         AddStore{db});
    else
      col_final_kernel<<<blocks_for(h, kThreads), kThreads, 0, stream>>>(scratch, chunks, h,
                                                                         ScaledStore{db, 1.0});
    LATENT_LAUNCH_CHECK(col_final_kernel);
  }
}

void dense_backward_weight(float* dw, bool add_w, float* db, bool add_db, double* scratch,
                           const float* dz, const float* x, index_t n, index_t d, index_t h,
                           Stream stream) {
  if (h <= 0) return;
  if (dw && d > 0)
    gemm(true, false, h, d, n, 1.0f, dz, h, x, d, add_w ? 1.0f : 0.0f, dw, d, stream);
  if (db)
    dense_backward_act_bias(nullptr, db, add_db, scratch, dz, nullptr, nullptr,
                            {Act::identity, 0.0f}, n, h, stream);
}

void dense_backward_input(float* dx, bool add_x, float* db_in, bool add_db, double* scratch,
                          const float* dz, const float* w, const float* y_in, const float* pre_in,
                          ActParams act_in, index_t n, index_t d, index_t h, Stream stream) {
  if (d <= 0) return;
  if (n <= 0) {  // no rows: the bias gradient of nothing is 0
    if (db_in && !add_db)
      LATENT_CUDA_CHECK(
          cudaMemsetAsync(db_in, 0, static_cast<std::size_t>(d) * sizeof(float), stream));
    return;
  }
  gemm(false, false, n, d, h, 1.0f, dz, h, w, d, add_x ? 1.0f : 0.0f, dx, d, stream);
  const bool act = act_in.act != Act::identity;
  if (act || db_in)
    dense_backward_act_bias(act ? dx : nullptr, db_in, add_db, scratch, dx, y_in, pre_in, act_in, n,
                            d, stream);
}

}  // namespace latent::kernels::cuda
