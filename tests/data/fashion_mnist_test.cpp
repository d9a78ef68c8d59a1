// Fashion-MNIST: the real files (skipped when absent) and synthetic folders for the error paths.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent::data {
namespace {

using Bytes = std::vector<unsigned char>;

bool have_real_data() {
  return std::filesystem::exists(fashion_mnist_dir() + "/t10k-labels-idx1-ubyte.gz") ||
         std::filesystem::exists(fashion_mnist_dir() + "/t10k-labels-idx1-ubyte");
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

TEST(FashionMnist, TestSubsetShapesValuesAndLabels) {
  if (!have_real_data()) GTEST_SKIP() << "no Fashion-MNIST in " << fashion_mnist_dir();
  const Dataset test = fashion_mnist(Split::test, {.limit = 1000});
  ASSERT_EQ(test.size(), 1000);
  EXPECT_EQ(test.images.shape(), Shape({1000, 784}));
  EXPECT_EQ(test.labels.shape(), Shape({1000}));
  EXPECT_TRUE(test.images.device().is_cpu());
  const std::vector<float> x = test.images.to_vector<float>();
  EXPECT_EQ(*std::min_element(x.begin(), x.end()), 0.0f);
  EXPECT_EQ(*std::max_element(x.begin(), x.end()), 1.0f);
  for (float v : x) ASSERT_EQ(v, std::round(v * 255.0f) / 255.0f);  // byte / 255 exactly
  double mean = 0;
  for (float v : x) mean += v;
  mean /= static_cast<double>(x.size());
  EXPECT_GT(mean, 0.2);  // about 0.29 for Fashion-MNIST
  EXPECT_LT(mean, 0.4);

  const std::vector<float> y = test.labels.to_vector<float>();
  std::set<float> classes(y.begin(), y.end());
  EXPECT_EQ(classes.size(), 10u);
  EXPECT_EQ(*classes.begin(), 0.0f);
  EXPECT_EQ(*classes.rbegin(), 9.0f);
  EXPECT_EQ(y[0], 9.0f);  // the first test image is an ankle boot

  // A smaller limit is the same prefix.
  const Dataset head = fashion_mnist(Split::test, {.limit = 5});
  EXPECT_EQ(head.images.to_vector<float>(), test.subset(0, 5).images.to_vector<float>());
  EXPECT_EQ(head.labels.to_vector<float>(), std::vector<float>(y.begin(), y.begin() + 5));
}

TEST(FashionMnist, TrainSubset) {
  if (!have_real_data()) GTEST_SKIP() << "no Fashion-MNIST in " << fashion_mnist_dir();
  const Dataset train = fashion_mnist(Split::train, {.limit = 200});
  EXPECT_EQ(train.images.shape(), Shape({200, 784}));
  EXPECT_EQ(train.labels.to_vector<float>()[0], 9.0f);  // also an ankle boot
}

class FakeFashionMnist : public latent::testing::ScratchDirTest {
 protected:
  void write(const std::string& name, const Bytes& bytes) {
    std::ofstream(dir_ + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  // n images of side x side pixels whose value is (image + pixel) % 256, and labels.
  void write_set(const std::string& prefix, std::uint32_t n, std::uint32_t side, Bytes labels) {
    Bytes img = {0, 0, 0x08, 3};
    for (std::uint32_t d : {n, side, side})
      for (int s = 24; s >= 0; s -= 8) img.push_back(static_cast<unsigned char>(d >> s));
    for (std::uint32_t i = 0; i < n; ++i)
      for (std::uint32_t p = 0; p < side * side; ++p)
        img.push_back(static_cast<unsigned char>(i + p));
    Bytes lab = {0, 0, 0x08, 1, 0, 0, 0, static_cast<unsigned char>(labels.size())};
    lab.insert(lab.end(), labels.begin(), labels.end());
    write(prefix + "-images-idx3-ubyte", img);
    write(prefix + "-labels-idx1-ubyte", lab);
  }
};

TEST_F(FakeFashionMnist, ReadsUncompressedFilesAndScales) {
  write_set("train", 3, 28, {4, 0, 9});
  const Dataset d = fashion_mnist(Split::train, {.dir = dir_});
  EXPECT_EQ(d.images.shape(), Shape({3, 784}));
  EXPECT_EQ(d.labels.to_vector<float>(), (std::vector<float>{4, 0, 9}));
  const std::vector<float> x = d.images.to_vector<float>();
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 1.0f / 255.0f);
  EXPECT_EQ(x[784 + 254], 255.0f / 255.0f);  // image 1, pixel 254
  EXPECT_EQ(fashion_mnist(Split::train, {.dir = dir_, .limit = 2}).size(), 2);
}

TEST_F(FakeFashionMnist, MissingDataSaysHowToInstallIt) {
  const std::string nowhere = dir_ + "/absent";
  expect_error([&] { fashion_mnist(Split::test, {.dir = nowhere}); },
               {"[fashion_mnist]", nowhere, "dataset-fashion-mnist", "LATENT_FASHION_MNIST"});
  expect_error([&] { fashion_mnist(Split::test, {.dir = dir_}); },
               {dir_, "t10k-images-idx3-ubyte", ".gz", "dataset-fashion-mnist"});
  write_set("train", 1, 28, {0});
  expect_error([&] { fashion_mnist(Split::test, {.dir = dir_}); }, {"t10k-images-idx3-ubyte"});
  expect_error([&] { fashion_mnist(Split::train, {.dir = dir_, .limit = -1}); },
               {"limit must be >= 0"});
}

TEST_F(FakeFashionMnist, WrongContentsAreNamed) {
  write_set("train", 2, 27, {1, 2});
  expect_error([&] { fashion_mnist(Split::train, {.dir = dir_}); },
               {"train-images-idx3-ubyte", "(N, 28, 28), got ubyte (2, 27, 27)"});
  write_set("train", 2, 28, {1, 2, 3});
  expect_error([&] { fashion_mnist(Split::train, {.dir = dir_}); }, {"2 images", "3 labels"});
  write_set("train", 2, 28, {1, 10});
  expect_error([&] { fashion_mnist(Split::train, {.dir = dir_}); },
               {"train-labels-idx1-ubyte", "label 10 of example 1", "outside 0..9"});
}

TEST_F(FakeFashionMnist, FolderFromOptionThenEnvironment) {
  EXPECT_EQ(fashion_mnist_dir("/some/where"), "/some/where");
  const char* old = std::getenv("LATENT_FASHION_MNIST");
  const std::string saved = old ? old : "";
  ::setenv("LATENT_FASHION_MNIST", dir_.c_str(), 1);
  EXPECT_EQ(fashion_mnist_dir(), dir_);
  EXPECT_EQ(fashion_mnist_dir("/x"), "/x");
  ::unsetenv("LATENT_FASHION_MNIST");
  EXPECT_EQ(fashion_mnist_dir(), "/usr/share/datasets/fashion-mnist");
  if (old) ::setenv("LATENT_FASHION_MNIST", saved.c_str(), 1);
}

}  // namespace
}  // namespace latent::data
