// Shape ops: hand-written expected layouts, gradients routed back to the right elements,
// accumulation, and error paths.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

void expect_mentions(const std::string& msg, std::initializer_list<const char*> parts) {
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
}

Tensor t64(const std::vector<double>& v, const Shape& shape, bool grad = false) {
  Tensor t = Tensor::from_data(std::span<const double>(v), shape, {.dtype = DType::f64});
  if (grad) t.requires_grad_();
  return t;
}

void expect_tensor(const Tensor& t, const Shape& shape, const std::vector<double>& want) {
  EXPECT_EQ(t.shape(), shape);
  EXPECT_EQ(t.to_vector<double>(), want);
}

TEST(ShapeOps, NarrowCols) {
  Tensor x = t64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4}, true);
  Tensor y = narrow_cols(x, 1, 2);
  expect_tensor(y, {2, 2}, {2, 3, 6, 7});
  y.backward(t64({10, 20, 30, 40}, {2, 2}));
  expect_tensor(x.grad(), {2, 4}, {0, 10, 20, 0, 0, 30, 40, 0});
  expect_tensor(narrow_cols(x, 0, 4), {2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  expect_tensor(narrow_cols(x, 3, 1), {2, 1}, {4, 8});
  EXPECT_EQ(narrow_cols(x, 4, 0).shape(), (Shape{2, 0}));
  // An empty band stays in the graph and contributes a zero gradient.
  Tensor w = t64({1, 2, 3, 4}, {2, 2}, true);
  sum(narrow_cols(w, 1, 0)).backward();
  expect_tensor(w.grad(), {2, 2}, {0, 0, 0, 0});
  EXPECT_EQ(narrow_cols(Tensor::zeros({0, 4}), 2, 2).shape(), (Shape{0, 2}));
  // float32, and a copy rather than a view.
  Tensor f = Tensor::from_data(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor g = narrow_cols(f, 1, 1);
  f.fill_(0.0);
  expect_tensor(g, {2, 1}, {2, 4});
}

TEST(ShapeOps, NarrowColsGradientsAccumulate) {
  // Both halves of one tensor feed a product: each half's gradient is the other half.
  Tensor x = t64({1, 2, 3, 4}, {1, 4}, true);
  sum(mul(narrow_cols(x, 0, 2), narrow_cols(x, 2, 2))).backward();
  expect_tensor(x.grad(), {1, 4}, {3, 4, 1, 2});
}

TEST(ShapeOps, NarrowColsErrors) {
  Tensor x = Tensor::zeros({2, 4});
  expect_mentions(error_of([&] { narrow_cols(x, 3, 2); }), {"[narrow_cols]", "[3, 5)", "(2, 4)"});
  expect_mentions(error_of([&] { narrow_cols(x, -1, 2); }), {"[narrow_cols]", "(2, 4)"});
  expect_mentions(error_of([&] { narrow_cols(x, 0, -1); }), {"[narrow_cols]", "(2, 4)"});
  expect_mentions(error_of([&] { narrow_cols(x, 5, 0); }), {"[narrow_cols]", "(2, 4)"});
  expect_mentions(error_of([] { narrow_cols(Tensor::zeros({8}), 0, 2); }),
                  {"[narrow_cols]", "2-D", "(8)"});
  expect_mentions(error_of([] { narrow_cols(Tensor(), 0, 1); }), {"[narrow_cols]"});
}

TEST(ShapeOps, ConcatCols) {
  Tensor a = t64({1, 2}, {2, 1}, true);
  Tensor b = t64({3, 4, 5, 6}, {2, 2}, true);
  Tensor y = concat_cols({a, b});
  expect_tensor(y, {2, 3}, {1, 3, 4, 2, 5, 6});
  y.backward(t64({10, 20, 30, 40, 50, 60}, {2, 3}));
  expect_tensor(a.grad(), {2, 1}, {10, 40});
  expect_tensor(b.grad(), {2, 2}, {20, 30, 50, 60});

  // Three inputs, one without a gradient, one used twice.
  Tensor c = t64({7, 8}, {2, 1});
  Tensor d = t64({1, 2, 3, 4}, {2, 2}, true);
  Tensor z = concat_cols({d, c, d});
  expect_tensor(z, {2, 5}, {1, 2, 7, 1, 2, 3, 4, 8, 3, 4});
  z.backward(t64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5}));
  expect_tensor(d.grad(), {2, 2}, {1 + 4, 2 + 5, 6 + 9, 7 + 10});
  EXPECT_FALSE(c.grad().defined());

  expect_tensor(concat_cols({a.detach()}), {2, 1}, {1, 2});
  EXPECT_EQ(concat_cols({Tensor::zeros({0, 2}), Tensor::zeros({0, 3})}).shape(), (Shape{0, 5}));
  expect_tensor(concat_cols({Tensor::zeros({2, 0}, {.dtype = DType::f64}), b.detach()}), {2, 2},
                {3, 4, 5, 6});
}

TEST(ShapeOps, ConcatColsErrors) {
  expect_mentions(error_of([] { concat_cols({}); }), {"[concat_cols]", "empty"});
  expect_mentions(error_of([] {
                    concat_cols({Tensor::zeros({2, 1}), Tensor::zeros({3, 2})});
                  }),
                  {"[concat_cols]", "row counts differ", "(2, 1)", "(3, 2)"});
  expect_mentions(error_of([] {
                    concat_cols({Tensor::zeros({2, 1}), Tensor::zeros({2})});
                  }),
                  {"[concat_cols]", "2-D", "(2)"});
  expect_mentions(
      error_of([] {
        concat_cols({Tensor::zeros({2, 1}), Tensor::zeros({2, 1}, {.dtype = DType::f64})});
      }),
      {"[concat_cols]"});
  expect_mentions(error_of([] {
                    concat_cols({Tensor::zeros({2, 1}), Tensor()});
                  }),
                  {"[concat_cols]", "input 1"});
}

TEST(ShapeOps, ConcatRows) {
  Tensor a = t64({1, 2}, {1, 2}, true);
  Tensor b = t64({3, 4, 5, 6}, {2, 2}, true);
  Tensor y = concat_rows({a, b});
  expect_tensor(y, {3, 2}, {1, 2, 3, 4, 5, 6});
  y.backward(t64({10, 20, 30, 40, 50, 60}, {3, 2}));
  expect_tensor(a.grad(), {1, 2}, {10, 20});
  expect_tensor(b.grad(), {2, 2}, {30, 40, 50, 60});

  // 3-D and 1-D inputs; an input without a gradient in the middle.
  Tensor c = t64({1, 2, 3, 4}, {1, 2, 2}, true);
  Tensor d = t64({5, 6, 7, 8}, {1, 2, 2});
  Tensor z = concat_rows({c, d, c});
  expect_tensor(z, {3, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4});
  sum(z).backward();
  expect_tensor(c.grad(), {1, 2, 2}, {2, 2, 2, 2});
  expect_tensor(concat_rows({t64({1, 2}, {2}), t64({3}, {1})}), {3}, {1, 2, 3});
}

TEST(ShapeOps, ConcatRowsErrors) {
  expect_mentions(error_of([] { concat_rows({}); }), {"[concat_rows]", "empty"});
  expect_mentions(error_of([] {
                    concat_rows({Tensor::zeros({2, 3}), Tensor::zeros({2, 4})});
                  }),
                  {"[concat_rows]", "(2, 3)", "(2, 4)"});
  expect_mentions(error_of([] {
                    concat_rows({Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 1})});
                  }),
                  {"[concat_rows]", "(2, 3)", "(2, 3, 1)"});
  expect_mentions(error_of([] { concat_rows({Tensor::scalar(1.0)}); }), {"[concat_rows]", "()"});
}

TEST(ShapeOps, TileRows) {
  Tensor x = t64({1, 2, 3, 4}, {2, 2}, true);
  Tensor y = tile_rows(x, 3);
  expect_tensor(y, {6, 2}, {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4});
  y.backward(t64({1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 300, 400}, {6, 2}));
  expect_tensor(x.grad(), {2, 2}, {111, 222, 333, 444});
  expect_tensor(tile_rows(t64({1, 2}, {2}), 2), {4}, {1, 2, 1, 2});
  EXPECT_EQ(tile_rows(x, 0).shape(), (Shape{0, 2}));
  EXPECT_EQ(tile_rows(Tensor::zeros({2, 3, 4}), 2).shape(), (Shape{4, 3, 4}));
}

// The gradient over many repeats is summed in double: 2^24 + 1000 ones is exact.
TEST(ShapeOps, TileRowsGradientAccumulatesInDouble) {
  const std::int64_t r = 1001;
  Tensor x = Tensor::zeros({1, 1}).requires_grad_();
  std::vector<float> dy(static_cast<std::size_t>(r), 1.0f);
  dy[0] = 16777216.0f;
  tile_rows(x, r).backward(Tensor::from_data(dy, {r, 1}));
  EXPECT_EQ(x.grad().item(), 16778216.0);
}

TEST(ShapeOps, TileRowsErrors) {
  expect_mentions(error_of([] {
                    tile_rows(Tensor::zeros({2, 3}), -1);
                  }),
                  {"[tile_rows]", "-1", "(2, 3)"});
  expect_mentions(error_of([] { tile_rows(Tensor::scalar(1.0), 2); }), {"[tile_rows]", "()"});
}

TEST(ShapeOps, Transpose) {
  Tensor x = t64({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor y = transpose(x);
  expect_tensor(y, {3, 2}, {1, 4, 2, 5, 3, 6});
  y.backward(t64({10, 40, 20, 50, 30, 60}, {3, 2}));
  expect_tensor(x.grad(), {2, 3}, {10, 20, 30, 40, 50, 60});
  expect_tensor(transpose(t64({1, 2, 3}, {1, 3})), {3, 1}, {1, 2, 3});
  EXPECT_EQ(transpose(Tensor::zeros({0, 4})).shape(), (Shape{4, 0}));
}

// Several tiles in each direction, with partial edge tiles, big enough for the parallel path.
TEST(ShapeOps, TransposeLarge) {
  const std::int64_t m = 301, n = 149;
  std::vector<double> v(static_cast<std::size_t>(m * n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  Tensor x = t64(v, {m, n}, true);
  Tensor y = transpose(x);
  std::vector<double> want(v.size());
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      want[static_cast<std::size_t>(j * m + i)] = static_cast<double>(i * n + j);
  EXPECT_EQ(y.to_vector<double>(), want);
  EXPECT_EQ(transpose(y).to_vector<double>(), v);
  transpose(y).backward(t64(v, {m, n}));
  EXPECT_EQ(x.grad().to_vector<double>(), v);
}

TEST(ShapeOps, TransposeErrors) {
  expect_mentions(error_of([] {
                    transpose(Tensor::zeros({2, 3, 4}));
                  }),
                  {"[transpose]", "2-D", "(2, 3, 4)"});
  expect_mentions(error_of([] { transpose(Tensor()); }), {"[transpose]"});
}

TEST(ShapeOps, GraphNodeNames) {
  Tensor x = t64({1, 2, 3, 4}, {2, 2}, true);
  EXPECT_EQ(narrow_cols(x, 0, 1).grad_fn_name(), "narrow_cols");
  EXPECT_EQ(concat_cols({x, x}).grad_fn_name(), "concat_cols");
  EXPECT_EQ(concat_rows({x}).grad_fn_name(), "concat_rows");
  EXPECT_EQ(tile_rows(x, 2).grad_fn_name(), "tile_rows");
  EXPECT_EQ(transpose(x).grad_fn_name(), "transpose");
  EXPECT_EQ(transpose(x.detach()).grad_fn_name(), "");
}

}  // namespace
}  // namespace latent
