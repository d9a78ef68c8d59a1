#include <sys/stat.h>

#include <cstdlib>

#include "core/data/dataset.h"
#include "core/data/idx_reader.h"

namespace latent::data {

namespace {

constexpr const char* kComponent = "fashion_mnist";
constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";
constexpr std::int64_t kSide = 28;
constexpr std::int64_t kClasses = 10;

bool exists(const std::string& path, bool want_dir) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

std::string install_hint() {
  return "install Debian's dataset-fashion-mnist or set LATENT_FASHION_MNIST to a folder with "
         "the four {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files";
}

// The uncompressed file when both are there: it reads faster.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string plain = dir + "/" + name;
  if (exists(plain, false)) return plain;
  if (exists(plain + ".gz", false)) return plain + ".gz";
  throw Error(kComponent, "no " + name + " or " + name + ".gz in " + dir + ": " + install_hint());
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string fashion_mnist_dir(const std::string& override_dir) {
  if (!override_dir.empty()) return override_dir;
  const char* env = std::getenv("LATENT_FASHION_MNIST");
  if (env != nullptr && *env != '\0') return env;
  return kDebianDir;
}

Dataset fashion_mnist(Split split, const FashionMnistOptions& options) {
  check(options.limit >= 0, kComponent, "limit must be >= 0 (0 means all), got ", options.limit);
  const std::string dir = fashion_mnist_dir(options.dir);
  if (!exists(dir, true))
    throw Error(kComponent, "folder " + dir + " does not exist: " + install_hint());
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");

  // With a limit only that prefix is read: a small subset does not decompress the whole file.
  const IdxArray images = read_idx_raw(images_path, options.limit, kComponent);
  const IdxArray labels = read_idx_raw(labels_path, options.limit, kComponent);
  const bool images_ok = images.type == kIdxUbyte && images.dims.size() == 3 &&
                         images.dims[1] == kSide && images.dims[2] == kSide;
  check(images_ok, kComponent, images_path, ": expected ubyte images of shape (N, 28, 28), got ",
        idx_type_name(images.type), " ", dims_text(images.dims));
  check(labels.type == kIdxUbyte && labels.dims.size() == 1, kComponent, labels_path,
        ": expected ubyte labels of shape (N,), got ", idx_type_name(labels.type), " ",
        dims_text(labels.dims));
  check(images.dims[0] == labels.dims[0], kComponent, images_path, " holds ", images.dims[0],
        " images but ", labels_path, " holds ", labels.dims[0], " labels");

  const std::int64_t n = images.rows;
  constexpr std::int64_t d = kSide * kSide;
  Tensor x = Tensor::empty({n, d});
  Tensor y = Tensor::empty({n});
  float* px = x.data<float>();
  float* py = y.data<float>();
  const unsigned char* src = images.data.data();
  for (std::int64_t i = 0; i < n * d; ++i) px[i] = static_cast<float>(src[i]) / 255.0f;
  for (std::int64_t i = 0; i < n; ++i) {
    const unsigned char label = labels.data[static_cast<std::size_t>(i)];
    check(label < kClasses, kComponent, labels_path, ": label ", int{label}, " of example ", i,
          " is outside 0..9");
    py[i] = static_cast<float>(label);
  }
  return {.images = x, .labels = y};
}

}  // namespace latent::data
