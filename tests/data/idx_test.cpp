// IDX reader: every element type, gzip, and every way a file can be wrong (hand-built bytes).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/idx_reader.h"
#include "core/latent.h"
#include "support/test_util.h"

namespace latent::data {
namespace {

using Bytes = std::vector<unsigned char>;

class IdxTest : public latent::testing::ScratchDirTest {
 protected:
  std::string write(const std::string& name, const Bytes& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string write_gz(const std::string& name, const Bytes& bytes) {
    const std::string path = dir_ + "/" + name;
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
    return path;
  }
};

// Header: 0 0 type ndim, then big-endian 32-bit sizes.
Bytes header(unsigned char type, const std::vector<std::uint32_t>& dims) {
  Bytes b = {0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
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

TEST_F(IdxTest, UbytePlainAndGzipGiveTheSameTensor) {
  const Bytes file = cat(header(0x08, {2, 3}), {0, 1, 2, 128, 254, 255});
  for (const std::string& path : {write("a-idx2-ubyte", file), write_gz("a-idx2-ubyte.gz", file)}) {
    const Tensor t = read_idx(path);
    EXPECT_EQ(t.shape(), Shape({2, 3})) << path;
    EXPECT_EQ(t.dtype(), DType::f32);
    EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 1, 2, 128, 254, 255})) << path;
  }
}

TEST_F(IdxTest, EveryElementTypeIsDecodedBigEndian) {
  EXPECT_EQ(read_idx(write("s", cat(header(0x09, {3}), {0xFF, 0x7F, 0x80}))).to_vector<float>(),
            (std::vector<float>{-1, 127, -128}));
  EXPECT_EQ(
      read_idx(write("h", cat(header(0x0B, {2}), {0xFF, 0xFE, 0x01, 0x2C}))).to_vector<float>(),
      (std::vector<float>{-2, 300}));
  Bytes ints = header(0x0C, {2});
  be32(ints, static_cast<std::uint32_t>(-70000));
  be32(ints, 123456);
  EXPECT_EQ(read_idx(write("i", ints)).to_vector<float>(), (std::vector<float>{-70000, 123456}));
  Bytes floats = header(0x0D, {2});
  be32(floats, std::bit_cast<std::uint32_t>(1.5f));
  be32(floats, std::bit_cast<std::uint32_t>(-2.25f));
  EXPECT_EQ(read_idx(write("f", floats)).to_vector<float>(), (std::vector<float>{1.5f, -2.25f}));
  Bytes doubles = header(0x0E, {1, 1, 1, 1});
  const std::uint64_t d = std::bit_cast<std::uint64_t>(3.125);
  be32(doubles, static_cast<std::uint32_t>(d >> 32));
  be32(doubles, static_cast<std::uint32_t>(d));
  const Tensor t = read_idx(write("d", doubles));
  EXPECT_EQ(t.shape(), Shape({1, 1, 1, 1}));
  EXPECT_EQ(t.item(), 3.125);
}

TEST_F(IdxTest, EmptyFirstDimension) {
  const Tensor t = read_idx(write("e", header(0x08, {0, 28, 28})));
  EXPECT_EQ(t.shape(), Shape({0, 28, 28}));
}

TEST_F(IdxTest, MissingOrUnreadableFilesNameThePath) {
  const std::string missing = dir_ + "/nope-idx1-ubyte";
  expect_error([&] { read_idx(missing); }, {"[read_idx]", missing, "No such file or directory"});
  expect_error([&] { read_idx(dir_); }, {"[read_idx]", dir_, "is a directory"});
}

TEST_F(IdxTest, MalformedHeadersAreRejected) {
  const std::string short_file = write("short", {0, 0});
  expect_error([&] { read_idx(short_file); }, {short_file, "too short", "2 bytes"});
  const std::string bad_magic = write("magic", cat({1, 0, 0x08, 1, 0, 0, 0, 1}, {7}));
  expect_error([&] { read_idx(bad_magic); }, {bad_magic, "bad magic number 0x01 0x00 0x08 0x01"});
  const std::string bad_type = write("type", cat(header(0x0A, {1}), {7}));
  expect_error([&] { read_idx(bad_type); }, {bad_type, "unknown element type 0x0A"});
  const std::string no_dims = write("ndim0", header(0x08, {}));
  expect_error([&] { read_idx(no_dims); }, {no_dims, "0 dimensions", "1 to 4"});
  const std::string five = write("ndim5", header(0x08, {1, 1, 1, 1, 1}));
  expect_error([&] { read_idx(five); }, {five, "5 dimensions"});
  Bytes cut = header(0x08, {2, 3});
  cut.resize(9);
  const std::string cut_header = write("cut", cut);
  expect_error([&] { read_idx(cut_header); },
               {cut_header, "truncated header", "expected 8", "got 5"});
  const std::uint32_t big = 0xFFFFFFFFu;
  const std::string huge = write("huge", header(0x0E, {big, big, big, big}));
  expect_error([&] { read_idx(huge); }, {huge, "overflow"});
}

TEST_F(IdxTest, TruncatedDataAndTrailingBytesAreRejected) {
  const std::string shortp = write("t", cat(header(0x0B, {3}), {0, 1, 0, 2, 0}));
  expect_error([&] { read_idx(shortp); }, {shortp, "truncated data", "expected 6 bytes", "has 5"});
  const std::string longp = write("l", cat(header(0x08, {2}), {1, 2, 3}));
  expect_error([&] { read_idx(longp); }, {longp, "1 bytes of trailing data", "after the 2 bytes"});
  // The same through gzip, where the sizes are only known while decompressing.
  const std::string short_gz = write_gz("t.gz", cat(header(0x0B, {3}), {0, 1, 0, 2, 0}));
  expect_error([&] { read_idx(short_gz); }, {short_gz, "truncated data", "expected 6", "got 5"});
  const std::string long_gz = write_gz("l.gz", cat(header(0x08, {2}), {1, 2, 3, 4}));
  expect_error([&] { read_idx(long_gz); }, {long_gz, "2 bytes of trailing data"});
  // A header announcing 4 GB with a tiny stream fails on the missing bytes, not on memory.
  const std::string lying_gz = write_gz("big.gz", cat(header(0x08, {65536, 65536}), {1, 2}));
  expect_error([&] { read_idx(lying_gz); }, {lying_gz, "truncated data", "got 2"});
}

TEST_F(IdxTest, CorruptGzipStreamsAreRejected) {
  Bytes data = header(0x08, {4096});
  for (int i = 0; i < 4096; ++i) data.push_back(static_cast<unsigned char>(i * 7));
  const std::string good = write_gz("g.gz", data);
  std::ifstream in(good, std::ios::binary);
  Bytes gz((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(gz.size(), 40u);

  Bytes cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(gz.size() / 2));
  const std::string cut_path = write("cut.gz", cut);
  expect_error([&] { read_idx(cut_path); }, {cut_path, "truncated"});

  Bytes flipped = gz;
  for (std::size_t i = 20; i < 30; ++i) flipped[i] ^= 0x5A;
  const std::string flipped_path = write("flip.gz", flipped);
  expect_error([&] { read_idx(flipped_path); }, {"[read_idx]", flipped_path, "gzip"});
}

TEST_F(IdxTest, LimitReadsOnlyAPrefix) {
  // Five rows announced, three present: the limited read never reaches the missing part.
  const std::string path = write_gz("p.gz", cat(header(0x08, {5, 2}), {1, 2, 3, 4, 5, 6}));
  const IdxArray a = read_idx_raw(path, 2, "test");
  EXPECT_EQ(a.type, kIdxUbyte);
  EXPECT_EQ(a.dims, (std::vector<std::int64_t>{5, 2}));
  EXPECT_EQ(a.rows, 2);
  EXPECT_EQ(a.data, (Bytes{1, 2, 3, 4}));
  expect_error([&] { read_idx_raw(path, 0, "test"); }, {"[test]", path, "truncated data"});
}

}  // namespace
}  // namespace latent::data
