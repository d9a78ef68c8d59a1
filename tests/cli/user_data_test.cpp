// The latent tool's data loading (apps/user_data.h): .npy (float and uint8, flat and image
// shaped), CSV, labels, the held-out split, the image shape and the range check, with every error
// naming the flag or the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/user_data.h"
#include "core/latent.h"
#include "support/test_util.h"

namespace latent::app {
namespace {

namespace fs = std::filesystem;

class UserDataTest : public latent::testing::ScratchDirTest {
 protected:
  // A .npy of `descr` elements with `shape` and raw `payload`.
  std::string npy(const std::string& name, const std::string& descr, const std::string& shape,
                  const std::string& payload) const {
    std::string header =
        "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xff);
    out += static_cast<char>(header.size() >> 8);
    std::ofstream(path(name), std::ios::binary) << out << header << payload;
    return path(name);
  }
  std::string floats(const std::vector<float>& v) const {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  }
  std::string text(const std::string& name, const std::string& content) const {
    std::ofstream(path(name)) << content;
    return path(name);
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST_F(UserDataTest, Uint8ImagesAreScaledAndKeepTheirShape) {
  std::string bytes;
  for (int i = 0; i < 10 * 4 * 3; ++i) bytes.push_back(static_cast<char>(i % 256 == 0 ? 255 : i));
  const std::string p = npy("img.npy", "|u1", "(10, 4, 3)", bytes);
  const UserData d = load_user_data({.data = p, .val_split = 0.2});
  EXPECT_EQ(d.train.size() + d.test.size(), 10);
  EXPECT_EQ(d.test.size(), 2);
  EXPECT_EQ(d.train.images.dim(1), 12);
  EXPECT_EQ(d.image.h, 4);
  EXPECT_EQ(d.image.w, 3);
  const std::vector<float> v = d.train.images.to_vector<float>();
  for (float x : v) {
    EXPECT_GE(x, 0.0f);
    EXPECT_LE(x, 1.0f);
  }
  EXPECT_NO_THROW(check_unit_range(d, "the Bernoulli likelihood"));
}

TEST_F(UserDataTest, FloatRowsLabelsAndASeededDisjointSplit) {
  std::vector<float> x(20 * 3), y(20);
  for (int i = 0; i < 20; ++i) {
    for (int j = 0; j < 3; ++j) x[i * 3 + j] = static_cast<float>(i) + 0.1f * j;
    y[i] = static_cast<float>(i);
  }
  const std::string px = npy("x.npy", "<f4", "(20, 3)", floats(x));
  const std::string py = npy("y.npy", "<f4", "(20,)", floats(y));
  const UserData a = load_user_data({.data = px, .labels = py, .val_split = 0.25, .seed = 3});
  const UserData b = load_user_data({.data = px, .labels = py, .val_split = 0.25, .seed = 3});
  const UserData c = load_user_data({.data = px, .labels = py, .val_split = 0.25, .seed = 4});
  EXPECT_EQ(a.test.size(), 5);
  EXPECT_EQ(a.train.size(), 15);
  EXPECT_EQ(a.test.labels.to_vector<float>(), b.test.labels.to_vector<float>());
  EXPECT_NE(a.test.labels.to_vector<float>(), c.test.labels.to_vector<float>());
  // Disjoint, together every row, each row with its own label.
  std::vector<float> all = a.train.labels.to_vector<float>();
  const std::vector<float> t = a.test.labels.to_vector<float>();
  all.insert(all.end(), t.begin(), t.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, y);
  const std::vector<float> tx = a.test.images.to_vector<float>();
  for (std::size_t i = 0; i < t.size(); ++i) EXPECT_EQ(tx[i * 3], t[i]);
  EXPECT_FALSE(a.image.defined());  // 3 values: no picture
  EXPECT_NE(error_of([&] {
              check_unit_range(a, "the Bernoulli likelihood");
            }).find("--likelihood gaussian"),
            std::string::npos);
}

TEST_F(UserDataTest, CsvWithTestDataAndAnImageShape) {
  const std::string train = text("train.csv", "a,b,c,d\n0,0.5,1,0.25\n1,1,0,0\n0.5,0.5,0.5,0.5\n");
  const std::string test = text("test.csv", "0.1,0.2,0.3,0.4\n");
  const UserData d = load_user_data({.data = train, .test_data = test, .image = "2x2"});
  EXPECT_EQ(d.train.size(), 3);
  EXPECT_EQ(d.test.size(), 1);
  EXPECT_EQ(d.image.h, 2);
  EXPECT_EQ(d.image.w, 2);
  EXPECT_NE(error_of([&] {
              load_user_data({.data = train, .test_data = test, .image = "3x3"});
            }).find("--image 3x3"),
            std::string::npos);
}

TEST_F(UserDataTest, BadInputIsNamed) {
  const std::string csv = text("a.csv", "1,2\n3,4\n5,6\n7,8\n9,10\n");
  auto mentions = [](const std::string& e, const std::string& part) {
    return e.find(part) != std::string::npos;
  };
  const std::string wrong_labels = text("l.csv", "1\n2\n");
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = csv, .labels = wrong_labels}); }),
                       "2 labels for 5 examples"));
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = csv, .val_split = 1.5}); }),
                       "--val-split 1.5"));
  const std::string narrow = text("n.csv", "1\n");
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = csv, .test_data = narrow}); }),
                       "--test-data"));
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = path("x.txt")}); }),
                       "not a folder of IDX files, a .npy or a .csv file"));
  const std::string nan = npy("nan.npy", "<f4", "(2, 2)", floats({0, 1, NAN, 0}));
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = nan}); }), "example 1, value 0"));
  const std::string flat = npy("flat.npy", "<f4", "(4,)", floats({0, 1, 0, 1}));
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = flat}); }), "examples are rows"));
  EXPECT_TRUE(mentions(error_of([&] { load_user_data({.data = dir_, .labels = wrong_labels}); }),
                       "--labels"));
}

}  // namespace
}  // namespace latent::app
