// Tensor basics: factories, shapes, views, copies, devices, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

TEST(Shape, BasicsAndErrors) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.ndim(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.row_size(), 12);
  EXPECT_EQ(s.dim(-1), 4);
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_EQ(Shape{}.str(), "()");
  EXPECT_THROW((Shape{1, 2, 3, 4, 5}), Error);
  EXPECT_THROW((Shape{2, -1}), Error);
  EXPECT_THROW(s.dim(3), Error);
}

// Shapes whose element count overflows int64 are refused, even when a dimension is 0.
TEST(Shape, ElementCountsDoNotOverflow) {
  const std::int64_t big = std::int64_t{1} << 51;
  EXPECT_THROW(Shape({big, big, 0}), Error);
  EXPECT_THROW(Shape({std::int64_t{1} << 32, std::int64_t{1} << 32}), Error);
  EXPECT_EQ(Shape({std::int64_t{1} << 31, std::int64_t{1} << 31}).numel(), std::int64_t{1} << 62);
  EXPECT_EQ(Shape({big, 0}).numel(), 0);
  EXPECT_EQ(Shape({0, big}).row_size(), big);
}

TEST(Tensor, Factories) {
  auto z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), DType::f32);
  EXPECT_TRUE(z.device().is_cpu());
  for (float v : z.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  for (float v : Tensor::ones({4}).to_vector<float>()) EXPECT_EQ(v, 1.0f);
  for (double v : Tensor::full({2, 2}, 2.5, {.dtype = DType::f64}).to_vector<double>())
    EXPECT_EQ(v, 2.5);
  EXPECT_EQ(Tensor::scalar(3.0).item(), 3.0);
  EXPECT_EQ(Tensor::scalar(3.0).ndim(), 0);

  const std::vector<float> data{1, 2, 3, 4, 5, 6};
  auto t = Tensor::from_data(data, {2, 3});
  EXPECT_EQ(t.to_vector<float>(), data);
  auto td = Tensor::from_data(data, {3, 2}, {.dtype = DType::f64});
  EXPECT_EQ(td.dtype(), DType::f64);
  EXPECT_EQ(td.to_vector<double>()[5], 6.0);
  EXPECT_EQ(td.to_vector<float>()[4], 5.0f);  // converted on the way out
  EXPECT_THROW(Tensor::from_data(data, {4, 2}), Error);
}

TEST(Tensor, UndefinedTensorErrors) {
  Tensor u;
  EXPECT_FALSE(u.defined());
  EXPECT_THROW(u.shape(), Error);
  EXPECT_THROW(u.item(), Error);
  EXPECT_THROW(exp(u), Error);
  EXPECT_EQ(u.str(), "undefined");
}

TEST(Tensor, DataTypeMismatchIsAnError) {
  auto t = Tensor::zeros({2});
  EXPECT_NE(error_of([&] { t.data<double>(); }).find("float32"), std::string::npos);
}

TEST(Tensor, ItemNeedsOneElement) {
  EXPECT_NE(error_of([] { Tensor::zeros({2, 2}).item(); }).find("(2, 2)"), std::string::npos);
}

TEST(Tensor, ReshapeSharesStorage) {
  auto t = Tensor::from_data(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  auto r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  {
    NoGradGuard ng;
    r.fill_(7.0);
  }
  EXPECT_EQ(t.to_vector<float>()[0], 7.0f);
  EXPECT_THROW(t.reshape({4, -1}), Error);
  EXPECT_THROW(t.reshape({5}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
}

TEST(Tensor, RowsViewAndGradient) {
  auto t = Tensor::from_data(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2},
                             {.dtype = DType::f64, .requires_grad = true});
  auto mid = t.rows(1, 2);
  EXPECT_EQ(mid.shape(), (Shape{2, 2}));
  EXPECT_EQ(mid.to_vector<double>(), (std::vector<double>{3, 4, 5, 6}));
  auto y = mul(mid, 2.0);
  y.backward(Tensor::ones({2, 2}, {.dtype = DType::f64}));
  EXPECT_EQ(t.grad().to_vector<double>(), (std::vector<double>{0, 0, 2, 2, 2, 2}));
  EXPECT_THROW(t.rows(2, 2), Error);
  EXPECT_THROW(t.rows(-1, 1), Error);
}

TEST(Tensor, CloneIsIndependent) {
  auto t = Tensor::ones({3});
  auto c = t.clone();
  c.fill_(2.0);
  EXPECT_EQ(t.to_vector<float>()[0], 1.0f);
}

TEST(Tensor, InPlaceMethods) {
  auto a = Tensor::from_data(std::vector<float>{1, 2, 3}, {3});
  auto b = Tensor::from_data(std::vector<float>{10, 20, 30}, {3});
  a.add_(b, 0.5);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{6, 12, 18}));
  a.mul_(0.5);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{3, 6, 9}));
  a.copy_(Tensor::from_data(std::vector<double>{1, 1, 1}, {3}, {.dtype = DType::f64}));
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_THROW(a.add_(Tensor::ones({4})), Error);
  EXPECT_THROW(a.copy_(Tensor::ones({4})), Error);
  EXPECT_THROW(a.add_(Tensor::ones({3}, {.dtype = DType::f64})), Error);
}

TEST(Tensor, InPlaceOnTrackedLeafIsRefused) {
  auto w = Tensor::ones({3}, {.requires_grad = true});
  EXPECT_NE(error_of([&] { w.fill_(0.0); }).find("NoGradGuard"), std::string::npos);
  NoGradGuard ng;
  EXPECT_NO_THROW(w.fill_(0.0));
}

TEST(Tensor, DtypeConversionIsDifferentiable) {
  auto x = Tensor::from_data(std::vector<float>{1, 2}, {2}, {.requires_grad = true});
  auto y = x.to(DType::f64);
  EXPECT_EQ(y.dtype(), DType::f64);
  mul(y, 3.0).backward(Tensor::ones({2}, {.dtype = DType::f64}));
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{3, 3}));
}

TEST(Device, ParseAndNames) {
  EXPECT_TRUE(Device::parse("cpu").is_cpu());
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device(DeviceType::cuda, 1).str(), "cuda:1");
  EXPECT_THROW(Device::parse("tpu"), Error);
  EXPECT_THROW(Device::parse("cuda:x"), Error);
}

TEST(Device, CudaWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  const std::string msg = error_of([] { Device::cuda(0); });
  EXPECT_NE(msg.find("cuda:0"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { Tensor::zeros({2}).to(Device(DeviceType::cuda, 0)); }).find("cuda"),
            std::string::npos);
  EXPECT_TRUE(Device::best().is_cpu());
}

TEST(Device, Float64IsCpuOnly) {
  EXPECT_THROW(Tensor::zeros({2}, {.dtype = DType::f64, .device = Device(DeviceType::cuda, 0)}),
               Error);
}

}  // namespace
}  // namespace latent
