// CUDA against the CPU reference for every case of the op table, forward and backward, at odd
// batch sizes. Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cmath>

#include "op_cases.h"

namespace latent::testing {
namespace {

struct Mismatch {
  bool ok = true;
  std::string what;
};

// require_nonzero: an all-zero reference would let a kernel that writes nothing pass. It applies to
// forward outputs; a gradient can be zero by the math (relu's act'' for instance), and gradients
// accumulate into zero-filled buffers, so a backward that writes nothing fails anyway wherever the
// reference is not zero.
Mismatch compare(const Tensor& gpu, const Tensor& cpu, double atol, double rtol,
                 const std::string& label, bool require_nonzero) {
  Mismatch m;
  const auto g = gpu.to_vector<double>();
  const auto c = cpu.to_vector<double>();
  if (g.size() != c.size()) return {false, label + ": sizes differ"};
  bool all_zero = true;
  for (std::size_t i = 0; i < c.size(); ++i) {
    all_zero = all_zero && c[i] == 0.0;
    const double err = std::fabs(g[i] - c[i]);
    if (!(err <= atol + rtol * std::fabs(c[i]))) {
      return {false, label + " element " + std::to_string(i) + ": gpu " + std::to_string(g[i]) +
                         " cpu " + std::to_string(c[i])};
    }
  }
  if (require_nonzero && all_zero && !c.empty())
    return {false, label + ": the CPU reference is all zeros"};
  return m;
}

class CudaParity : public ::testing::TestWithParam<std::size_t> {};

TEST_P(CudaParity, MatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  const OpCase& c = op_cases()[GetParam()];
  const Device gpu = Device::cuda(0);
  for (std::int64_t n : {1, 3, 127, 1025, 4099}) {
    SCOPED_TRACE(c.name + " n=" + std::to_string(n));
    auto cpu_in = make_inputs(c, n, DType::f32, Device::cpu(), 77, c.differentiable);
    auto gpu_in = make_inputs(c, n, DType::f32, gpu, 77, c.differentiable);
    Tensor gpu_out = c.fn(gpu_in);  // every op has a CUDA kernel: an error here fails
    Tensor cpu_out = c.fn(cpu_in);
    auto fwd = compare(gpu_out, cpu_out, c.atol, c.rtol, "forward", true);
    ASSERT_TRUE(fwd.ok) << fwd.what;
    if (!c.differentiable) continue;
    Generator wg(5);
    Tensor w = Tensor::rand(cpu_out.shape(), wg, {}, 0.5, 1.5);
    cpu_out.backward(w);
    gpu_out.backward(w.to(gpu));
    for (std::size_t i = 0; i < cpu_in.size(); ++i) {
      if (!cpu_in[i].requires_grad()) continue;
      const Tensor gc = cpu_in[i].grad(), gg = gpu_in[i].grad();
      ASSERT_EQ(gc.defined(), gg.defined()) << "input " << i;
      if (!gc.defined()) continue;
      auto bwd = compare(gg, gc, c.atol, c.rtol, "grad of input " + std::to_string(i), false);
      ASSERT_TRUE(bwd.ok) << bwd.what;
    }
  }
}

std::string case_name(const ::testing::TestParamInfo<std::size_t>& info) {
  std::string s;
  for (char ch : op_cases()[info.param].name)
    s += ch == '/' ? std::string("__")
                   : std::string(1, std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
  return s;
}

INSTANTIATE_TEST_SUITE_P(OpCases, CudaParity, ::testing::Range<std::size_t>(0, op_cases().size()),
                         case_name);

TEST(CudaDevice, RoundTripAndPool) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  Generator g(1);
  Tensor x = Tensor::randn({257, 33}, g);
  Tensor y = x.to(Device::cuda(0));
  EXPECT_TRUE(y.device().is_cuda());
  EXPECT_EQ(y.to(Device::cpu()).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(Tensor::full({5}, 2.5, {.device = Device::cuda(0)}).to_vector<float>(),
            std::vector<float>(5, 2.5f));
}

TEST(CudaDevice, PhiloxSameBitsOnBothBackends) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  Generator a(11), b(11);
  const auto cpu = Tensor::rand({4099}, a).to_vector<float>();
  const auto gpu = Tensor::rand({4099}, b, {.device = Device::cuda(0)}).to_vector<float>();
  EXPECT_EQ(cpu, gpu);  // uniform draws are exact integer arithmetic plus one multiply-add
  const auto cn = Tensor::randn({4099}, a).to_vector<float>();
  const auto gn = Tensor::randn({4099}, b, {.device = Device::cuda(0)}).to_vector<float>();
  for (std::size_t i = 0; i < cn.size(); ++i)
    EXPECT_NEAR(cn[i], gn[i], 1e-5f * (1 + std::fabs(cn[i])));
}

// The importance-sampling estimator draws a chunk's noise in one launch: on the GPU it must equal
// successive draws there bit for bit, and the CPU's draws to a few ulp.
TEST(CudaDevice, RandnDrawsMatchSuccessiveDrawsAndCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  const Device gpu = Device::cuda(0);
  Generator a(5), b(5), c(5);
  std::vector<Tensor> parts;
  for (int d = 0; d < 9; ++d) parts.push_back(Tensor::randn({13, 5}, a, {.device = gpu}));
  const auto stacked = Tensor::randn_draws(9, {13, 5}, b, {.device = gpu}).to_vector<float>();
  EXPECT_EQ(stacked, concat_rows(parts).to_vector<float>());
  const auto cpu = Tensor::randn_draws(9, {13, 5}, c).to_vector<float>();
  ASSERT_EQ(cpu.size(), stacked.size());
  for (std::size_t i = 0; i < cpu.size(); ++i)
    EXPECT_NEAR(cpu[i], stacked[i], 1e-5f * (1 + std::fabs(cpu[i])));
}

}  // namespace
}  // namespace latent::testing
