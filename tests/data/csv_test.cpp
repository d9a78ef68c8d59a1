// CSV reader: headers, delimiters, spacing, and the line and column of every bad cell.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/test_util.h"

namespace latent::data {
namespace {

class CsvTest : public latent::testing::ScratchDirTest {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
};

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

TEST_F(CsvTest, NumbersWithAndWithoutHeader) {
  Tensor t = read_csv(write("h.csv", "x,y,label\n1,2.5,0\n-3e2, +4 ,\"1\"\n"));
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2.5f, 0, -300, 4, 1}));

  t = read_csv(write("n.csv", "0.5\r\n\r\n1.5\r\n2.5"));  // CRLF, a blank line, no final newline
  EXPECT_EQ(t.shape(), Shape({3, 1}));
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0.5f, 1.5f, 2.5f}));

  t = read_csv(write("s.csv", "1;2\n3;4\n"), ';');
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(CsvTest, GzipCompressedFile) {
  const std::string path = dir_ + "/z.csv.gz";
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "a,b\n1,2\n3,4\n";
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
  EXPECT_EQ(read_csv(path).to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(CsvTest, BadCellsAreLocated) {
  const std::string bad = write("b.csv", "a,b,c\n1,2,3\n4,abc,6\n");
  expect_error([&] { read_csv(bad); },
               {"[read_csv]", bad, "line 3, column 2", "'abc' is not a number"});
  const std::string empty_cell = write("e.csv", "1,2,3\n4,,6\n");
  expect_error([&] { read_csv(empty_cell); }, {empty_cell, "line 2, column 2", "empty cell"});
  const std::string range = write("r.csv", "1e39\n");
  expect_error([&] { read_csv(range); }, {range, "line 1, column 1", "out of float32 range"});
}

TEST_F(CsvTest, RaggedRowsAreRejected) {
  const std::string ragged = write("g.csv", "1,2,3\n4,5,6\n\n7,8\n");
  expect_error([&] { read_csv(ragged); }, {ragged, "line 4 has 2 columns, expected 3", "line 1"});
  const std::string header = write("hd.csv", "a,b\n1,2,3\n");
  expect_error([&] { read_csv(header); }, {header, "header has 2 columns", "line 2 has 3"});
}

TEST_F(CsvTest, EmptyAndMissingFiles) {
  const std::string empty = write("empty.csv", "");
  expect_error([&] { read_csv(empty); }, {"[read_csv]", empty, "empty file"});
  const std::string blank = write("blank.csv", "\n  \n");
  expect_error([&] { read_csv(blank); }, {blank, "empty file"});
  const std::string only_header = write("oh.csv", "a,b\n");
  expect_error([&] { read_csv(only_header); }, {only_header, "no data rows"});
  const std::string missing = dir_ + "/missing.csv";
  expect_error([&] { read_csv(missing); }, {missing, "No such file"});
}

}  // namespace
}  // namespace latent::data
