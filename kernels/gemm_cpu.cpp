#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/error.h"
#include "kernels/gemm.h"

#if LATENT_WITH_BLAS
#include <cblas.h>
#endif

// Goto/BLIS structure: each tile of C is computed in blocks of KC along k, from packed panels of
// A and B, as MR x NR register tiles. Packing copies op(A) and op(B) into contiguous, zero-padded
// slivers, so the micro-kernel sees the same unit-stride layout for all four transpose
// combinations and never branches on edges in its inner loop.

namespace latent::kernels::cpu {
namespace {

// The register tile: kMR rows of C, each kNV vectors wide. With 32 vector registers (AVX-512)
// 14 x 2 accumulators + 2 B vectors + 1 broadcast fill the register file; with 16 (AVX2, SSE)
// 6 x 2 do.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
constexpr int kMR = 14;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
constexpr int kMR = 6;
#else
constexpr int kVecBytes = 16;
constexpr int kMR = 6;
#endif
constexpr int kNV = 2;

template <class T>
struct Simd {
  typedef T V __attribute__((vector_size(kVecBytes)));
  static constexpr int kLanes = kVecBytes / static_cast<int>(sizeof(T));
  static constexpr int kNR = kNV * kLanes;
};

// A B sliver (kKC rows of NR columns, 24 KiB) stays in L1 while the micro-kernel streams the A
// slivers of a tile past it; a tile's packed A and B panels (about 200 + 400 KiB) stay in L2.
constexpr index_t kSliverBytes = 24 * 1024;
constexpr index_t kTileRows = 18 * kMR;
constexpr index_t kTileBBytes = 384 * 1024;
// Below this many multiply-adds the packing and the thread start cost more than they save.
constexpr index_t kTinyWork = 4096;
constexpr index_t kParallelWork = index_t(1) << 20;

constexpr index_t ceil_div(index_t a, index_t b) {
  return (a + b - 1) / b;
}

// Grow-only, 64-byte aligned scratch owned by the calling thread: no allocation (and no fresh
// page faults) per call once the largest shape has been seen.
template <class T>
T* workspace(int slot, index_t count) {
  struct Buffer {
    void* p = nullptr;
    std::size_t bytes = 0;
    ~Buffer() { ::operator delete (p, std::align_val_t{64}); }
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  const std::size_t need = static_cast<std::size_t>(count) * sizeof(T);
  if (need > b.bytes) {
    ::operator delete (b.p, std::align_val_t{64});
    b.p = nullptr;
    b.bytes = 0;
    b.p = ::operator new (need, std::align_val_t{64});
    b.bytes = need;
  }
  return static_cast<T*>(b.p);
}

// dst[p * NR + j] = op(B)(p0 + p, j0 + j) for j < nr, 0 for nr <= j < NR.
template <class T>
void pack_b(T* dst, const T* b, index_t ldb, bool trans, index_t p0, index_t kc, index_t j0,
            index_t nr) {
  constexpr index_t NR = Simd<T>::kNR;
  if (!trans) {
    for (index_t p = 0; p < kc; ++p) {
      const T* src = b + (p0 + p) * ldb + j0;
      T* d = dst + p * NR;
      for (index_t j = 0; j < nr; ++j) d[j] = src[j];
      for (index_t j = nr; j < NR; ++j) d[j] = T(0);
    }
    return;
  }
  // B is [n, k]: read along its rows (unit stride), write strided.
  for (index_t j = 0; j < nr; ++j) {
    const T* src = b + (j0 + j) * ldb + p0;
    for (index_t p = 0; p < kc; ++p) dst[p * NR + j] = src[p];
  }
  for (index_t j = nr; j < NR; ++j)
    for (index_t p = 0; p < kc; ++p) dst[p * NR + j] = T(0);
}

// dst[p * MR + i] = op(A)(i0 + i, p0 + p) for i < mr, 0 for mr <= i < MR.
template <class T>
void pack_a(T* dst, const T* a, index_t lda, bool trans, index_t i0, index_t mr, index_t p0,
            index_t kc) {
  if (trans) {  // A is [k, m]: a row of it holds consecutive i
    for (index_t p = 0; p < kc; ++p) {
      const T* src = a + (p0 + p) * lda + i0;
      T* d = dst + p * kMR;
      for (index_t i = 0; i < mr; ++i) d[i] = src[i];
      for (index_t i = mr; i < kMR; ++i) d[i] = T(0);
    }
    return;
  }
  for (index_t i = 0; i < mr; ++i) {
    const T* src = a + (i0 + i) * lda + p0;
    for (index_t p = 0; p < kc; ++p) dst[p * kMR + i] = src[p];
  }
  for (index_t i = mr; i < kMR; ++i)
    for (index_t p = 0; p < kc; ++p) dst[p * kMR + i] = T(0);
}

// C[0:mr, 0:nr] = alpha * (A sliver . B sliver) + beta * C, where beta == 0 never reads C.
// The full tile stays in registers for the whole k loop; the fixed-trip loops unroll completely.
template <class T>
void micro_kernel(index_t kc, const T* __restrict pa, const T* __restrict pb, T* c, index_t ldc,
                  index_t mr, index_t nr, T alpha, T beta) {
  using V = typename Simd<T>::V;
  constexpr int L = Simd<T>::kLanes;
  constexpr int NR = Simd<T>::kNR;
  V acc[kMR][kNV];
#pragma GCC unroll 64
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < kNV; ++j) acc[i][j] = V{};

  for (index_t p = 0; p < kc; ++p) {
    V bv[kNV];
#pragma GCC unroll 4
    for (int j = 0; j < kNV; ++j) std::memcpy(&bv[j], pb + p * NR + j * L, sizeof(V));
    const T* ap = pa + p * kMR;
#pragma GCC unroll 64
    for (int i = 0; i < kMR; ++i) {
      const T ai = ap[i];
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) acc[i][j] += ai * bv[j];
    }
  }

  if (mr == kMR && nr == NR) {
#pragma GCC unroll 64
    for (int i = 0; i < kMR; ++i) {
      T* ci = c + i * ldc;
#pragma GCC unroll 4
      for (int j = 0; j < kNV; ++j) {
        V r = alpha * acc[i][j];
        if (beta != T(0)) {
          V old;
          std::memcpy(&old, ci + j * L, sizeof(V));
          r += beta * old;
        }
        std::memcpy(ci + j * L, &r, sizeof(V));
      }
    }
    return;
  }
  alignas(64) T tile[kMR * NR];
  std::memcpy(tile, acc, sizeof(tile));
  for (index_t i = 0; i < mr; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * NR;
    if (beta == T(0)) {
      for (index_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j];
    } else {
      for (index_t j = 0; j < nr; ++j) ci[j] = alpha * ti[j] + beta * ci[j];
    }
  }
}

// op(A)(i, p) and op(B)(p, j) for the small-size path.
template <class T>
T at(const T* x, index_t ld, bool trans, index_t r, index_t col) {
  return trans ? x[col * ld + r] : x[r * ld + col];
}

template <class T>
void gemm_tiny(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      T s = T(0);
      for (index_t p = 0; p < k; ++p) s += at(a, lda, trans_a, i, p) * at(b, ldb, trans_b, p, j);
      T& cij = c[i * ldc + j];
      cij = beta == T(0) ? alpha * s : alpha * s + beta * cij;
    }
}

// One tile of C, rows [i0, i0 + tm) and columns [j0, j0 + tn), over the whole k range, with
// panels packed into the executing thread's workspace.
template <class T>
void gemm_tile(bool trans_a, bool trans_b, index_t i0, index_t tm, index_t j0, index_t tn,
               index_t k, T alpha, const T* a, index_t lda, const T* b, index_t ldb, T beta, T* c,
               index_t ldc) {
  constexpr index_t NR = Simd<T>::kNR;
  constexpr index_t KC = kSliverBytes / (NR * static_cast<index_t>(sizeof(T)));
  const index_t a_slivers = ceil_div(tm, kMR), b_slivers = ceil_div(tn, NR);
  T* packed_b = workspace<T>(0, KC * b_slivers * NR);
  T* packed_a = workspace<T>(1, KC * a_slivers * kMR);
  for (index_t pc = 0; pc < k; pc += KC) {
    const index_t kc = std::min(KC, k - pc);
    // Later k blocks add to what the first one wrote.
    const T beta_k = pc == 0 ? beta : T(1);
    for (index_t s = 0; s < b_slivers; ++s)
      pack_b(packed_b + s * kc * NR, b, ldb, trans_b, pc, kc, j0 + s * NR,
             std::min(NR, tn - s * NR));
    for (index_t t = 0; t < a_slivers; ++t)
      pack_a(packed_a + t * kc * kMR, a, lda, trans_a, i0 + t * kMR,
             std::min<index_t>(kMR, tm - t * kMR), pc, kc);
    for (index_t s = 0; s < b_slivers; ++s) {
      const index_t j = s * NR;
      for (index_t t = 0; t < a_slivers; ++t) {
        const index_t i = t * kMR;
        micro_kernel(kc, packed_a + t * kc * kMR, packed_b + s * kc * NR,
                     c + (i0 + i) * ldc + j0 + j, ldc, std::min<index_t>(kMR, tm - i),
                     std::min(NR, tn - j), alpha, beta_k);
      }
    }
  }
}

// C is cut into tiles that threads take one at a time, each computing its tile from start to
// end: no barrier inside, so a thread that the OS delays holds up only its own tile. Every
// element's arithmetic (k blocks, summation order) is the same whatever the tiling, so the
// result does not depend on the thread count.
template <class T>
void gemm_blocked(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
                  index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  constexpr index_t NR = Simd<T>::kNR;
  constexpr index_t KC = kSliverBytes / (NR * static_cast<index_t>(sizeof(T)));
  constexpr index_t kTileCols =
      std::max<index_t>(NR, kTileBBytes / (KC * static_cast<index_t>(sizeof(T))) / NR * NR);

  int threads = 1;
#ifdef _OPENMP
  if (m * n * k >= kParallelWork) threads = omp_get_max_threads();
#endif
  index_t tile_m = std::min(kTileRows, ceil_div(m, kMR) * kMR);
  index_t tile_n = std::min(kTileCols, ceil_div(n, NR) * NR);
  // Enough tiles to keep every thread busy: narrow them first (A panels are cheap to repack),
  // then shorten them.
  const index_t want = 4 * static_cast<index_t>(threads);
  if (threads > 1 && ceil_div(m, tile_m) * ceil_div(n, tile_n) < want) {
    const index_t cols = ceil_div(want, ceil_div(m, tile_m));
    tile_n = std::max(NR, ceil_div(ceil_div(n, cols), NR) * NR);
    if (ceil_div(m, tile_m) * ceil_div(n, tile_n) < want) {
      const index_t rows = ceil_div(want, ceil_div(n, tile_n));
      tile_m = std::max<index_t>(kMR, ceil_div(ceil_div(m, rows), kMR) * kMR);
    }
  }
  const index_t tiles_n = ceil_div(n, tile_n);
  const index_t tiles = ceil_div(m, tile_m) * tiles_n;

#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (index_t tile = 0; tile < tiles; ++tile) {
    const index_t i0 = (tile / tiles_n) * tile_m, j0 = (tile % tiles_n) * tile_n;
    gemm_tile(trans_a, trans_b, i0, std::min(tile_m, m - i0), j0, std::min(tile_n, n - j0), k,
              alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

std::atomic<GemmImpl> g_impl{LATENT_WITH_BLAS ? GemmImpl::blas : GemmImpl::own};

#if LATENT_WITH_BLAS
// OpenBLAS (LP64) takes 32-bit sizes and strides.
bool fits_blas(index_t m, index_t n, index_t k, index_t lda, index_t ldb, index_t ldc) {
  for (const index_t v : {m, n, k, lda, ldb, ldc})
    if (v > INT_MAX) return false;
  return true;
}

template <class T>
void blas_call(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
  const auto i = [](index_t v) { return static_cast<blasint>(v); };
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, i(m), i(n), i(k), alpha, a, i(lda), b, i(ldb), beta, c,
                i(ldc));
  }
}

// OpenBLAS's own threading splits C by the thread count, and its kernels round an element
// differently depending on where the split falls, so its results change with the thread count.
// Here C is cut into tiles that depend on the shape alone (about 256 x 256, smaller when that
// leaves fewer than 4 tiles of a large product), each tile is one single-threaded OpenBLAS call,
// and the tiles are spread over OpenMP's threads: the same bits on any number of threads. A tile
// re-packs its slices of A and B, which near-square tiles keep cheap.
constexpr index_t kBlasTile = 256;
constexpr index_t kBlasMinTile = 64;
constexpr index_t kBlasSplitWork = index_t{1} << 24;  // multiply-adds worth 4 tiles at least

// Edges of about `target` (a multiple of 16 unless it is the whole extent) covering `extent`.
index_t tile_edge(index_t extent, index_t target) {
  if (extent <= target) return extent;
  const index_t pieces = ceil_div(extent, target);
  return ceil_div(ceil_div(extent, pieces), 16) * 16;
}

template <class T>
void gemm_blas(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
               index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  index_t tm = kBlasTile, tn = kBlasTile;
  auto tiles = [&] { return ceil_div(m, tile_edge(m, tm)) * ceil_div(n, tile_edge(n, tn)); };
  while (m * n * k >= kBlasSplitWork && tiles() < 4 && std::max(tm, tn) > kBlasMinTile) {
    index_t& larger = std::min(m, tm) >= std::min(n, tn) ? tm : tn;
    larger /= 2;
  }
  const index_t em = tile_edge(m, tm), en = tile_edge(n, tn);
  const index_t rows = ceil_div(m, em), cols = ceil_div(n, en);
  auto tile = [&](index_t t) {
    const index_t i0 = (t / cols) * em, j0 = (t % cols) * en;
    const index_t mm = std::min(em, m - i0), nn = std::min(en, n - j0);
    // One thread per call: OpenBLAS's OpenMP build threads whenever the calling task may.
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
#endif
    blas_call(trans_a, trans_b, mm, nn, k, alpha, trans_a ? a + i0 : a + i0 * lda, lda,
              trans_b ? b + j0 * ldb : b + j0, ldb, beta, c + i0 * ldc + j0, ldc);
#ifdef _OPENMP
    if (saved != 1) omp_set_num_threads(saved);
#endif
  };
  const index_t count = rows * cols;
#pragma omp parallel for schedule(static) if (count > 1)
  for (index_t t = 0; t < count; ++t) tile(t);
}
#endif

}  // namespace

void set_gemm_impl(GemmImpl impl) {
  if (impl == GemmImpl::blas && !LATENT_WITH_BLAS)
    throw Error("gemm", "this latent was built without OpenBLAS (LATENT_BLAS=OFF or not found)");
  g_impl.store(impl);
}

GemmImpl gemm_impl() {
  return g_impl.load();
}

bool gemm_has_blas() {
  return LATENT_WITH_BLAS;
}

const char* gemm_blas_config() {
#if LATENT_WITH_BLAS
  return openblas_get_config();
#else
  return "none";
#endif
}

template <class T>
void gemm(bool trans_a, bool trans_b, index_t m, index_t n, index_t k, T alpha, const T* a,
          index_t lda, const T* b, index_t ldb, T beta, T* c, index_t ldc, Stream) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {
    for (index_t i = 0; i < m; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0)) {
        for (index_t j = 0; j < n; ++j) ci[j] = T(0);
      } else {
        for (index_t j = 0; j < n; ++j) ci[j] *= beta;
      }
    }
    return;
  }
#if LATENT_WITH_BLAS
  // (The empty and k == 0 cases stay above: BLAS refuses the zero strides they may come with.)
  if (g_impl.load(std::memory_order_relaxed) == GemmImpl::blas &&
      fits_blas(m, n, k, lda, ldb, ldc)) {
    gemm_blas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  if (m * n * k <= kTinyWork) {
    gemm_tiny(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  gemm_blocked(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template void gemm<float>(bool, bool, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t, Stream);
template void gemm<double>(bool, bool, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t, Stream);

}  // namespace latent::kernels::cpu
