// The IDX reader behind read_idx() and fashion_mnist(): the header and the raw payload, so that a
// caller can read only a prefix of the rows and convert the elements its own way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace latent::data {

// Element type codes of the IDX format (third byte of the magic number).
enum IdxType : std::uint8_t {
  kIdxUbyte = 0x08,
  kIdxSbyte = 0x09,
  kIdxShort = 0x0B,
  kIdxInt = 0x0C,
  kIdxFloat = 0x0D,
  kIdxDouble = 0x0E,
};

struct IdxArray {
  std::uint8_t type = 0;
  std::vector<std::int64_t> dims;   // the file's dimensions (1 to 4)
  std::int64_t rows = 0;            // rows read: dims[0], or fewer when limited
  std::vector<unsigned char> data;  // rows * (product of dims[1:]) elements, big-endian
};

// "ubyte", "int", ...; "unknown" for other codes.
const char* idx_type_name(std::uint8_t type);
// Bytes per element of a valid type code.
int idx_type_size(std::uint8_t type);

// Reads an IDX file (gzip when the name ends in .gz). limit > 0 reads only the first `limit` rows
// (dims[0]) and leaves the rest of the file unread, so it is neither decompressed nor checked;
// limit == 0 reads everything and rejects truncated data and trailing bytes.
// Throws latent::Error("[component] <path>: what is wrong").
IdxArray read_idx_raw(const std::string& path, std::int64_t limit, std::string_view component);

}  // namespace latent::data
