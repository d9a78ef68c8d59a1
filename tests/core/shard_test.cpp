// Random draws as one share of a batch (RowShardScope, data parallelism): the ranks together draw
// exactly the numbers of the whole batch, row for row, and move their generators as the whole
// batch's draw does; so do the gradients that draw the same numbers again, and batches drawn
// from a BatchSource (rows and binarization bits).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent {
namespace {

constexpr std::int64_t kRows = 10;
const std::vector<RowShard> kShares = {{0, 4, kRows}, {4, 3, kRows}, {7, 3, kRows}};

// Rows [first, first + count) of every block of `rows` rows of t (samples blocks).
std::vector<float> share_rows(const Tensor& t, std::int64_t samples, std::int64_t rows,
                              const RowShard& s) {
  std::vector<float> out;
  for (std::int64_t r = 0; r < samples; ++r) {
    const std::vector<float> v = t.rows(r * rows + s.first, s.count).to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// fn(x, gen) on the whole batch, and on each share inside its scope, from generators of one seed.
void expect_shares_draw_the_batch(const std::string& name, const Tensor& x, std::int64_t samples,
                                  const std::function<Tensor(const Tensor&, Generator&)>& fn) {
  Generator whole_gen(42);
  whole_gen.set_state(42, 5);
  const Tensor whole = fn(x, whole_gen);
  for (const RowShard& s : kShares) {
    Generator gen(42);
    gen.set_state(42, 5);
    Tensor part;
    {
      RowShardScope scope(s);
      part = fn(x.rows(s.first, s.count), gen);
    }
    EXPECT_EQ(part.to_vector<float>(), share_rows(whole, samples, kRows, s))
        << name << ", rows " << s.first << "..";
    EXPECT_EQ(gen.offset(), whole_gen.offset()) << name;
  }
}

TEST(RowShard, SharesDrawTheWholeBatchsNumbers) {
  Generator data(1);
  const Tensor x = Tensor::rand({kRows, 7}, data);
  const Tensor h = Tensor::randn({kRows, 6}, data);
  expect_shares_draw_the_batch(
      "masking", x, 1, [](const Tensor& t, Generator& g) { return masking_noise(t, 0.3, g); });
  expect_shares_draw_the_batch("salt_and_pepper", x, 1, [](const Tensor& t, Generator& g) {
    return salt_and_pepper(t, 0.3, g);
  });
  expect_shares_draw_the_batch(
      "gaussian", x, 1, [](const Tensor& t, Generator& g) { return gaussian_noise(t, 0.5, g); });
  expect_shares_draw_the_batch("bernoulli", x, 1,
                               [](const Tensor& t, Generator& g) { return bernoulli(t, g); });
  expect_shares_draw_the_batch("categorical", x, 1, [](const Tensor& t, Generator& g) {
    return categorical(t, g).reshape({t.dim(0), 1});
  });
  for (const std::int64_t samples : {1, 3}) {
    expect_shares_draw_the_batch("reparametrize", h, samples, [&](const Tensor& t, Generator& g) {
      return reparametrize(t, samples, g);
    });
    expect_shares_draw_the_batch(
        "reparametrize_kl", h, samples,
        [&](const Tensor& t, Generator& g) { return reparametrize_kl(t, samples, g).z; });
  }
}

// The backward draws the same numbers again: a share's gradient is its rows of the batch's.
TEST(RowShard, GradientsDrawTheSameNumbersAgain) {
  Generator data(2);
  const Tensor h0 = Tensor::randn({kRows, 6}, data);
  const std::int64_t samples = 2;
  const Tensor w = Tensor::randn({samples * kRows, 3}, data);
  auto grad = [&](const Tensor& h, const Tensor& weights, bool with_kl) {
    Tensor p = h.clone().requires_grad_();
    Generator g(9);
    Tensor z = with_kl ? reparametrize_kl(p, samples, g).z : reparametrize(p, samples, g);
    sum(mul(z, weights)).backward();
    return p.grad();
  };
  for (const bool with_kl : {false, true}) {
    const Tensor whole = grad(h0, w, with_kl);
    for (const RowShard& s : kShares) {
      Tensor part;
      {
        RowShardScope scope(s);
        const Tensor ws =
            Tensor::from_data(share_rows(w, samples, kRows, s), {samples * s.count, 3});
        part = grad(h0.rows(s.first, s.count), ws, with_kl);
      }
      EXPECT_EQ(part.to_vector<float>(), whole.rows(s.first, s.count).to_vector<float>())
          << (with_kl ? "reparametrize_kl" : "reparametrize") << ", rows " << s.first << "..";
    }
  }
}

TEST(RowShard, BatchSourceSharesDrawTheBatchsRowsAndBits) {
  Generator data(3);
  const Tensor set = Tensor::rand({25, 5}, data);
  std::vector<std::int64_t> order(25);
  for (std::int64_t i = 0; i < 25; ++i) order[static_cast<std::size_t>(i)] = (i * 7) % 25;
  data::BatchSource whole(set, {.binarize = true, .seed = 4});
  whole.start_epoch(order, 0);
  const Tensor b1 = whole.draw(kRows);
  const Tensor b2 = whole.draw(kRows);
  for (const RowShard& s : kShares) {
    data::BatchSource src(set, {.binarize = true, .seed = 4});
    src.start_epoch(order, 0);
    const Tensor p1 = src.draw(s.count, s.first, kRows);
    const Tensor p2 = src.draw(s.count, s.first, kRows);
    EXPECT_EQ(p1.to_vector<float>(), b1.rows(s.first, s.count).to_vector<float>());
    EXPECT_EQ(p2.to_vector<float>(), b2.rows(s.first, s.count).to_vector<float>());
    EXPECT_EQ(src.left(), whole.left());
  }
  data::BatchSource src(set, {});
  src.start_epoch(order, 0);
  EXPECT_THROW(src.draw(3, 8, kRows), Error);  // beyond the rows it moves past
  EXPECT_THROW(src.draw(3, 0, 30), Error);     // more than the epoch has left
}

TEST(RowShard, ScopesAreChecked) {
  EXPECT_THROW(RowShardScope({5, 6, 10}), Error);
  EXPECT_THROW(RowShardScope({0, 0, 10}), Error);
  RowShardScope scope({0, 4, 10});
  EXPECT_THROW(RowShardScope({4, 4, 10}), Error);  // no nesting
  Generator g(1);
  EXPECT_THROW(masking_noise(Tensor::zeros({5, 2}), 0.5, g), Error);  // 5 rows in a share of 4
  ASSERT_NE(current_row_shard(), nullptr);
  EXPECT_EQ(current_row_shard()->count, 4);
}

}  // namespace
}  // namespace latent
