#include <bit>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/file_util.h"

namespace latent::data {

// .npy stores little-endian data, which is copied as is: the engine targets little-endian hosts.
static_assert(std::endian::native == std::endian::little, "read_npy assumes a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  bool has_descr = false, has_order = false, has_shape = false;
};

// A parser for the one Python literal a .npy header holds:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const InputFile& in) : s_(text), in_(in) {}

  NpyHeader parse() {
    NpyHeader h;
    expect('{');
    for (;;) {
      if (peek() == '}') break;
      const std::string key = parse_string();
      expect(':');
      if (key == "descr") {
        h.descr = parse_string();
        h.has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        h.has_order = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        h.has_shape = true;
      } else {
        bad("unexpected key '" + key + "'");
      }
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') bad("expected ',' or '}'");
    }
    ++pos_;
    if (!h.has_descr || !h.has_order || !h.has_shape)
      bad("needs the keys 'descr', 'fortran_order' and 'shape'");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    in_.fail("malformed header " + s_ + ": " + what + " (at character " + std::to_string(pos_) +
             ")");
  }
  char peek() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') bad("expected a quoted string");
    const std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) bad("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    peek();
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    bad("expected True or False");
  }
  std::vector<std::int64_t> parse_tuple() {
    std::vector<std::int64_t> dims;
    expect('(');
    for (;;) {
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(s_[pos_]))) bad("expected a dimension size");
      std::int64_t v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s_[pos_] - '0', &v))
          bad("dimension size overflows");
        ++pos_;
      }
      if (pos_ < s_.size() && s_[pos_] == 'L') ++pos_;  // Python 2 long literals
      dims.push_back(v);
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') bad("expected ',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }

  const std::string& s_;
  const InputFile& in_;
  std::size_t pos_ = 0;
};

std::string shape_text(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

Tensor read_npy(const std::string& path, DType dtype, std::string* descr) {
  InputFile in(path, "read_npy");
  unsigned char pre[8];
  const std::size_t got = in.read(pre, 8);
  if (got < 8 || std::memcmp(pre, kMagic, 6) != 0)
    in.fail("bad magic: not a .npy file (it must start with \\x93NUMPY)");
  const int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3)
    in.fail("unsupported .npy format version " + std::to_string(major) + "." +
            std::to_string(minor) + " (versions 1.0, 2.0 and 3.0 are read)");
  // Version 1 has a 2-byte header length, later versions 4 bytes (little-endian).
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  unsigned char raw_len[4] = {0, 0, 0, 0};
  if (in.read(raw_len, len_bytes) < len_bytes) in.fail("truncated header length");
  const std::size_t header_len = std::size_t{raw_len[0]} | (std::size_t{raw_len[1]} << 8) |
                                 (std::size_t{raw_len[2]} << 16) | (std::size_t{raw_len[3]} << 24);
  // A float array's header is some 100 bytes (NumPy itself refuses more than 10000 unless told
  // otherwise); the cap keeps a compressed file, whose real size is unknown here, from making us
  // allocate what its length field claims.
  constexpr std::size_t kMaxHeader = std::size_t{1} << 20;
  if (header_len > kMaxHeader)
    in.fail("the header announces " + std::to_string(header_len) +
            " bytes, more than the 1 MiB a .npy header may have");
  if (in.size() >= 0 && static_cast<std::int64_t>(8 + len_bytes + header_len) > in.size())
    in.fail("truncated header: it announces " + std::to_string(header_len) +
            " bytes, the file has " + std::to_string(in.size() - 8 - len_bytes));
  std::string text(header_len, '\0');
  if (in.read(text.data(), header_len) < header_len)
    in.fail("truncated header: it announces " + std::to_string(header_len) + " bytes");
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0'))
    text.pop_back();
  const NpyHeader h = HeaderParser(text, in).parse();
  if (descr) *descr = h.descr;

  DType file_dtype = DType::f32;
  bool bytes = false;  // uint8 data, read as its values 0..255 (not scaled)
  if (h.descr == "<f4" || h.descr == "=f4") {
    file_dtype = DType::f32;
  } else if (h.descr == "<f8" || h.descr == "=f8") {
    file_dtype = DType::f64;
  } else if (h.descr == "|u1" || h.descr == "<u1" || h.descr == "=u1" || h.descr == "u1") {
    bytes = true;
  } else if (h.descr == ">f4" || h.descr == ">f8") {
    in.fail("big-endian data ('" + h.descr +
            "') is not supported; save it little-endian (arr.astype('<" + h.descr.substr(1) +
            "'))");
  } else {
    in.fail("dtype '" + h.descr +
            "' is not supported: only float32 ('<f4'), float64 ('<f8') and uint8 ('|u1') are read");
  }
  if (h.shape.size() > 4)
    in.fail("shape " + shape_text(h.shape) + " has " + std::to_string(h.shape.size()) +
            " dimensions; at most 4 are supported");
  // Column-major order only differs from row-major when two or more dimensions exceed 1.
  int nontrivial = 0;
  for (std::int64_t d : h.shape) nontrivial += d > 1;
  if (h.fortran_order && nontrivial > 1)
    in.fail("Fortran-order (column-major) array of shape " + shape_text(h.shape) +
            " is not supported; save np.ascontiguousarray(arr)");
  const std::int64_t esize = bytes ? 1 : static_cast<std::int64_t>(dtype_size(file_dtype));
  std::int64_t want = esize;
  for (std::int64_t d : h.shape)
    if (__builtin_mul_overflow(want, d, &want))
      in.fail("shape " + shape_text(h.shape) + " overflows: the data would exceed 2^63 bytes");

  const std::int64_t data_start = static_cast<std::int64_t>(8 + len_bytes + header_len);
  const std::string note = " for " + h.descr + " shape " + shape_text(h.shape);
  if (in.size() >= 0 && in.size() - data_start < want)
    in.fail("truncated data: expected " + std::to_string(want) + " bytes" + note +
            ", the file has " + std::to_string(in.size() - data_start));
  if (in.size() >= 0 && in.size() - data_start > want)
    in.fail(std::to_string(in.size() - data_start - want) + " bytes of trailing data after the " +
            std::to_string(want) + " bytes" + note);

  const Shape shape{std::span<const std::int64_t>(h.shape)};
  Tensor raw;
  if (bytes || in.compressed()) {
    // Compressed data has no size to check in advance, and uint8 data is widened afterwards: the
    // data is read in chunks into a buffer that grows with what arrives, so a header claiming
    // more than the file holds costs no more than its content.
    constexpr std::int64_t kChunk = std::int64_t{16} << 20;
    std::string buffer;
    while (static_cast<std::int64_t>(buffer.size()) < want) {
      const std::int64_t step = std::min(kChunk, want - static_cast<std::int64_t>(buffer.size()));
      const std::size_t at = buffer.size();
      buffer.resize(at + static_cast<std::size_t>(step));
      const std::size_t r = in.read(buffer.data() + at, static_cast<std::size_t>(step));
      if (static_cast<std::int64_t>(r) < step)
        in.fail("truncated data: expected " + std::to_string(want) + " bytes" + note + ", got " +
                std::to_string(at + r));
    }
    if (bytes) {
      std::vector<float> values(buffer.size());
      for (std::size_t i = 0; i < buffer.size(); ++i)
        values[i] = static_cast<float>(static_cast<unsigned char>(buffer[i]));
      raw = Tensor::from_data(std::span<const float>(values), shape);
      file_dtype = DType::f32;
    } else {
      raw = Tensor::empty(shape, {.dtype = file_dtype});
      if (want > 0) std::memcpy(raw.raw_data(), buffer.data(), static_cast<std::size_t>(want));
    }
  } else {
    raw = Tensor::empty(shape, {.dtype = file_dtype});
    const std::size_t r = in.read(raw.raw_data(), static_cast<std::size_t>(want));
    if (static_cast<std::int64_t>(r) < want)
      in.fail("truncated data: expected " + std::to_string(want) + " bytes" + note + ", got " +
              std::to_string(r));
  }
  if (in.compressed()) {
    const std::uint64_t extra = in.skip_rest();
    if (extra > 0)
      in.fail(std::to_string(extra) + " bytes of trailing data after the " + std::to_string(want) +
              " bytes" + note);
  }
  return file_dtype == dtype ? raw : raw.to(dtype);
}

void write_npy(const std::string& path, const Tensor& t) {
  check(t.defined(), "write_npy", path, ": the tensor is undefined");
  // Host copy first: a CUDA tensor, or an autograd node, never reaches the file writer.
  const Tensor host = t.detach().to(Device::cpu());
  std::vector<std::int64_t> dims(host.shape().begin(), host.shape().end());
  std::string header = std::string("{'descr': '") + (host.dtype() == DType::f32 ? "<f4" : "<f8") +
                       "', 'fortran_order': False, 'shape': " + shape_text(dims) + ", }";
  // Pad with spaces so that magic + version + length + header is a multiple of 64 bytes (the
  // alignment numpy uses), ending in a newline.
  const std::size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  const std::size_t len = header.size();
  const char prefix[10] = {'\x93',
                           'N',
                           'U',
                           'M',
                           'P',
                           'Y',
                           1,
                           0,
                           static_cast<char>(len & 0xFF),
                           static_cast<char>(len >> 8)};
  AtomicWriter out(path, "write_npy");
  out.write(prefix, sizeof prefix);
  out.write(header);
  out.write(host.raw_data(), static_cast<std::size_t>(host.numel()) * dtype_size(host.dtype()));
  out.commit();
}

}  // namespace latent::data
