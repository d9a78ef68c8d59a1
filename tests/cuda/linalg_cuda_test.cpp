// GPU-only checks the op-case table does not cover: GEMM accuracy with TF32 off (and on), the
// cuBLASLt epilogue against our own epilogue kernel in the dense layer, the multi-tensor SGD and
// Adam steps and gradient clipping against the CPU, and bit-for-bit repeatability of a forward
// and backward pass. Every test skips itself without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/latent.h"
#include "kernels/dense.h"

namespace latent {
namespace {

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

Tensor uniform(const Shape& shape, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator g(seed);
  return Tensor::rand(shape, g, {}, lo, hi);
}

std::vector<double> values(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<double>();
}

// Element-wise |got - want| <= tol * scale[i], where scale bounds the rounding of a sum of
// products (sum of |terms|), so that cancellation does not make the test flaky.
void expect_close(const Tensor& got, const Tensor& want, const Tensor& scale, double tol,
                  const std::string& what) {
  const auto g = values(got), w = values(want), s = values(scale);
  ASSERT_EQ(g.size(), w.size()) << what;
  ASSERT_EQ(g.size(), s.size()) << what;
  int bad = 0;
  for (std::size_t i = 0; i < g.size() && bad < 5; ++i) {
    if (!(std::fabs(g[i] - w[i]) <= tol * s[i] + 1e-30)) {
      ADD_FAILURE() << what << " element " << i << ": got " << g[i] << " want " << w[i]
                    << " (scale " << s[i] << ")";
      ++bad;
    }
  }
}

// The same bits: float32 results compared as raw memory.
void expect_same_bits(const Tensor& a, const Tensor& b, const std::string& what) {
  const auto x = a.to(Device::cpu()).to_vector<float>();
  const auto y = b.to(Device::cpu()).to_vector<float>();
  ASSERT_EQ(x.size(), y.size()) << what;
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0) << what;
}

struct Tf32Reset {
  bool saved = tf32_enabled();
  ~Tf32Reset() { set_tf32(saved); }
};

#if LATENT_WITH_CUDA
struct EpilogueReset {
  kernels::cuda::DenseEpilogue saved = kernels::cuda::dense_epilogue();
  ~EpilogueReset() { kernels::cuda::set_dense_epilogue(saved); }
};
#endif

// ---- GEMM ------------------------------------------------------------------------------------

TEST(CudaGemm, Tf32OffMatchesCpuWithinFloatRounding) {
  LATENT_REQUIRE_GPU();
  Tf32Reset reset;
  set_tf32(false);
  const Device gpu = Device::cuda(0);
  const std::int64_t m = 193, k = 257, n = 131;  // odd sizes: no tile divides them
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    SCOPED_TRACE(std::string("trans_a=") + (ta ? "1" : "0") + " trans_b=" + (tb ? "1" : "0"));
    const Tensor a = uniform(ta ? Shape{k, m} : Shape{m, k}, 10 + t);
    const Tensor b = uniform(tb ? Shape{n, k} : Shape{k, n}, 20 + t);
    const Tensor cpu = matmul(a, b, ta, tb);
    const Tensor scale = matmul(abs(a), abs(b), ta, tb);
    const Tensor got = matmul(a.to(gpu), b.to(gpu), ta, tb);
    expect_close(got, cpu, scale, 1e-5, "tf32 off");
  }
}

TEST(CudaGemm, Tf32OnStaysWithinTf32Rounding) {
  LATENT_REQUIRE_GPU();
  Tf32Reset reset;
  set_tf32(true);
  EXPECT_TRUE(tf32_enabled());
  const Device gpu = Device::cuda(0);
  const Tensor a = uniform({512, 384}, 31);
  const Tensor b = uniform({384, 256}, 32);
  const Tensor cpu = matmul(a, b);
  const Tensor got = matmul(a.to(gpu), b.to(gpu));
  // TF32 keeps 10 mantissa bits of each input: relative error about 2^-11 per product.
  expect_close(got, cpu, matmul(abs(a), abs(b)), 2e-3, "tf32 on");
  set_tf32(false);
  EXPECT_FALSE(tf32_enabled());
}

TEST(CudaGemm, EmptyInnerDimensionGivesZeros) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const Tensor a = Tensor::zeros({7, 0}, {.device = gpu});
  const Tensor b = Tensor::zeros({0, 5}, {.device = gpu});
  const auto y = values(matmul(a, b));
  ASSERT_EQ(y.size(), 35u);
  for (double v : y) EXPECT_EQ(v, 0.0);
}

// ---- dense: cuBLASLt epilogue against our epilogue kernel --------------------------------------

#if LATENT_WITH_CUDA
TEST(CudaDense, LtEpilogueAgreesWithOwnEpilogue) {
  LATENT_REQUIRE_GPU();
  EpilogueReset reset;
  Tf32Reset tf32_reset;
  set_tf32(false);
  using kernels::cuda::DenseEpilogue;
  const Device gpu = Device::cuda(0);
  const std::int64_t n = 300, d = 77, h = 45;
  const Tensor x = uniform({n, d}, 41), w = uniform({h, d}, 42), b = uniform({h}, 43);
  // Rounding scale of x w^T + b.
  const Tensor scale = add(matmul(abs(x), abs(w), false, true), abs(b));
  const Tensor xg = x.to(gpu), wg = w.to(gpu), bg = b.to(gpu);
  for (Act act : {Act::identity, Act::relu}) {
    for (bool bias : {true, false}) {
      SCOPED_TRACE(std::string(act_name(act)) + (bias ? " with bias" : " without bias"));
      const Tensor bb = bias ? bg : Tensor();
      kernels::cuda::set_dense_epilogue(DenseEpilogue::own);
      const Tensor own = dense(xg, wg, bb, {act, 0.0f});
      kernels::cuda::set_dense_epilogue(DenseEpilogue::cublaslt);
      const Tensor lt = dense(xg, wg, bb, {act, 0.0f});
      const Tensor cpu = dense(x, w, bias ? b : Tensor(), {act, 0.0f});
      expect_close(lt, own, scale, 1e-5, "lt vs own");
      expect_close(own, cpu, scale, 1e-5, "own vs cpu");
    }
  }
  // gelu has no exact cuBLASLt epilogue: the Lt setting takes our path, bit for bit.
  kernels::cuda::set_dense_epilogue(DenseEpilogue::own);
  const Tensor own = dense(xg, wg, bg, {Act::gelu, 0.0f});
  kernels::cuda::set_dense_epilogue(DenseEpilogue::cublaslt);
  expect_same_bits(dense(xg, wg, bg, {Act::gelu, 0.0f}), own, "gelu falls back");
}

TEST(CudaDense, LtEpilogueGradientsMatchCpu) {
  LATENT_REQUIRE_GPU();
  EpilogueReset reset;
  Tf32Reset tf32_reset;
  set_tf32(false);
  kernels::cuda::set_dense_epilogue(kernels::cuda::DenseEpilogue::cublaslt);
  const Device gpu = Device::cuda(0);
  const Tensor x = uniform({129, 33}, 51), w = uniform({20, 33}, 52), b = uniform({20}, 53);
  auto run = [&](Device dev) {
    Tensor xs = x.to(dev).detach().requires_grad_();
    Tensor ws = w.to(dev).detach().requires_grad_();
    Tensor bs = b.to(dev).detach().requires_grad_();
    sum(square(dense(xs, ws, bs, {Act::relu, 0.0f}))).backward();
    return std::vector<Tensor>{xs.grad(), ws.grad(), bs.grad()};
  };
  const auto cpu = run(Device::cpu());
  const auto got = run(gpu);
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const auto c = values(cpu[i]), g = values(got[i]);
    ASSERT_EQ(c.size(), g.size());
    double peak = 0;
    for (double v : c) peak = std::max(peak, std::fabs(v));
    for (std::size_t j = 0; j < c.size(); ++j)
      EXPECT_NEAR(g[j], c[j], 1e-4 * peak) << "gradient " << i << " element " << j;
  }
}
#endif

// ---- optimizers --------------------------------------------------------------------------------

// 52 parameters (more than one launch holds), sizes from 1 to two and a bit chunks.
std::vector<Tensor> make_params(Device dev) {
  std::vector<Tensor> ps;
  const std::int64_t sizes[] = {9000, 561, 1, 4096, 4097, 33};
  for (int i = 0; i < 52; ++i) {
    const std::int64_t n = sizes[i % 6] + (i / 6);
    ps.push_back(uniform({n}, 100 + i).to(dev).detach().requires_grad_());
  }
  return ps;
}

// Step `s` of the gradients; parameter 2 gets none on step 0, so its update count lags the
// others' (per-parameter bias correction).
void set_grads(const std::vector<Tensor>& ps, int s) {
  for (std::size_t i = 0; i < ps.size(); ++i) {
    if (s == 0 && i == 2) {
      ps[i].set_grad(Tensor());
      continue;
    }
    const Tensor g = uniform(ps[i].shape(), 1000 * (s + 1) + i, -2.0, 2.0);
    ps[i].set_grad(g.to(ps[i].device()));
  }
}

void expect_params_match(const std::vector<Tensor>& gpu, const std::vector<Tensor>& cpu,
                         const std::string& what) {
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    const auto c = values(cpu[i]), g = values(gpu[i]);
    ASSERT_EQ(c.size(), g.size());
    int bad = 0;
    for (std::size_t j = 0; j < c.size() && bad < 3; ++j) {
      if (!(std::fabs(g[j] - c[j]) <= 1e-6 * (1.0 + std::fabs(c[j])))) {
        ADD_FAILURE() << what << ": parameter " << i << " element " << j << " gpu " << g[j]
                      << " cpu " << c[j];
        ++bad;
      }
    }
  }
}

void compare_optimizer(
    const std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>& make,
    const std::string& what) {
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> pc = make_params(Device::cpu()), pg = make_params(gpu);
  auto oc = make(pc), og = make(pg);
  for (int s = 0; s < 3; ++s) {
    set_grads(pc, s);
    set_grads(pg, s);
    oc->step();
    og->step();
  }
  expect_params_match(pg, pc, what);
  // The optimizer state (moments, momentum buffers, per-parameter counts) agrees too.
  const auto sc = oc->state(), sg = og->state();
  ASSERT_EQ(sc.size(), sg.size()) << what;
  for (std::size_t i = 0; i < sc.size(); ++i) {
    ASSERT_EQ(sc[i].first, sg[i].first) << what;
    const auto c = values(sc[i].second), g = values(sg[i].second);
    ASSERT_EQ(c.size(), g.size()) << what << " " << sc[i].first;
    for (std::size_t j = 0; j < c.size(); ++j)
      ASSERT_NEAR(g[j], c[j], 1e-6 * (1.0 + std::fabs(c[j]))) << what << " " << sc[i].first;
  }
}

TEST(CudaOptim, AdamMatchesCpu) {
  LATENT_REQUIRE_GPU();
  compare_optimizer(
      [](std::vector<Tensor> ps) {
        return std::make_unique<optim::Adam>(std::move(ps),
                                             optim::AdamOptions{.lr = 1e-2, .weight_decay = 0.1});
      },
      "adam");
}

TEST(CudaOptim, AdamWMatchesCpu) {
  LATENT_REQUIRE_GPU();
  compare_optimizer(
      [](std::vector<Tensor> ps) {
        return std::make_unique<optim::AdamW>(std::move(ps), optim::AdamWOptions{.lr = 1e-2});
      },
      "adamw");
}

TEST(CudaOptim, SgdMatchesCpu) {
  LATENT_REQUIRE_GPU();
  compare_optimizer(
      [](std::vector<Tensor> ps) {
        return std::make_unique<optim::SGD>(std::move(ps), optim::SGDOptions{.lr = 0.05});
      },
      "sgd");
  compare_optimizer(
      [](std::vector<Tensor> ps) {
        return std::make_unique<optim::SGD>(
            std::move(ps),
            optim::SGDOptions{.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 1e-3});
      },
      "sgd nesterov");
  compare_optimizer(
      [](std::vector<Tensor> ps) {
        return std::make_unique<optim::SGD>(
            std::move(ps), optim::SGDOptions{.lr = 0.05, .momentum = 0.5, .dampening = 0.25});
      },
      "sgd dampened");
}

TEST(CudaOptim, ClipGradNormMatchesCpuAndRepeats) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  std::vector<Tensor> pc = make_params(Device::cpu()), pg = make_params(gpu);
  set_grads(pc, 1);
  set_grads(pg, 1);
  const double want = optim::grad_norm(pc);
  const double got = optim::grad_norm(pg);
  EXPECT_NEAR(got, want, 1e-12 * want);
  EXPECT_EQ(optim::grad_norm(pg), got);  // identical bits on a second run
  const double nc = optim::clip_grad_norm(pc, 1.0);
  const double ng = optim::clip_grad_norm(pg, 1.0);
  EXPECT_NEAR(ng, nc, 1e-12 * nc);
  std::vector<Tensor> gc, gg;
  for (const Tensor& p : pc) gc.push_back(p.grad());
  for (const Tensor& p : pg) gg.push_back(p.grad());
  expect_params_match(gg, gc, "clipped gradients");
  EXPECT_NEAR(optim::grad_norm(pg), 1.0, 1e-5);
}

// ---- determinism -------------------------------------------------------------------------------

// A forward and backward through every family ported here; returns the output and the gradients.
std::vector<Tensor> pass(Device dev) {
  const Tensor x0 = uniform({1031, 97}, 61);
  const Tensor w10 = uniform({129, 97}, 62, -0.2, 0.2), b10 = uniform({129}, 63);
  const Tensor w20 = uniform({17, 129}, 64, -0.2, 0.2), b20 = uniform({17}, 65);
  Tensor x = x0.to(dev).detach().requires_grad_();
  Tensor w1 = w10.to(dev).detach().requires_grad_(), b1 = b10.to(dev).detach().requires_grad_();
  Tensor w2 = w20.to(dev).detach().requires_grad_(), b2 = b20.to(dev).detach().requires_grad_();
  const Tensor h = dense(x, w1, b1, {Act::gelu, 0.0f});
  const Tensor z = dense(h, w2, b2, {Act::tanh, 0.0f});
  const Tensor zz = concat_cols({z, narrow_cols(tile_rows(z, 2).rows(0, 1031), 3, 5)});
  const Tensor t = transpose(softplus(zz));
  const Tensor loss = add(add(sum(logsumexp(zz, 1)), mean(logmeanexp(t, 1))),
                          add(sum(sum(h, 0)), mean(matmul(t, zz))));
  loss.backward();
  return {loss, x.grad(), w1.grad(), b1.grad(), w2.grad(), b2.grad()};
}

TEST(CudaDeterminism, TwoRunsGiveIdenticalBits) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::cuda(0);
  const auto a = pass(gpu);
  const auto b = pass(gpu);
  for (std::size_t i = 0; i < a.size(); ++i)
    expect_same_bits(a[i], b[i], "output " + std::to_string(i));
  // And the same values as the CPU, within float rounding of long sums.
  const auto c = pass(Device::cpu());
  const double lc = values(c[0])[0], lg = values(a[0])[0];
  EXPECT_NEAR(lg, lc, 1e-4 * std::fabs(lc));
}

}  // namespace
}  // namespace latent
