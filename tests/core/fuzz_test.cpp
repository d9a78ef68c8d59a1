// The fuzz targets of every file parser (tests/fuzz/targets.h: safetensors checkpoints, their
// metadata, training states, IDX, .npy, CSV, raw and gzip) as a seeded mutation loop, for builds
// without libFuzzer: the committed seed corpus (tests/fuzz/corpus) must parse, and damaged copies
// of it (bytes flipped, cut short, bytes inserted or repeated, sizes overwritten with large values,
// digits changed) must each be read or refused with latent::Error: no crash, no other exception,
// no hang. The mutations are seeded, so a failure repeats. (Under the sanitizer build, a memory
// error fails the run too.)
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "fuzz/targets.h"

namespace latent {
namespace {

std::string mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    switch (rng() % 6) {
      case 0:  // flip a byte
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1:  // cut short
        s.resize(pick(s.size() + 1));
        break;
      case 2:  // insert random bytes
        s.insert(pick(s.size() + 1), std::string(1 + rng() % 8, static_cast<char>(rng())));
        break;
      case 3:  // repeat a piece
        if (!s.empty()) {
          const std::size_t at = pick(s.size());
          s.insert(at, s.substr(at, 1 + rng() % 16));
        }
        break;
      case 4:  // a large little-endian or big-endian count somewhere
        if (s.size() >= 4) {
          const std::size_t at = pick(s.size() - 3);
          const std::uint32_t v = rng() % 2 ? 0xFFFFFFF0u : 0x7FFFFFFFu;
          std::memcpy(s.data() + at, &v, 4);
        }
        break;
      default:  // a digit changed (text formats: shapes, offsets, cells)
        for (std::size_t tries = 0; tries < 8 && !s.empty(); ++tries) {
          const std::size_t at = pick(s.size());
          if (s[at] >= '0' && s[at] <= '9') {
            s[at] = static_cast<char>('0' + rng() % 10);
            break;
          }
        }
        break;
    }
  }
  return s;
}

class FuzzTarget : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzTarget, SeedsParseAndDamagedCopiesAreReadOrRefused) {
  const fuzz::Target& t = fuzz::target(GetParam());
  const std::vector<std::string> seeds = fuzz::seeds(LATENT_FUZZ_CORPUS, t);
  ASSERT_FALSE(seeds.empty()) << "no seeds in " << LATENT_FUZZ_CORPUS << "/" << t.name;
  auto run = [&](const std::string& bytes) {
    return fuzz::run_one(t, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  };
  for (std::size_t i = 0; i < seeds.size(); ++i)
    EXPECT_TRUE(run(seeds[i])) << t.name << " seed " << i << " no longer parses: rewrite the "
                               << "corpus with latent_fuzz_corpus";
  std::mt19937_64 rng(std::hash<std::string>{}(t.name));
  constexpr int kMutations = 300;
  int accepted = 0;
  for (int i = 0; i < kMutations; ++i) {
    const std::string bytes = mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], rng);
    try {
      accepted += run(bytes);
    } catch (const std::exception& e) {
      ADD_FAILURE() << t.name << " mutation " << i << ": not a latent::Error: " << e.what();
    }
  }
  // Most damage is noticed; a few edits (a changed float) leave a valid file.
  EXPECT_LT(accepted, kMutations) << t.name;
}

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const fuzz::Target& t : fuzz::targets()) names.push_back(t.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Parsers, FuzzTarget, ::testing::ValuesIn(target_names()),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace latent
