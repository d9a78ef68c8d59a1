// A seeded mutation loop over every file parser (safetensors checkpoints and their metadata, IDX
// raw and .gz, .npy, CSV): valid seed files are damaged at random (bytes flipped, cut short,
// bytes inserted or repeated, sizes overwritten with large values) and read back. Every read must
// either succeed or throw latent::Error: no crash, no other exception, no hang. The mutations are
// seeded, so a failure repeats. (Under the sanitizer build, a memory error fails the run too.)
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/serialize.h"
#include "models/vae.h"

namespace latent {
namespace {

namespace fs = std::filesystem;

fs::path scratch() {
  const fs::path dir = fs::temp_directory_path() / ("latent_fuzz_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const fs::path& p, const std::string& bytes, bool gzip) {
  if (!gzip) {
    std::ofstream(p, std::ios::binary) << bytes;
    return;
  }
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

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

// Reads `mutations` damaged copies of `seed` with `read`; counts the reads that succeeded.
int fuzz(const std::string& name, const std::string& seed, bool gzip, int mutations,
         const std::function<void(const std::string&)>& read) {
  const fs::path dir = scratch();
  std::mt19937_64 rng(std::hash<std::string>{}(name));
  int ok = 0;
  for (int i = 0; i < mutations; ++i) {
    const std::string bytes = i == 0 ? seed : mutate(seed, rng);
    const fs::path p = dir / (name + (gzip ? ".gz" : ""));
    spit(p, bytes, gzip);
    try {
      read(p.string());
      ++ok;
    } catch (const Error&) {
      // refused with a message: fine
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << " mutation " << i << ": not a latent::Error: " << e.what();
    }
  }
  fs::remove_all(dir);
  return ok;
}

TEST(Fuzz, CheckpointsAndTheirMetadata) {
  const fs::path dir = scratch();
  models::VAEConfig c{.input = 12, .hidden = {6}, .latent = 2};
  models::VAE vae(c);
  const std::string path = (dir / "seed.safetensors").string();
  save(vae, path, models::to_metadata(c));
  const std::string seed = slurp(path);
  fs::remove_all(dir);
  for (const bool gz : {false, true}) {
    const int ok = fuzz(gz ? "ckpt_gz" : "ckpt", seed, gz, 400, [&](const std::string& p) {
      models::VAE target(c);
      load(target, p);
      (void)list_tensors(p);
    });
    EXPECT_GE(ok, 1);  // the undamaged seed
    fuzz(gz ? "meta_gz" : "meta", seed, gz, 200,
         [](const std::string& p) { (void)models::load_vae(p); });
  }
}

TEST(Fuzz, IdxNpyAndCsv) {
  // IDX: magic 0 0 0x08 (unsigned byte) 3 dims, big-endian sizes 2 x 3 x 4, then 24 bytes.
  std::string idx = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
  for (int i = 0; i < 24; ++i) idx.push_back(static_cast<char>(i * 10));
  for (const bool gz : {false, true})
    EXPECT_GE(fuzz(gz ? "idx_gz" : "idx", idx, gz, 400,
                   [](const std::string& p) { (void)data::read_idx(p); }),
              1);

  const fs::path dir = scratch();
  Generator g(1);
  data::write_npy((dir / "seed.npy").string(), Tensor::rand({3, 5}, g));
  const std::string npy = slurp(dir / "seed.npy");
  fs::remove_all(dir);
  for (const bool gz : {false, true})
    EXPECT_GE(fuzz(gz ? "npy_gz" : "npy", npy, gz, 400,
                   [](const std::string& p) { (void)data::read_npy(p); }),
              1);

  const std::string csv = "a,b,c\n1,2,3\n4.5,-6,7e-3\n\n8, 9 ,10\n";
  EXPECT_GE(fuzz("csv", csv, false, 400, [](const std::string& p) { (void)data::read_csv(p); }), 1);
}

}  // namespace
}  // namespace latent
