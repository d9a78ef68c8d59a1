// .npy reader and writer, hand-built files, and the atomic write behind write_npy.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/file_util.h"
#include "core/latent.h"
#include "support/test_util.h"

namespace latent::data {
namespace {

class NpyTest : public latent::testing::ScratchDirTest {
 protected:
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// A .npy file: magic, version, little-endian header length (2 bytes for 1.x, 4 after), header.
std::string npy(int major, const std::string& dict, const std::string& payload) {
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const std::string header = dict + "\n";
  const std::size_t len = header.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out.push_back(static_cast<char>(len >> (8 * i)));
  return out + header + payload;
}

template <class T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
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

TEST_F(NpyTest, ReadsVersionsOneAndTwoAndEveryShapeForm) {
  const std::vector<float> f = {1, 2, 3, 4.5f, -5, 6};
  const std::string v1 = write(
      "v1.npy", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw(f)));
  Tensor t = read_npy(v1);
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.to_vector<float>(), f);

  const std::vector<double> d = {0.1, -2.5, 1e300};
  const std::string v2 = write(
      "v2.npy", npy(2, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f8\"}", raw(d)));
  t = read_npy(v2, DType::f64);
  EXPECT_EQ(t.dtype(), DType::f64);
  EXPECT_EQ(t.shape(), Shape({3}));
  EXPECT_EQ(t.to_vector<double>(), d);
  EXPECT_EQ(read_npy(v2).dtype(), DType::f32);  // converted on request
  EXPECT_FLOAT_EQ(read_npy(v2).to_vector<float>()[1], -2.5f);

  const std::string scalar =
      write("s.npy", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                         raw(std::vector<float>{7})));
  t = read_npy(scalar);
  EXPECT_EQ(t.ndim(), 0);
  EXPECT_EQ(t.item(), 7.0);

  const std::string empty =
      write("e.npy", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", ""));
  EXPECT_EQ(read_npy(empty).shape(), Shape({0, 4}));

  // Fortran order with one non-trivial dimension has the C layout.
  const std::string col =
      write("c.npy", npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 1), }",
                         raw(std::vector<float>{1, 2, 3})));
  EXPECT_EQ(read_npy(col).to_vector<float>(), (std::vector<float>{1, 2, 3}));
}

TEST_F(NpyTest, UnsupportedContentIsNamed) {
  const std::string ints = write(
      "i.npy",
      npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  expect_error([&] { read_npy(ints); }, {"[read_npy]", ints, "dtype '<i8' is not supported"});
  const std::string big = write(
      "b.npy",
      npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')));
  expect_error([&] { read_npy(big); }, {big, "big-endian"});
  const std::string fortran = write(
      "f.npy",
      npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", std::string(24, '\0')));
  expect_error([&] { read_npy(fortran); }, {fortran, "Fortran-order", "(2, 3)"});
  const std::string five =
      write("5.npy", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }",
                         std::string(4, '\0')));
  expect_error([&] { read_npy(five); }, {five, "5 dimensions"});
  const std::string v9 = write("v9.npy", npy(9, "{}", ""));
  expect_error([&] { read_npy(v9); }, {v9, "version 9.0"});
}

TEST_F(NpyTest, ReadsUint8AsItsValues) {
  std::string payload;
  for (int v : {0, 1, 127, 128, 254, 255}) payload.push_back(static_cast<char>(v));
  const std::string p = write(
      "u8.npy", npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", payload));
  const Tensor t = read_npy(p);
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 127, 128, 254, 255}));
  const std::string cut = write(
      "u8cut.npy", npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", "ab"));
  expect_error([&] { read_npy(cut); }, {cut, "truncated data", "expected 6 bytes"});
}

TEST_F(NpyTest, MalformedFilesAreRejected) {
  const std::string missing = dir_ + "/missing.npy";
  expect_error([&] { read_npy(missing); }, {missing, "No such file"});
  const std::string magic = write("m.npy", "PK\x03\x04 not numpy at all");
  expect_error([&] { read_npy(magic); }, {magic, "bad magic"});
  const std::string no_shape =
      write("n.npy", npy(1, "{'descr': '<f4', 'fortran_order': False}", ""));
  expect_error([&] { read_npy(no_shape); }, {no_shape, "malformed header", "'shape'"});
  const std::string garbled =
      write("g.npy", npy(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", ""));
  expect_error([&] { read_npy(garbled); }, {garbled, "malformed header", "True or False"});
  std::string cut_header = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "");
  cut_header.resize(20);
  const std::string cut = write("ch.npy", cut_header);
  expect_error([&] { read_npy(cut); }, {cut, "truncated header"});
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  const std::string shortp = write("t.npy", npy(1, dict, std::string(15, '\0')));
  expect_error([&] { read_npy(shortp); },
               {shortp, "truncated data", "expected 16 bytes", "has 15"});
  const std::string longp = write("l.npy", npy(1, dict, std::string(17, '\0')));
  expect_error([&] { read_npy(longp); }, {longp, "1 bytes of trailing data"});
}

// A compressed file's real size is unknown before it is inflated: a version 2 header length of
// nearly 4 GiB is refused from the length field, before anything is allocated for it.
TEST_F(NpyTest, CompressedHugeHeaderLengthIsRefusedBeforeAllocating) {
  const std::string bytes = std::string("\x93NUMPY\x02\x00\xf0\xff\xff\xff", 12) + "{'descr'";
  const std::string path = dir_ + "/huge_header.npy.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
  expect_error([&] { read_npy(path); }, {path, "4294967280 bytes", "1 MiB"});
}

TEST_F(NpyTest, WriteReadRoundTrip) {
  Generator gen(3);
  const Tensor x = Tensor::randn({4, 3, 2}, gen);
  const std::string path = dir_ + "/x.npy";
  write_npy(path, x);
  EXPECT_EQ(read_npy(path).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(read_npy(path).shape(), x.shape());

  // Version 1.0, header padded so that the data starts at a multiple of 64 bytes, as numpy does.
  const std::string bytes = slurp(path);
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const std::size_t header_len =
      static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_NE(bytes.find("'shape': (4, 3, 2)"), std::string::npos);
  EXPECT_EQ(bytes.size(), 10 + header_len + 24 * sizeof(float));

  const Tensor d =
      Tensor::from_data(std::vector<double>{1e-300, 2, -3}, {3}, {.dtype = DType::f64});
  write_npy(path, d);  // replaces the old file
  EXPECT_NE(slurp(path).find("'shape': (3,)"), std::string::npos);
  EXPECT_EQ(read_npy(path, DType::f64).to_vector<double>(), d.to_vector<double>());

  write_npy(path, Tensor::scalar(2.5));
  EXPECT_EQ(read_npy(path).item(), 2.5);
  EXPECT_EQ(entries(), std::vector<std::string>{"x.npy"});  // no temporary file left
}

TEST_F(NpyTest, FailedWritesLeaveNothingBehindAndKeepTheOldFile) {
  const Tensor x = Tensor::ones({2, 2});
  const std::string nowhere = dir_ + "/no/such/folder/x.npy";
  expect_error([&] { write_npy(nowhere, x); },
               {"[write_npy]", nowhere, "No such file or directory"});
  EXPECT_FALSE(std::filesystem::exists(nowhere));

  const std::string good = dir_ + "/good.npy";
  write_npy(good, x);
  const std::string before = slurp(good);
  expect_error([&] { write_npy(good, Tensor()); }, {"[write_npy]", good, "undefined"});
  EXPECT_EQ(slurp(good), before);

  // A failure after data was written (the rename onto a folder fails): the temporary file goes.
  const std::string folder = dir_ + "/folder.npy";
  std::filesystem::create_directories(folder + "/inside");
  expect_error([&] { write_npy(folder, x); }, {"[write_npy]", folder, "rename failed"});
  EXPECT_EQ(entries(), (std::vector<std::string>{"folder.npy", "good.npy"}));
}

TEST_F(NpyTest, AtomicWriterAbandonedMidwayKeepsTheOldFile) {
  const std::string path = write("ckpt.bin", "the good checkpoint");
  try {
    AtomicWriter out(path, "save");
    out.write("half of a new ch");
    EXPECT_TRUE(std::filesystem::exists(out.temp_path()));
    throw std::runtime_error("failure while writing");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(path), "the good checkpoint");
  EXPECT_EQ(entries(), std::vector<std::string>{"ckpt.bin"});

  write_file_atomic(path, "the new checkpoint", "save");
  EXPECT_EQ(slurp(path), "the new checkpoint");
  EXPECT_EQ(read_file(path, "load"), "the new checkpoint");
  EXPECT_EQ(entries(), std::vector<std::string>{"ckpt.bin"});
}

}  // namespace
}  // namespace latent::data
