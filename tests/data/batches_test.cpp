// Mini-batches: coverage, determinism per (seed, epoch), drop_last, views vs gathers, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <vector>

#include "core/dispatch.h"
#include "core/latent.h"

namespace latent::data {
namespace {

// Row i of an [n, 3] tensor holds (i, 10 i, 100 i), so a batch tells which rows it took.
Tensor numbered_rows(std::int64_t n) {
  std::vector<float> v;
  for (std::int64_t i = 0; i < n; ++i)
    for (float s : {1.0f, 10.0f, 100.0f}) v.push_back(static_cast<float>(i) * s);
  return Tensor::from_data(v, {n, 3});
}

// The row ids of every batch, checking each row is intact.
std::vector<std::int64_t> rows_seen(const Batches& b) {
  std::vector<std::int64_t> ids;
  for (const Tensor& x : b) {
    const std::vector<float> v = x.to_vector<float>();
    for (std::int64_t r = 0; r < x.dim(0); ++r) {
      const float id = v[static_cast<std::size_t>(3 * r)];
      EXPECT_EQ(v[static_cast<std::size_t>(3 * r + 1)], 10 * id);
      EXPECT_EQ(v[static_cast<std::size_t>(3 * r + 2)], 100 * id);
      ids.push_back(static_cast<std::int64_t>(id));
    }
  }
  return ids;
}

template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no latent::Error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
}

TEST(Batches, InOrderBatchesAreViews) {
  const Tensor x = numbered_rows(10);
  const Batches b = batches(x, {.batch = 3, .shuffle = false});
  ASSERT_EQ(b.count(), 4);
  EXPECT_EQ(b.batch(0).shape(), Shape({3, 3}));
  EXPECT_EQ(b.batch(3).shape(), Shape({1, 3}));
  EXPECT_EQ(b.batch(1).data<float>(), x.data<float>() + 9);  // shares x's storage
  std::vector<std::int64_t> expect(10);
  std::iota(expect.begin(), expect.end(), 0);
  EXPECT_EQ(rows_seen(b), expect);
  EXPECT_EQ(b.order(), expect);
}

TEST(Batches, DropLast) {
  const Tensor x = numbered_rows(10);
  const Batches b = batches(x, {.batch = 3, .seed = 1, .drop_last = true});
  EXPECT_EQ(b.count(), 3);
  const std::vector<std::int64_t> ids = rows_seen(b);
  EXPECT_EQ(ids.size(), 9u);
  EXPECT_EQ(std::vector<std::int64_t>(b.order().begin(), b.order().begin() + 9), ids);
  EXPECT_EQ(batches(x, {.batch = 11, .drop_last = true}).count(), 0);
  EXPECT_EQ(batches(x, {.batch = 11}).count(), 1);
  EXPECT_EQ(batches(x, {.batch = 5, .drop_last = true}).count(), 2);
}

TEST(Batches, ShuffledEpochCoversEveryRowOnce) {
  const Tensor x = numbered_rows(1001);
  int n_batches = 0;
  for (auto& batch : batches(x, {.batch = 64, .seed = 7, .epoch = 2})) {
    EXPECT_EQ(batch.dim(1), 3);
    ++n_batches;
  }
  EXPECT_EQ(n_batches, 16);
  std::vector<std::int64_t> ids = rows_seen(batches(x, {.batch = 64, .seed = 7, .epoch = 2}));
  ASSERT_EQ(ids.size(), 1001u);
  std::vector<std::int64_t> identity(1001);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_NE(ids, identity);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, identity);
}

TEST(Batches, PermutationDependsOnlyOnSeedAndEpoch) {
  const Tensor x = numbered_rows(200);
  const auto order = [&](std::uint64_t seed, std::int64_t epoch, std::int64_t batch) {
    return batches(x, {.batch = batch, .seed = seed, .epoch = epoch}).order();
  };
  EXPECT_EQ(order(3, 1, 32), order(3, 1, 32));
  EXPECT_EQ(order(3, 1, 32), order(3, 1, 7));  // the batch size does not change the order
  EXPECT_EQ(rows_seen(batches(x, {.batch = 32, .seed = 3, .epoch = 1})), order(3, 1, 32));
  EXPECT_NE(order(3, 1, 32), order(3, 2, 32));
  EXPECT_NE(order(3, 1, 32), order(4, 1, 32));
  // Different epochs are unrelated, not shifted copies of one another.
  const std::vector<std::int64_t> a = order(3, 1, 32), b = order(3, 2, 32);
  int same_place = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same_place += a[i] == b[i];
  EXPECT_LT(same_place, 10);  // about 1 expected
}

TEST(Batches, PermutationsAreUniform) {
  // All 6 orders of 3 rows should appear about equally often over epochs.
  const Tensor x = numbered_rows(3);
  std::map<std::vector<std::int64_t>, int> counts;
  const int epochs = 6000;
  for (int e = 0; e < epochs; ++e)
    ++counts[batches(x, {.batch = 3, .seed = 11, .epoch = e}).order()];
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [perm, c] : counts) {
    EXPECT_GT(c, 850);  // 1000 expected, sd about 29
    EXPECT_LT(c, 1150);
  }
}

TEST(Batches, HigherRankRowsAndDoubles) {
  std::vector<double> v(5 * 4);
  std::iota(v.begin(), v.end(), 0.0);
  const Tensor x = Tensor::from_data(v, {5, 2, 2}, {.dtype = DType::f64});
  const Batches b = batches(x, {.batch = 2, .seed = 5});
  EXPECT_EQ(b.batch(0).shape(), Shape({2, 2, 2}));
  EXPECT_EQ(b.batch(0).dtype(), DType::f64);
  const std::vector<double> first = b.batch(0).to_vector<double>();
  const std::int64_t r = b.order()[0];
  for (int k = 0; k < 4; ++k)
    EXPECT_EQ(first[static_cast<std::size_t>(k)], static_cast<double>(4 * r + k));
}

TEST(Batches, Errors) {
  const Tensor x = numbered_rows(4);
  expect_error([&] { batches(x, {.batch = 0}); }, {"[batches]", "batch must be >= 1, got 0"});
  expect_error([&] { batches(Tensor(), {}); }, {"[batches]", "undefined"});
  expect_error([&] { batches(Tensor::scalar(1.0), {}); }, {"[batches]", "scalar"});
  expect_error([&] { batches(x, {.epoch = -1}); }, {"[batches]", "epoch"});
  const Batches b = batches(x, {.batch = 3});
  expect_error([&] { b.batch(2); }, {"[batches]", "batch 2 out of range", "2 batches"});
  expect_error([&] { b.batch(-1); }, {"out of range"});
}

TEST(GatherRows, CopiesRowsInOrderAndChecksIndices) {
  const Tensor x = numbered_rows(5);
  const Tensor g = gather_rows(x, {4, 0, 4});
  EXPECT_EQ(g.shape(), Shape({3, 3}));
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{4, 40, 400, 0, 0, 0, 4, 40, 400}));
  EXPECT_EQ(gather_rows(x, {}).shape(), Shape({0, 3}));
  expect_error(
      [&] {
        gather_rows(x, {1, 5});
      },
      {"[gather_rows]", "index 5 at position 1", "5 rows"});
  expect_error([&] { gather_rows(x, {-1}); }, {"index -1"});
  expect_error([&] { gather_rows(Tensor::scalar(1.0), {0}); }, {"[gather_rows]", "scalar"});
}

TEST(Dataset, SubsetAndTo) {
  const Dataset d{.images = numbered_rows(6),
                  .labels = Tensor::from_data(std::vector<float>{0, 1, 2, 3, 4, 5}, {6})};
  const Dataset s = d.subset(2, 3);
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.images.to_vector<float>()[0], 2.0f);
  EXPECT_EQ(s.labels.to_vector<float>(), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(s.images.data<float>(), d.images.data<float>() + 6);  // a view
  expect_error([&] { d.subset(4, 3); }, {"[Dataset::subset]", "rows [4, 7)", "6 examples"});
  const Dataset unlabeled{.images = numbered_rows(2)};
  EXPECT_FALSE(unlabeled.subset(0, 1).labels.defined());
  const Dataset c = d.to(Device::cpu());
  EXPECT_EQ(c.images.data<float>(), d.images.data<float>());  // already there: no copy
  EXPECT_EQ(Dataset{}.size(), 0);
}

// A batch source draws the epoch's rows in order, one kernel per draw, and refuses bad use.
TEST(BatchSource, DrawsTheEpochsRowsInOrder) {
  const Tensor x = numbered_rows(10);
  BatchSource src(x);
  const std::vector<std::int64_t> order = batches(x, {.seed = 3, .epoch = 1}).order();
  src.start_epoch(order, 1);
  std::vector<std::int64_t> seen;
  for (std::int64_t n : {4, 4, 2}) {
    const std::int64_t before = dispatch::kernel_counts().calls;
    const Tensor b = src.draw(n);
    EXPECT_EQ(dispatch::kernel_counts().calls - before, 1);
    ASSERT_EQ(b.shape(), Shape({n, 3}));
    const std::vector<float> v = b.to_vector<float>();
    for (std::int64_t r = 0; r < n; ++r) {
      EXPECT_EQ(v[static_cast<std::size_t>(3 * r + 1)], 10 * v[static_cast<std::size_t>(3 * r)]);
      seen.push_back(static_cast<std::int64_t>(v[static_cast<std::size_t>(3 * r)]));
    }
  }
  EXPECT_EQ(seen, order);
  EXPECT_EQ(src.left(), 0);
  EXPECT_THROW(src.draw(1), Error);  // past the end of the epoch
  src.start_epoch(order, 2);         // a new epoch starts over
  EXPECT_EQ(src.left(), 10);
}

TEST(BatchSource, BinarizesWithAStreamPerEpoch) {
  const Tensor x = Tensor::full({200, 50}, 0.3);
  BatchSource src(x, {.binarize = true, .seed = 9});
  std::vector<std::int64_t> order(200);
  std::iota(order.begin(), order.end(), std::int64_t{0});
  src.start_epoch(order, 0);
  const std::vector<float> a = src.draw(200).to_vector<float>();
  double ones = 0;
  for (float v : a) {
    EXPECT_TRUE(v == 0.0f || v == 1.0f);
    ones += v;
  }
  EXPECT_NEAR(ones / static_cast<double>(a.size()), 0.3, 0.02);
  src.start_epoch(order, 0);
  EXPECT_EQ(src.draw(200).to_vector<float>(), a);  // the same epoch draws the same bits
  src.start_epoch(order, 1);
  EXPECT_NE(src.draw(200).to_vector<float>(), a);  // another epoch, other bits
}

TEST(BatchSource, BadUseIsAnError) {
  EXPECT_THROW(BatchSource bad{Tensor()}, Error);
  BatchSource src(numbered_rows(4));
  EXPECT_THROW(src.draw(1), Error);                       // before start_epoch
  EXPECT_THROW(src.start_epoch({0, 1, 2}, 0), Error);     // wrong length
  EXPECT_THROW(src.start_epoch({0, 1, 2, 4}, 0), Error);  // index out of range
  EXPECT_THROW(src.start_epoch({0, 1, 2, 3}, -1), Error);
  src.start_epoch({3, 2, 1, 0}, 0);
  EXPECT_THROW(src.draw(0), Error);
  EXPECT_THROW(src.draw(5), Error);
}

}  // namespace
}  // namespace latent::data
