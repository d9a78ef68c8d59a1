// Small helpers the op and model tests share.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "core/latent.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent::testing {

inline constexpr TensorOptions kF64{.dtype = DType::f64};

// A float64 CPU tensor holding v.
inline Tensor f64(std::vector<double> v, const Shape& s, bool grad = false) {
  return Tensor::from_data(std::span<const double>(v), s,
                           {.dtype = DType::f64, .requires_grad = grad});
}

inline void expect_near_all(const std::vector<double>& got, const std::vector<double>& want,
                            double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// The latent::Error message f throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Expects msg to contain every part (an op name, a shape, ...).
inline void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts)
    EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  lacks: " << p;
}

// Values and gradients of `run` (float32, shapes large enough for the kernels' parallel loops)
// with one thread and with four must be bitwise equal.
template <class F>
void expect_thread_count_independent(F run) {
#if defined(_OPENMP)
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one = run();
  omp_set_num_threads(4);
  const std::vector<float> four = run();
  omp_set_num_threads(saved);
  EXPECT_EQ(one, four);
#else
  GTEST_SKIP() << "built without OpenMP";
#endif
}

// A fixture with a fresh, empty folder per test (in the system's temporary folder, named after
// the suite, the process and the test), removed afterwards.
class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            (std::string("latent_") + info->test_suite_name() + "_" + std::to_string(::getpid()) +
             "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A file of the folder.
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

}  // namespace latent::testing
