#include "core/checkpoint.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <unordered_map>

#include "core/autograd.h"
#include "core/data/file_util.h"
#include "core/error.h"
#include "core/tensor.h"

namespace latent {
namespace {

// The format is little-endian; so is every machine this engine targets (x86-64, aarch64, CUDA).
static_assert(std::endian::native == std::endian::little,
              "checkpoints assume a little-endian host");

constexpr const char* kLoad = "load";
constexpr const char* kSave = "save";
// The reference reader refuses headers above 100 MB: a larger length means a damaged file, and
// checking first avoids allocating whatever a corrupt length asks for.
constexpr std::uint64_t kMaxHeader = 100'000'000;
// Sizes and offsets beyond this cannot be real (and products of them cannot overflow uint64).
constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 52;

constexpr const char* kStepKey = "latent.step";
constexpr const char* kSeedKey = "latent.rng.seed";
constexpr const char* kOffsetKey = "latent.rng.offset";
constexpr const char* kOptimKey = "latent.optim.name";
constexpr const char* kLrKey = "latent.optim.lr";

struct Entry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct Header {
  Metadata metadata;
  std::vector<Entry> entries;  // by name
  std::uint64_t data_bytes = 0;
};

struct Contents {
  Header header;
  std::vector<unsigned char> data;
};

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(kLoad, path + ": " + what);
}

const char* dtype_tag(DType t) {
  return t == DType::f32 ? "F32" : "F64";
}

std::string offsets_str(std::uint64_t b, std::uint64_t e) {
  return "[" + std::to_string(b) + ", " + std::to_string(e) + "]";
}

// A JSON number that is a non-negative integer below kMaxBytes.
bool read_count(const nlohmann::json& j, std::uint64_t& out) {
  if (!j.is_number_unsigned()) return false;
  out = j.get<std::uint64_t>();
  return out < kMaxBytes;
}

Entry parse_entry(const std::string& path, const std::string& name, const nlohmann::json& j) {
  const std::string where = "tensor '" + name + "' ";
  if (!j.is_object()) fail(path, where + "is not described by a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!j.contains(key)) fail(path, where + "has no \"" + key + "\"");
  Entry e;
  e.name = name;
  const auto& dt = j["dtype"];
  if (!dt.is_string()) fail(path, where + "has a dtype that is not a string");
  const std::string dts = dt.get<std::string>();
  if (dts == "F32")
    e.dtype = DType::f32;
  else if (dts == "F64")
    e.dtype = DType::f64;
  else
    fail(path, where + "has dtype '" + dts + "'; only F32 and F64 are supported");

  const auto& sh = j["shape"];
  if (!sh.is_array()) fail(path, where + "has a shape that is not an array");
  if (sh.size() > static_cast<std::size_t>(Shape::kMaxDims))
    fail(path, where + "has " + std::to_string(sh.size()) + " dimensions; at most " +
                   std::to_string(Shape::kMaxDims) + " are supported");
  std::vector<std::int64_t> dims;
  std::uint64_t numel = 1;
  for (const auto& d : sh) {
    std::uint64_t v = 0;
    if (!read_count(d, v)) fail(path, where + "has a shape entry that is not a valid size");
    dims.push_back(static_cast<std::int64_t>(v));
    numel = v == 0 ? 0 : (numel > kMaxBytes / v ? kMaxBytes : numel * v);
  }
  try {
    e.shape = Shape(std::span<const std::int64_t>(dims));
  } catch (const Error& ex) {
    fail(path, where + "has a shape that " + ex.what());
  }

  const auto& off = j["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !read_count(off[0], e.begin) ||
      !read_count(off[1], e.end))
    fail(path, where + "has data_offsets that are not two byte offsets [begin, end]");
  if (e.end < e.begin)
    fail(path, where + "has data_offsets " + offsets_str(e.begin, e.end) + " that run backwards");
  const std::uint64_t want = numel >= kMaxBytes ? kMaxBytes : numel * dtype_size(e.dtype);
  if (e.end - e.begin != want)
    fail(path, where + "has shape " + e.shape.str() + " of " + dts + ", " + std::to_string(want) +
                   " bytes, but data_offsets " + offsets_str(e.begin, e.end) + " hold " +
                   std::to_string(e.end - e.begin) + " bytes");
  return e;
}

Header parse_header(const std::string& path, const std::string& text) {
  nlohmann::json j;
  // JSON allows a key twice in an object (the parser would keep the last): a header that names a
  // tensor or a metadata field twice is refused instead.
  std::vector<std::set<std::string>> keys;  // the keys seen in each open object
  std::string duplicate;
  auto on_event = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end && !keys.empty()) keys.pop_back();
    if (event == E::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  try {
    j = nlohmann::json::parse(text, on_event);
  } catch (const nlohmann::json::exception& ex) {
    fail(path, std::string("header is not valid JSON: ") + ex.what());
  }
  if (!duplicate.empty()) fail(path, "header names '" + duplicate + "' twice");
  if (!j.is_object()) fail(path, "header is not a JSON object");
  Header h;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(path, "metadata value of '" + k + "' is not a string");
        h.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    h.entries.push_back(parse_entry(path, key, value));
  }
  std::sort(h.entries.begin(), h.entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });

  // The buffer must be covered exactly: no overlap, no gap.
  std::vector<const Entry*> by_offset;
  for (const Entry& e : h.entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : by_offset) {
    if (e->begin < pos)
      fail(path, "tensor '" + e->name + "' at " + offsets_str(e->begin, e->end) +
                     " overlaps tensor '" + prev->name + "' at " +
                     offsets_str(prev->begin, prev->end));
    if (e->begin > pos)
      fail(path, "gap of " + std::to_string(e->begin - pos) + " bytes in the data before tensor '" +
                     e->name + "' at " + offsets_str(e->begin, e->end));
    pos = e->end;
    prev = e;
  }
  h.data_bytes = pos;
  return h;
}

// Reads the length and the header; leaves `in` at the first data byte.
Header read_header(data::InputFile& in) {
  const std::string& path = in.path();
  unsigned char len_bytes[8];
  const std::size_t got = in.read(len_bytes, 8);
  if (got < 8)
    fail(path, "truncated: " + std::to_string(got) + " bytes, fewer than the 8-byte header length");
  std::uint64_t n = 0;
  std::memcpy(&n, len_bytes, 8);
  const std::int64_t size = in.size();
  if (size >= 0 && n > static_cast<std::uint64_t>(size) - 8)
    fail(path, "header length " + std::to_string(n) + " is larger than the file (" +
                   std::to_string(size) + " bytes)");
  if (n > kMaxHeader)
    fail(path, "header length " + std::to_string(n) + " exceeds the limit of " +
                   std::to_string(kMaxHeader) + " bytes");
  std::string text(n, '\0');
  const std::size_t got_header = in.read(text.data(), n);
  if (got_header < n)
    fail(path, "truncated: the header needs " + std::to_string(n) + " bytes, the file holds " +
                   std::to_string(got_header));
  Header h = parse_header(path, text);
  if (size >= 0) {
    const std::uint64_t have = static_cast<std::uint64_t>(size) - 8 - n;
    if (have < h.data_bytes)
      fail(path, "truncated: the tensors need " + std::to_string(h.data_bytes) +
                     " bytes of data, the file holds " + std::to_string(have));
    if (have > h.data_bytes)
      fail(path, std::to_string(have - h.data_bytes) + " unexpected bytes after the last tensor");
  }
  return h;
}

Contents read_contents(const std::string& path) {
  data::InputFile in(path, kLoad);
  Contents c;
  c.header = read_header(in);
  // An uncompressed file's size was checked against the header. A compressed one has no size in
  // advance: its buffer grows with the data that actually arrives, so a header claiming more than
  // the file holds costs no more memory than the file's content (plus one chunk).
  constexpr std::uint64_t kChunk = std::uint64_t{16} << 20;
  const std::uint64_t need = c.header.data_bytes;
  std::uint64_t got = 0;
  while (got < need) {
    const std::uint64_t want = in.compressed() ? std::min(kChunk, need - got) : need - got;
    c.data.resize(static_cast<std::size_t>(got + want));
    const std::size_t n = in.read(c.data.data() + got, static_cast<std::size_t>(want));
    got += n;
    if (n < want)
      fail(path, "truncated: the tensors need " + std::to_string(need) +
                     " bytes of data, the file holds " + std::to_string(got));
  }
  // Compressed files have no size to check in advance.
  const std::uint64_t rest = in.skip_rest();
  if (rest > 0) fail(path, std::to_string(rest) + " unexpected bytes after the last tensor");
  return c;
}

// A CPU tensor holding an entry's values, in the file's dtype.
Tensor tensor_of(const Contents& c, const Entry& e) {
  const unsigned char* src = c.data.data() + e.begin;
  const auto n = static_cast<std::size_t>(e.shape.numel());
  if (e.dtype == DType::f32) {
    std::vector<float> v(n);
    if (n > 0) std::memcpy(v.data(), src, n * sizeof(float));
    return Tensor::from_data(std::span<const float>(v), e.shape, {.dtype = DType::f32});
  }
  std::vector<double> v(n);
  if (n > 0) std::memcpy(v.data(), src, n * sizeof(double));
  return Tensor::from_data(std::span<const double>(v), e.shape, {.dtype = DType::f64});
}

using Named = std::vector<std::pair<std::string, Tensor>>;

// Pairs every target with the entry `prefix + name` and checks that the file holds exactly these
// entries under `prefix`. Throws before anything is copied.
std::vector<std::pair<Tensor, const Entry*>> match(const std::string& path, const Header& h,
                                                   const Named& targets,
                                                   const std::string& prefix) {
  std::unordered_map<std::string, const Entry*> by_name;
  for (const Entry& e : h.entries) by_name[e.name] = &e;
  std::vector<std::pair<Tensor, const Entry*>> out;
  std::vector<std::string> missing;
  for (const auto& [name, t] : targets) {
    const auto it = by_name.find(prefix + name);
    if (it == by_name.end()) {
      missing.push_back(prefix + name);
      continue;
    }
    const Entry* e = it->second;
    if (!(e->shape == t.shape()))
      fail(path, e->name + " has shape " + e->shape.str() + " in the file but " + t.shape().str() +
                     " in the model");
    out.emplace_back(t, e);
    by_name.erase(it);
  }
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) list += ", ... (" + std::to_string(missing.size()) + " in all)";
    fail(path, "parameters missing from the file: " + list);
  }
  for (const Entry& e : h.entries)
    if (by_name.count(e.name) && e.name.compare(0, prefix.size(), prefix) == 0)
      fail(path, "tensor '" + e.name + "' in the file is not a parameter of the model");
  return out;
}

void copy_all(const Contents& c, const std::vector<std::pair<Tensor, const Entry*>>& pairs) {
  NoGradGuard no_grad;
  for (const auto& [param, entry] : pairs) {
    Tensor target = param;
    target.copy_(tensor_of(c, *entry));
  }
}

void write_checkpoint(const std::string& path, Named tensors, const Metadata& metadata) {
  std::sort(tensors.begin(), tensors.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < tensors.size(); ++i)
    check(tensors[i].first != tensors[i - 1].first, kSave, path, ": tensor name '",
          tensors[i].first, "' given twice");

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t pos = 0;
  for (const auto& [name, t] : tensors) {
    check(t.defined(), kSave, path, ": tensor '", name, "' is undefined");
    check(name != "__metadata__", kSave, path, ": '__metadata__' cannot name a tensor");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_tag(t.dtype());
    entry["shape"] = std::vector<std::int64_t>(t.shape().begin(), t.shape().end());
    entry["data_offsets"] = {pos, pos + bytes};
    header[name] = std::move(entry);
    pos += bytes;
  }
  std::string text = header.dump();
  // Padding puts the data at a multiple of 8 bytes, so a reader that maps the file can use the
  // doubles in place.
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t n = text.size();

  data::AtomicWriter out(path, kSave);
  out.write(&n, 8);
  out.write(text);
  for (const auto& [name, t] : tensors) {
    if (t.numel() == 0) continue;
    if (t.dtype() == DType::f32) {
      const std::vector<float> v = t.to_vector<float>();
      out.write(v.data(), v.size() * sizeof(float));
    } else {
      const std::vector<double> v = t.to_vector<double>();
      out.write(v.data(), v.size() * sizeof(double));
    }
  }
  out.commit();
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

const std::string& need(const std::string& path, const Metadata& m, const char* key) {
  const auto it = m.find(key);
  if (it == m.end()) fail(path, std::string("metadata lacks \"") + key + "\"");
  return it->second;
}

std::uint64_t need_u64(const std::string& path, const Metadata& m, const char* key) {
  const std::string& s = need(path, m, key);
  std::uint64_t v = 0;
  if (!parse_u64(s, v))
    fail(path, std::string("metadata \"") + key + "\" is '" + s + "', not a non-negative integer");
  return v;
}

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

void save(const nn::Module& module, const std::string& path, const Metadata& metadata) {
  write_checkpoint(path, module.named_parameters(), metadata);
}

Metadata load(nn::Module& module, const std::string& path) {
  const Contents c = read_contents(path);
  const auto pairs = match(path, c.header, module.named_parameters(), "");
  copy_all(c, pairs);
  return c.header.metadata;
}

Metadata read_metadata(const std::string& path) {
  data::InputFile in(path, kLoad);
  return read_header(in).metadata;
}

std::vector<std::pair<std::string, Shape>> list_tensors(const std::string& path) {
  data::InputFile in(path, kLoad);
  std::vector<std::pair<std::string, Shape>> out;
  for (const Entry& e : read_header(in).entries) out.emplace_back(e.name, e.shape);
  return out;
}

void save_training_state(const std::string& path, const nn::Module& module,
                         const optim::Optimizer& optimizer, const Generator& generator,
                         std::int64_t step, const Metadata& extra) {
  check(step >= 0, kSave, path, ": step must be >= 0, got ", step);
  Metadata meta = extra;
  const std::pair<const char*, std::string> own[] = {
      {kStepKey, std::to_string(step)},
      {kSeedKey, std::to_string(generator.seed())},
      {kOffsetKey, std::to_string(generator.offset())},
      {kOptimKey, optimizer.name()},
      {kLrKey, format_double(optimizer.lr())},
  };
  for (const auto& [k, v] : own) {
    check(!meta.count(k), kSave, path, ": extra metadata may not set the reserved key \"", k, "\"");
    meta[k] = v;
  }
  Named tensors;
  for (auto& [name, t] : module.named_parameters()) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer.state()) tensors.emplace_back("optim." + name, t);
  write_checkpoint(path, std::move(tensors), meta);
}

Metadata load_training_state(const std::string& path, nn::Module& module,
                             optim::Optimizer& optimizer, Generator& generator) {
  const Contents c = read_contents(path);
  const Header& h = c.header;
  const auto pairs = match(path, h, module.named_parameters(), "model.");

  optim::NamedTensors state;
  for (const Entry& e : h.entries) {
    if (e.name.rfind("model.", 0) == 0) continue;
    if (e.name.rfind("optim.", 0) != 0)
      fail(path, "tensor '" + e.name + "' is neither model.* nor optim.*");
    state.emplace_back(e.name.substr(6), tensor_of(c, e));
  }

  const Metadata& m = h.metadata;
  apply_training_state(path, m, state, optimizer, generator);
  copy_all(c, pairs);
  return m;
}

void apply_training_state(const std::string& path, const Metadata& m,
                          const optim::NamedTensors& state, optim::Optimizer& optimizer,
                          Generator& generator) {
  const std::uint64_t step = need_u64(path, m, kStepKey);
  if (step > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    fail(path, std::string("metadata \"") + kStepKey + "\" is out of range");
  const std::uint64_t seed = need_u64(path, m, kSeedKey);
  const std::uint64_t offset = need_u64(path, m, kOffsetKey);
  const std::string& opt_name = need(path, m, kOptimKey);
  if (opt_name != optimizer.name())
    fail(path, "holds the state of a " + opt_name + " optimizer, not " + optimizer.name());
  const std::string& lr_text = need(path, m, kLrKey);
  char* end = nullptr;
  const double lr = std::strtod(lr_text.c_str(), &end);
  if (lr_text.empty() || end != lr_text.c_str() + lr_text.size() || !std::isfinite(lr) || lr < 0)
    fail(path, std::string("metadata \"") + kLrKey + "\" is '" + lr_text +
                   "', not a non-negative number");

  // load_state validates the state in full and changes nothing when it throws, so it runs before
  // anything else is written.
  try {
    optimizer.load_state(state);
  } catch (const Error& e) {
    fail(path, std::string("optimizer state does not fit the optimizer: ") + e.what());
  }
  optimizer.set_lr(lr);
  generator.set_state(seed, offset);
}

std::int64_t training_step(const Metadata& metadata) {
  const auto it = metadata.find(kStepKey);
  check(it != metadata.end(), kLoad, "metadata lacks \"", kStepKey, "\"");
  std::uint64_t v = 0;
  check(parse_u64(it->second, v) &&
            v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
        kLoad, "metadata \"", kStepKey, "\" is '", it->second, "', not a non-negative integer");
  return static_cast<std::int64_t>(v);
}

}  // namespace latent
