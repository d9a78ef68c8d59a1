// The fuzz targets: one per file parser (safetensors checkpoints, checkpoint metadata rebuilding
// a model, training states, IDX, .npy, CSV; the compressed forms through the same parsers). Each
// target takes a file's bytes, writes them to a private temporary file (gzip-compressing them for
// the ".gz" targets, so that the mutations reach the parser behind the decompression) and reads
// it: a read that succeeds or is refused with latent::Error is fine; any other exception escapes,
// and a crash, a hang or a sanitizer report is the finding.
//
// The same targets run two ways: under clang's libFuzzer (tests/fuzz/fuzz_main.cpp, one binary
// per target, LATENT_FUZZ=ON), and as a seeded mutation loop under GoogleTest (fuzz_test.cpp)
// wherever libFuzzer is missing. Both start from the seed corpus in tests/fuzz/corpus/<target>/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace latent::fuzz {

struct Target {
  std::string name;    // "safetensors", "idx_gz", ...: also the corpus folder's name
  std::string suffix;  // the file name's ending the parser sees (".npy.gz" marks gzip)
  bool gzip = false;   // the input is compressed before the parser reads it
  void (*read)(const std::string& path) = nullptr;
};

// Every target, in a fixed order.
const std::vector<Target>& targets();
// The target called `name`; throws std::invalid_argument listing the names when there is none.
const Target& target(std::string_view name);

// Runs `t` on one input. Returns true when the parser accepted it and false when it refused it
// with latent::Error; anything else escapes.
bool run_one(const Target& t, const std::uint8_t* data, std::size_t size);

// The seed files of a target (its corpus folder under `corpus_root`), in name order.
std::vector<std::string> seeds(const std::string& corpus_root, const Target& t);

// Writes the seed corpus from scratch: valid files of every format, small enough to fuzz fast.
// tests/fuzz/make_corpus.cpp calls it; the corpus is committed, and a test checks that every seed
// still parses.
void write_corpus(const std::string& corpus_root);

}  // namespace latent::fuzz
