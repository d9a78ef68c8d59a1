// The CPU GEMM against a naive double-accumulating reference, for each implementation of the
// build (OpenBLAS when built with it, and the hand-written blocked kernel): odd sizes that leave
// edge tiles everywhere, several k blocks, all transpose combinations, padded leading dimensions,
// alpha/beta, degenerate sizes, and independence from the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/error.h"
#include "kernels/gemm.h"

namespace latent::kernels {
namespace {

struct Problem {
  bool ta = false, tb = false;
  index_t m = 0, n = 0, k = 0;
  index_t lda = 0, ldb = 0, ldc = 0;
};

// Stored A is [m, k] or [k, m] (trans), with `pad` extra columns per row; likewise B and C.
Problem make_problem(bool ta, bool tb, index_t m, index_t n, index_t k, index_t pad) {
  Problem p{ta, tb, m, n, k};
  p.lda = (ta ? m : k) + pad;
  p.ldb = (tb ? k : n) + pad + 1;
  p.ldc = n + pad + 2;
  return p;
}

template <class T>
std::vector<T> random_vector(std::size_t count, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(count);
  for (T& x : v) x = static_cast<T>(u(gen));
  return v;
}

// Runs the GEMM on random data and compares every element of C (and the untouched padding of
// C) with the reference. With beta = 0, C starts as NaN: it must be overwritten, never read.
template <class T>
void check_gemm(const Problem& p, T alpha, T beta) {
  SCOPED_TRACE(std::string(p.ta ? "T" : "N") + (p.tb ? "T" : "N") + " m=" + std::to_string(p.m) +
               " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) +
               " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta));
  const index_t a_rows = p.ta ? p.k : p.m, b_rows = p.tb ? p.n : p.k;
  const auto a = random_vector<T>(static_cast<std::size_t>(a_rows * p.lda), 1);
  const auto b = random_vector<T>(static_cast<std::size_t>(b_rows * p.ldb), 2);
  auto c = random_vector<T>(static_cast<std::size_t>(p.m * p.ldc), 3);
  if (beta == T(0))
    for (index_t i = 0; i < p.m; ++i)
      for (index_t j = 0; j < p.n; ++j) c[i * p.ldc + j] = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> c0 = c;

  cpu::gemm<T>(p.ta, p.tb, p.m, p.n, p.k, alpha, a.data(), p.lda, b.data(), p.ldb, beta, c.data(),
               p.ldc);

  const double eps = std::numeric_limits<T>::epsilon();
  int failures = 0;
  for (index_t i = 0; i < p.m && failures < 5; ++i) {
    for (index_t j = 0; j < p.ldc && failures < 5; ++j) {
      const double got = c[i * p.ldc + j];
      if (j >= p.n) {  // padding between rows of C is never written
        EXPECT_EQ(got, c0[i * p.ldc + j]) << "padding (" << i << ", " << j << ") written";
        continue;
      }
      double dot = 0, abs_dot = 0;
      for (index_t q = 0; q < p.k; ++q) {
        const double av = p.ta ? a[q * p.lda + i] : a[i * p.lda + q];
        const double bv = p.tb ? b[j * p.ldb + q] : b[q * p.ldb + j];
        dot += av * bv;
        abs_dot += std::fabs(av * bv);
      }
      const double old = beta == T(0) ? 0.0 : static_cast<double>(c0[i * p.ldc + j]);
      const double ref = double(alpha) * dot + double(beta) * old;
      // The standard bound for a k-term dot product, plus the beta term's rounding.
      const double tol = (double(p.k) + 3) * eps *
                             (std::fabs(double(alpha)) * abs_dot + std::fabs(double(beta) * old)) +
                         1e-30;
      if (!(std::fabs(got - ref) <= tol)) {
        ++failures;
        ADD_FAILURE() << "C(" << i << ", " << j << ") = " << got << ", expected " << ref
                      << " (tolerance " << tol << ")";
      }
    }
  }
}

struct Size {
  index_t m, n, k;
};

// Edge tiles in every direction, tiny (unblocked) and blocked paths, more than one k block,
// single rows/columns, and one dimension beyond the column and row panel limits.
const Size kSizes[] = {{1, 1, 1},     {3, 5, 7},     {17, 3, 65},  {65, 127, 17}, {127, 65, 30},
                       {200, 17, 65}, {1, 200, 127}, {200, 1, 65}, {65, 200, 1},  {33, 47, 401},
                       {15, 33, 193}, {2, 4100, 3},  {4101, 2, 3}};

template <class T>
void check_all_sizes(T alpha, T beta) {
  for (const Size& s : kSizes)
    for (int t = 0; t < 4; ++t)
      check_gemm<T>(make_problem(t & 1, t & 2, s.m, s.n, s.k, 3), alpha, beta);
}

// Every test below runs once per implementation, restoring the default afterwards.
class Gemm : public ::testing::TestWithParam<cpu::GemmImpl> {
 protected:
  void SetUp() override {
    saved_ = cpu::gemm_impl();
    cpu::set_gemm_impl(GetParam());
  }
  void TearDown() override { cpu::set_gemm_impl(saved_); }

 private:
  cpu::GemmImpl saved_ = cpu::GemmImpl::own;
};

std::vector<cpu::GemmImpl> implementations() {
  std::vector<cpu::GemmImpl> v = {cpu::GemmImpl::own};
  if (cpu::gemm_has_blas()) v.push_back(cpu::GemmImpl::blas);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Cpu, Gemm, ::testing::ValuesIn(implementations()),
                         [](const auto& param_info) {
                           return std::string(param_info.param == cpu::GemmImpl::blas ? "openblas"
                                                                                      : "own");
                         });

TEST(GemmImpl, ChoosingBlasWithoutItIsRefused) {
  if (cpu::gemm_has_blas()) {
    EXPECT_EQ(cpu::gemm_impl(), cpu::GemmImpl::blas);  // the default where it exists
    EXPECT_STRNE(cpu::gemm_blas_config(), "none");
  } else {
    EXPECT_THROW(cpu::set_gemm_impl(cpu::GemmImpl::blas), Error);
    EXPECT_EQ(cpu::gemm_impl(), cpu::GemmImpl::own);
  }
}

TEST_P(Gemm, FloatOverwriteIgnoresNanInC) {
  check_all_sizes<float>(1.0f, 0.0f);
}
TEST_P(Gemm, FloatAlphaBetaAccumulate) {
  check_all_sizes<float>(0.5f, 1.0f);
  for (int t = 0; t < 4; ++t)
    check_gemm<float>(make_problem(t & 1, t & 2, 65, 33, 200, 1), -1.5f, 0.25f);
}
TEST_P(Gemm, DoubleOverwriteIgnoresNanInC) {
  check_all_sizes<double>(1.0, 0.0);
}
TEST_P(Gemm, DoubleAlphaBetaAccumulate) {
  check_all_sizes<double>(0.5, 1.0);
  for (int t = 0; t < 4; ++t)
    check_gemm<double>(make_problem(t & 1, t & 2, 33, 65, 200, 1), -1.5, 0.25);
}

TEST_P(Gemm, TightLeadingDimensions) {
  for (int t = 0; t < 4; ++t) {
    check_gemm<float>(make_problem(t & 1, t & 2, 130, 70, 50, 0), 1.0f, 0.0f);
    check_gemm<double>(make_problem(t & 1, t & 2, 50, 70, 200, 0), 2.0, -1.0);
  }
}

TEST_P(Gemm, ZeroInnerDimensionScalesC) {
  std::vector<float> c(6, std::nanf(""));
  cpu::gemm<float>(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 0.0f, c.data(), 3);
  for (float v : c) EXPECT_EQ(v, 0.0f);
  std::vector<double> d = {1, 2, 3, 4, 5, 6};
  cpu::gemm<double>(true, true, 2, 3, 0, 1.0, nullptr, 2, nullptr, 1, 2.0, d.data(), 3);
  EXPECT_EQ(d, (std::vector<double>{2, 4, 6, 8, 10, 12}));
}

TEST_P(Gemm, EmptyOutputWritesNothing) {
  std::vector<float> c = {7, 7, 7};
  const std::vector<float> a = {1, 2, 3}, b = {1, 2, 3};
  cpu::gemm<float>(false, false, 0, 3, 1, 1.0f, a.data(), 1, b.data(), 3, 0.0f, c.data(), 3);
  cpu::gemm<float>(false, false, 1, 0, 3, 1.0f, a.data(), 3, b.data(), 1, 0.0f, c.data(), 3);
  EXPECT_EQ(c, (std::vector<float>{7, 7, 7}));
}

TEST_P(Gemm, AlphaZeroDoesNotReadInputs) {
  // BLAS semantics: alpha = 0 means C = beta * C, whatever A and B hold.
  const std::vector<float> a(4, std::nanf("")), b(4, std::nanf(""));
  std::vector<float> c = {1, 2, 3, 4};
  cpu::gemm<float>(false, false, 2, 2, 2, 0.0f, a.data(), 2, b.data(), 2, 0.5f, c.data(), 2);
  EXPECT_EQ(c, (std::vector<float>{0.5f, 1, 1.5f, 2}));
}

TEST_P(Gemm, HandComputed) {
  // [1 2 3; 4 5 6] x [7 8; 9 10; 11 12] = [58 64; 139 154]
  const std::vector<double> a = {1, 2, 3, 4, 5, 6}, b = {7, 8, 9, 10, 11, 12};
  std::vector<double> c(4);
  cpu::gemm<double>(false, false, 2, 2, 3, 1.0, a.data(), 3, b.data(), 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{58, 64, 139, 154}));
  // A^T A = [17 22 27; 22 29 36; 27 36 45]
  std::vector<double> g(9);
  cpu::gemm<double>(true, false, 3, 3, 2, 1.0, a.data(), 3, a.data(), 3, 0.0, g.data(), 3);
  EXPECT_EQ(g, (std::vector<double>{17, 22, 27, 22, 29, 36, 27, 36, 45}));
}

#ifdef _OPENMP
TEST_P(Gemm, ResultDoesNotDependOnThreadCount) {
  // An odd shape, and the training shapes of a 784-512 layer (forward, dx and dW) at batch 8
  // and 1024, in every transpose combination they use.
  struct Case {
    bool ta, tb;
    index_t m, n, k;
  };
  const Case cases[] = {{false, true, 301, 257, 450},   {false, true, 1024, 512, 784},
                        {false, false, 1024, 784, 512}, {true, false, 512, 784, 1024},
                        {false, true, 8, 512, 784},     {true, false, 512, 784, 8}};
  const int saved = omp_get_max_threads();
  for (const Case& t : cases) {
    const auto a = random_vector<float>(static_cast<std::size_t>(t.m * t.k), 4);
    const auto b = random_vector<float>(static_cast<std::size_t>(t.n * t.k), 5);
    const index_t lda = t.ta ? t.m : t.k, ldb = t.tb ? t.k : t.n;
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 3, 4}) {
      omp_set_num_threads(threads);
      std::vector<float> c(static_cast<std::size_t>(t.m * t.n));
      cpu::gemm<float>(t.ta, t.tb, t.m, t.n, t.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                       c.data(), t.n);
      results.push_back(c);
    }
    for (std::size_t i = 1; i < results.size(); ++i)
      EXPECT_EQ(results[0], results[i])
          << t.m << "x" << t.n << "x" << t.k << " with " << i + 1 << " threads";
  }
  omp_set_num_threads(saved);
}
#endif

}  // namespace
}  // namespace latent::kernels
