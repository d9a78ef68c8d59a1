#include <charconv>
#include <cmath>
#include <limits>

#include "core/data/dataset.h"
#include "core/data/file_util.h"

namespace latent::data {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A whole cell as a number ("1", "-2.5e3", "+4", "nan", "inf", optionally in double quotes).
bool parse_number(std::string_view cell, double& out) {
  cell = trim(cell);
  if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"')
    cell = trim(cell.substr(1, cell.size() - 2));
  if (!cell.empty() && cell.front() == '+') cell.remove_prefix(1);
  if (cell.empty()) return false;
  const char* end = cell.data() + cell.size();
  const auto [ptr, ec] = std::from_chars(cell.data(), end, out);
  return ec == std::errc() && ptr == end;
}

std::vector<std::string_view> split(std::string_view line, char delimiter) {
  std::vector<std::string_view> cells;
  std::size_t start = 0;
  for (;;) {
    const std::size_t pos = line.find(delimiter, start);
    if (pos == std::string_view::npos) {
      cells.push_back(line.substr(start));
      return cells;
    }
    cells.push_back(line.substr(start, pos - start));
    start = pos + 1;
  }
}

}  // namespace

Tensor read_csv(const std::string& path, char delimiter) {
  const std::string text = read_file(path, "read_csv");
  auto fail = [&](const std::string& what) { throw Error("read_csv", path + ": " + what); };

  std::vector<float> values;
  std::int64_t cols = -1, rows = 0, first_data_line = 0, header_cols = -1;
  std::int64_t line_no = 0;
  bool seen_first = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string_view line = trim(std::string_view(text).substr(pos, eol - pos));
    pos = eol + 1;
    ++line_no;
    if (line.empty()) continue;  // blank lines (a trailing newline, spacing) carry no row

    const std::vector<std::string_view> cells = split(line, delimiter);
    const std::int64_t n = static_cast<std::int64_t>(cells.size());
    std::vector<double> parsed(cells.size());
    std::int64_t bad = -1;
    for (std::int64_t c = 0; c < n && bad < 0; ++c)
      if (!parse_number(cells[static_cast<std::size_t>(c)], parsed[static_cast<std::size_t>(c)]))
        bad = c;

    if (!seen_first) {
      seen_first = true;
      if (bad >= 0) {  // not numbers: column names
        header_cols = n;
        continue;
      }
    }
    if (bad >= 0) {
      const std::string cell(trim(cells[static_cast<std::size_t>(bad)]));
      fail("line " + std::to_string(line_no) + ", column " + std::to_string(bad + 1) + ": " +
           (cell.empty() ? std::string("empty cell") : "'" + cell + "' is not a number"));
    }
    if (cols < 0) {
      cols = n;
      first_data_line = line_no;
      if (header_cols >= 0 && header_cols != cols)
        fail("the header has " + std::to_string(header_cols) + " columns but line " +
             std::to_string(line_no) + " has " + std::to_string(cols));
    } else if (n != cols) {
      fail("line " + std::to_string(line_no) + " has " + std::to_string(n) + " columns, expected " +
           std::to_string(cols) + " (as on line " + std::to_string(first_data_line) + ")");
    }
    for (std::int64_t c = 0; c < n; ++c) {
      const double v = parsed[static_cast<std::size_t>(c)];
      if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())
        fail("line " + std::to_string(line_no) + ", column " + std::to_string(c + 1) + ": " +
             std::string(trim(cells[static_cast<std::size_t>(c)])) + " is out of float32 range");
      values.push_back(static_cast<float>(v));
    }
    ++rows;
  }
  if (!seen_first) fail("empty file: no rows");
  if (rows == 0) fail("no data rows after the header line");
  return Tensor::from_data(std::span<const float>(values), {rows, cols});
}

}  // namespace latent::data
