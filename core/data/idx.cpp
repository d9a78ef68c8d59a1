#include <bit>
#include <cstring>

#include "core/data/dataset.h"
#include "core/data/file_util.h"
#include "core/data/idx_reader.h"

namespace latent::data {

namespace {

std::uint32_t load_be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uint64_t load_be64(const unsigned char* p) {
  return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}

std::string hex_byte(unsigned v) {
  const char* digits = "0123456789ABCDEF";
  return std::string("0x") + digits[(v >> 4) & 15] + digits[v & 15];
}

std::string dims_str(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

// Element i of the big-endian payload as float32 (integers above 2^24 round, doubles narrow).
float decode(std::uint8_t type, const unsigned char* data, std::int64_t i) {
  switch (type) {
    case kIdxUbyte:
      return static_cast<float>(data[i]);
    case kIdxSbyte:
      return static_cast<float>(static_cast<std::int8_t>(data[i]));
    case kIdxShort: {
      const unsigned char* p = data + 2 * i;
      return static_cast<float>(static_cast<std::int16_t>((p[0] << 8) | p[1]));
    }
    case kIdxInt:
      return static_cast<float>(static_cast<std::int32_t>(load_be32(data + 4 * i)));
    case kIdxFloat:
      return std::bit_cast<float>(load_be32(data + 4 * i));
    default:  // kIdxDouble
      return static_cast<float>(std::bit_cast<double>(load_be64(data + 8 * i)));
  }
}

}  // namespace

const char* idx_type_name(std::uint8_t type) {
  switch (type) {
    case kIdxUbyte:
      return "ubyte";
    case kIdxSbyte:
      return "sbyte";
    case kIdxShort:
      return "short";
    case kIdxInt:
      return "int";
    case kIdxFloat:
      return "float";
    case kIdxDouble:
      return "double";
    default:
      return "unknown";
  }
}

int idx_type_size(std::uint8_t type) {
  switch (type) {
    case kIdxUbyte:
    case kIdxSbyte:
      return 1;
    case kIdxShort:
      return 2;
    case kIdxInt:
    case kIdxFloat:
      return 4;
    case kIdxDouble:
      return 8;
    default:
      return 0;
  }
}

IdxArray read_idx_raw(const std::string& path, std::int64_t limit, std::string_view component) {
  InputFile in(path, component);
  unsigned char magic[4];
  const std::size_t got_magic = in.read(magic, 4);
  if (got_magic < 4)
    in.fail("too short for an IDX file: " + std::to_string(got_magic) +
            " bytes, the magic number alone takes 4");
  if (magic[0] != 0 || magic[1] != 0)
    in.fail("bad magic number " + hex_byte(magic[0]) + " " + hex_byte(magic[1]) + " " +
            hex_byte(magic[2]) + " " + hex_byte(magic[3]) +
            ": an IDX file starts with 0x00 0x00 <type> <ndim>");
  IdxArray out;
  out.type = magic[2];
  const int esize = idx_type_size(out.type);
  if (esize == 0)
    in.fail("unknown element type " + hex_byte(out.type) +
            " (known: 0x08 ubyte, 0x09 sbyte, 0x0B short, 0x0C int, 0x0D float, 0x0E double)");
  const int ndim = magic[3];
  if (ndim < 1 || ndim > 4)
    in.fail("has " + std::to_string(ndim) + " dimensions; 1 to 4 are supported");

  unsigned char raw_dims[16];
  const std::size_t dim_bytes = 4 * static_cast<std::size_t>(ndim);
  const std::size_t got_dims = in.read(raw_dims, dim_bytes);
  if (got_dims < dim_bytes)
    in.fail("truncated header: expected " + std::to_string(dim_bytes) +
            " bytes of dimension sizes, got " + std::to_string(got_dims));
  for (int d = 0; d < ndim; ++d)
    out.dims.push_back(static_cast<std::int64_t>(load_be32(raw_dims + 4 * d)));
  // Dimensions are 32-bit each; four of them can overflow 64 bits, which a corrupt header must
  // not turn into a small allocation.
  std::int64_t total_bytes = esize;
  for (std::int64_t dim : out.dims)
    if (__builtin_mul_overflow(total_bytes, dim, &total_bytes))
      in.fail("dimensions " + dims_str(out.dims) + " overflow: the data would exceed 2^63 bytes");

  const std::int64_t row_bytes = out.dims[0] > 0 ? total_bytes / out.dims[0] : 0;
  const bool full = limit <= 0 || limit >= out.dims[0];
  out.rows = full ? out.dims[0] : limit;
  const std::int64_t want = full ? total_bytes : out.rows * row_bytes;
  const std::int64_t header = 4 + static_cast<std::int64_t>(dim_bytes);
  const std::string shape_note =
      " for " + std::string(idx_type_name(out.type)) + " dimensions " + dims_str(out.dims);

  // On disk the size is known: reject a truncated file before allocating for it.
  if (in.size() >= 0 && in.size() - header < want)
    in.fail("truncated data: expected " + std::to_string(want) + " bytes" + shape_note +
            ", the file has " + std::to_string(in.size() - header));
  if (in.size() >= 0 && full && in.size() - header > want)
    in.fail(std::to_string(in.size() - header - want) + " bytes of trailing data after the " +
            std::to_string(want) + " bytes" + shape_note);

  // Compressed data grows the buffer as it arrives, so a header announcing far more than the
  // stream holds fails on the missing bytes, not on an enormous allocation.
  constexpr std::int64_t kChunk = std::int64_t{1} << 24;
  std::int64_t have = 0;
  while (have < want) {
    const std::int64_t step = std::min(kChunk, want - have);
    out.data.resize(static_cast<std::size_t>(have + step));
    const std::size_t r = in.read(out.data.data() + have, static_cast<std::size_t>(step));
    have += static_cast<std::int64_t>(r);
    if (static_cast<std::int64_t>(r) < step)
      in.fail("truncated data: expected " + std::to_string(want) + " bytes" + shape_note +
              ", got " + std::to_string(have));
  }
  if (full && in.compressed()) {
    const std::uint64_t extra = in.skip_rest();
    if (extra > 0)
      in.fail(std::to_string(extra) + " bytes of trailing data after the " + std::to_string(want) +
              " bytes" + shape_note);
  }
  return out;
}

Tensor read_idx(const std::string& path) {
  IdxArray a = read_idx_raw(path, 0, "read_idx");
  std::vector<std::int64_t> dims = a.dims;
  dims[0] = a.rows;
  Tensor t = Tensor::empty(Shape(std::span<const std::int64_t>(dims)));
  float* y = t.data<float>();
  const std::int64_t n = t.numel();
  const unsigned char* src = a.data.data();
  if (a.type == kIdxUbyte) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(src[i]);
  } else {
    for (std::int64_t i = 0; i < n; ++i) y[i] = decode(a.type, src, i);
  }
  return t;
}

}  // namespace latent::data
