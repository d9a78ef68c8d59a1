// Random draws as one share of a batch (RowShardScope) on the GPU: each share's draws are its
// rows of the whole batch's draw on the GPU (the CPU's own test: tests/core/shard_test.cpp), for
// the per-element paths of the noise, reparametrization (forward and backward, R = 1 and 3) and
// BatchSource kernels. Bitwise for the decisions (masks, Bernoulli, rows); the normals within
// 1e-6 of the whole draw's (the same float formula on one device). Skips itself without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

#define LATENT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU"

constexpr std::int64_t kRows = 10;
const std::vector<RowShard> kShares = {{0, 4, kRows}, {4, 3, kRows}, {7, 3, kRows}};

std::vector<float> share_rows(const Tensor& t, std::int64_t samples, const RowShard& s) {
  std::vector<float> out;
  for (std::int64_t r = 0; r < samples; ++r) {
    const std::vector<float> v =
        t.rows(r * kRows + s.first, s.count).to(Device::cpu()).to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b,
                  const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i], b[i], 1e-6 * (1 + std::abs(b[i]))) << what << " element " << i;
}

void expect_shares(const std::string& name, const Tensor& x, std::int64_t samples,
                   const std::function<Tensor(const Tensor&, Generator&)>& fn) {
  Generator whole_gen(42);
  const Tensor whole = fn(x, whole_gen);
  for (const RowShard& s : kShares) {
    Generator gen(42);
    Tensor part;
    {
      RowShardScope scope(s);
      part = fn(x.rows(s.first, s.count), gen);
    }
    expect_close(part.to(Device::cpu()).to_vector<float>(), share_rows(whole, samples, s),
                 name + " rows " + std::to_string(s.first));
    EXPECT_EQ(gen.offset(), whole_gen.offset()) << name;
  }
}

TEST(RowShardCuda, SharesDrawTheWholeBatchsNumbers) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::parse("cuda:0");
  Generator data(1);
  const Tensor x = Tensor::rand({kRows, 7}, data).to(gpu);
  const Tensor h = Tensor::randn({kRows, 6}, data).to(gpu);
  expect_shares("masking", x, 1,
                [](const Tensor& t, Generator& g) { return masking_noise(t, 0.3, g); });
  expect_shares("gaussian", x, 1,
                [](const Tensor& t, Generator& g) { return gaussian_noise(t, 0.5, g); });
  expect_shares("bernoulli", x, 1, [](const Tensor& t, Generator& g) { return bernoulli(t, g); });
  for (const std::int64_t samples : {1, 3}) {
    expect_shares("reparametrize", h, samples,
                  [&](const Tensor& t, Generator& g) { return reparametrize(t, samples, g); });
    expect_shares("reparametrize_kl", h, samples,
                  [&](const Tensor& t, Generator& g) { return reparametrize_kl(t, samples, g).z; });
  }
}

TEST(RowShardCuda, GradientsDrawTheSameNumbersAgain) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::parse("cuda:0");
  Generator data(2);
  const Tensor h0 = Tensor::randn({kRows, 6}, data).to(gpu);
  const std::int64_t samples = 3;
  const Tensor w = Tensor::randn({samples * kRows, 3}, data).to(gpu);
  auto grad = [&](const Tensor& h, const Tensor& weights) {
    Tensor p = h.clone().requires_grad_();
    Generator g(9);
    sum(mul(reparametrize(p, samples, g), weights)).backward();
    return p.grad();
  };
  const Tensor whole = grad(h0, w);
  for (const RowShard& s : kShares) {
    Tensor part;
    {
      RowShardScope scope(s);
      const Tensor ws =
          Tensor::from_data(share_rows(w, samples, s), {samples * s.count, 3}).to(gpu);
      part = grad(h0.rows(s.first, s.count), ws);
    }
    expect_close(part.to(Device::cpu()).to_vector<float>(),
                 whole.rows(s.first, s.count).to(Device::cpu()).to_vector<float>(),
                 "reparametrize gradient rows " + std::to_string(s.first));
  }
}

TEST(RowShardCuda, BatchSourceSharesDrawTheBatchsRowsAndBits) {
  LATENT_REQUIRE_GPU();
  const Device gpu = Device::parse("cuda:0");
  Generator data(3);
  const Tensor set = Tensor::rand({25, 5}, data).to(gpu);
  std::vector<std::int64_t> order(25);
  for (std::int64_t i = 0; i < 25; ++i) order[static_cast<std::size_t>(i)] = (i * 7) % 25;
  data::BatchSource whole(set, {.binarize = true, .seed = 4});
  whole.start_epoch(order, 0);
  const Tensor b = whole.draw(kRows);
  for (const RowShard& s : kShares) {
    data::BatchSource src(set, {.binarize = true, .seed = 4});
    src.start_epoch(order, 0);
    const Tensor p = src.draw(s.count, s.first, kRows);
    EXPECT_EQ(p.to(Device::cpu()).to_vector<float>(), share_rows(b, 1, s));
    const Tensor next = src.draw(1);  // the cursor moved past the whole batch
    const Tensor want = whole.draw(1);
    EXPECT_EQ(next.to(Device::cpu()).to_vector<float>(), want.to(Device::cpu()).to_vector<float>());
    whole.start_epoch(order, 0);
    whole.draw(kRows);
  }
}

}  // namespace
}  // namespace latent
