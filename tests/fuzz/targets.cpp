#include "fuzz/targets.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/checkpoint.h"
#include "core/latent.h"
#include "models/denoising.h"
#include "models/serialize.h"
#include "models/vae.h"

namespace latent::fuzz {
namespace {

namespace fs = std::filesystem;

// The model every checkpoint seed holds: small enough that a read costs microseconds.
models::VAEConfig seed_config() {
  return models::VAEConfig{.input = 12, .hidden = {6}, .latent = 2};
}

void read_checkpoint(const std::string& path) {
  models::VAE target(seed_config());
  (void)list_tensors(path);
  (void)read_metadata(path);
  load(target, path);
}

void read_model(const std::string& path) {
  (void)models::load(path);
}

void read_training_state(const std::string& path) {
  models::VAE target(seed_config());
  optim::Adam opt(target.parameters(), {.lr = 1e-3});
  Generator g(0);
  const Metadata m = load_training_state(path, target, opt, g);
  (void)training_step(m);
}

void read_idx_file(const std::string& path) {
  (void)data::read_idx(path);
}

void read_npy_file(const std::string& path) {
  (void)data::read_npy(path);
}

void read_csv_file(const std::string& path) {
  (void)data::read_csv(path);
}

// A private folder for this process's inputs, in memory (/dev/shm) where there is one, removed
// when the process ends normally.
const fs::path& scratch() {
  struct Folder {
    fs::path path;
    Folder() {
      std::error_code ec;
      const fs::path base =
          fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
      path = base / ("latent_fuzz_" + std::to_string(::getpid()));
      fs::create_directories(path);
    }
    ~Folder() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Folder folder;
  return folder.path;
}

void write_bytes(const fs::path& p, const std::uint8_t* data, std::size_t size, bool gzip) {
  if (!gzip) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!f) throw std::runtime_error("fuzz: cannot write " + p.string());
    return;
  }
  gzFile f = gzopen(p.c_str(), "wb1");
  if (f == nullptr) throw std::runtime_error("fuzz: cannot write " + p.string());
  const bool ok = size == 0 || gzwrite(f, data, static_cast<unsigned>(size)) > 0;
  if (gzclose(f) != Z_OK || !ok) throw std::runtime_error("fuzz: cannot write " + p.string());
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"safetensors", ".safetensors", false, read_checkpoint},
      {"safetensors_gz", ".safetensors.gz", true, read_checkpoint},
      {"checkpoint_metadata", ".safetensors", false, read_model},
      {"training_state", ".safetensors", false, read_training_state},
      {"idx", ".idx", false, read_idx_file},
      {"idx_gz", ".idx.gz", true, read_idx_file},
      {"npy", ".npy", false, read_npy_file},
      {"npy_gz", ".npy.gz", true, read_npy_file},
      {"csv", ".csv", false, read_csv_file},
  };
  return all;
}

const Target& target(std::string_view name) {
  std::string names;
  for (const Target& t : targets()) {
    if (t.name == name) return t;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  throw std::invalid_argument("no fuzz target '" + std::string(name) + "' (there are " + names +
                              ")");
}

bool run_one(const Target& t, const std::uint8_t* data, std::size_t size) {
  const fs::path p = scratch() / ("input" + t.suffix);
  write_bytes(p, data, size, t.gzip);
  try {
    t.read(p.string());
    return true;
  } catch (const Error&) {
    return false;  // refused with a message: what a parser should do
  }
}

std::vector<std::string> seeds(const std::string& corpus_root, const Target& t) {
  std::vector<std::string> out;
  const fs::path dir = fs::path(corpus_root) / t.name;
  if (!fs::is_directory(dir)) return out;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) out.push_back(slurp(f));
  return out;
}

void write_corpus(const std::string& corpus_root) {
  const fs::path root(corpus_root);
  auto put = [&](const std::string& target_name, const std::string& file,
                 const std::string& bytes) {
    const fs::path dir = root / target_name;
    fs::create_directories(dir);
    std::ofstream(dir / file, std::ios::binary | std::ios::trunc) << bytes;
  };
  const fs::path tmp = scratch();

  // Checkpoints: a VAE with its configuration in the metadata, and a training state.
  models::VAE vae(seed_config());
  save(vae, (tmp / "vae.safetensors").string(), models::to_metadata(seed_config()));
  const std::string ckpt = slurp(tmp / "vae.safetensors");
  put("safetensors", "vae.safetensors", ckpt);
  put("safetensors_gz", "vae.safetensors", ckpt);  // compressed by the target
  put("checkpoint_metadata", "vae.safetensors", ckpt);
  // A deterministic model too (another metadata layout): a denoising AE.
  const models::DenoisingAEConfig dae_config{
      .input = 12, .latent = 2, .encoder = {.hidden = {5}}, .decoder = {.hidden = {5}}};
  models::DenoisingAE dae(dae_config);
  save(dae, (tmp / "dae.safetensors").string(), models::to_metadata(dae_config));
  put("checkpoint_metadata", "dae.safetensors", slurp(tmp / "dae.safetensors"));
  fs::remove(tmp / "dae.safetensors");
  optim::Adam opt(vae.parameters(), {.lr = 1e-3});
  Generator g(3);
  save_training_state((tmp / "state.safetensors").string(), vae, opt, g, 7);
  put("training_state", "state.safetensors", slurp(tmp / "state.safetensors"));

  // IDX: unsigned bytes, 2 x 3 x 4 (images) and a vector of 5 (labels).
  std::string images = {0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
  for (int i = 0; i < 24; ++i) images.push_back(static_cast<char>(i * 10));
  std::string labels = {0, 0, 0x08, 1, 0, 0, 0, 5, 0, 1, 2, 3, 4};
  for (const char* t : {"idx", "idx_gz"}) {
    put(t, "images.idx", images);
    put(t, "labels.idx", labels);
  }

  // .npy: float32 [3, 5] as latent writes it, and float64 [2, 4] as NumPy does.
  Generator r(1);
  data::write_npy((tmp / "f32.npy").string(), Tensor::rand({3, 5}, r));
  const std::string f32 = slurp(tmp / "f32.npy");
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 4), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string f64 = std::string("\x93NUMPY\x01\x00", 8);
  f64 += static_cast<char>(header.size() & 0xff);
  f64 += static_cast<char>(header.size() >> 8);
  f64 += header;
  for (int i = 0; i < 8; ++i) {
    const double v = 0.125 * i;
    f64.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  for (const char* t : {"npy", "npy_gz"}) {
    put(t, "f32.npy", f32);
    put(t, "f64.npy", f64);
  }

  // CSV: a header row, numbers in several spellings, a blank line, spaces around cells.
  put("csv", "table.csv", "a,b,c\n1,2,3\n4.5,-6,7e-3\n\n8, 9 ,10\n");
  put("csv", "plain.csv", "0.25,0.5\n0.75,1\n");
  fs::remove(tmp / "vae.safetensors");
  fs::remove(tmp / "state.safetensors");
  fs::remove(tmp / "f32.npy");
}

}  // namespace latent::fuzz
