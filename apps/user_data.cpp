#include "apps/user_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/latent.h"

namespace latent::app {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A file reader's result; its failure (a missing or damaged file) names the flag that gave it.
template <class Read>
auto read_for(const char* flag, Read&& read) {
  try {
    return read();
  } catch (const Error& e) {
    throw Error("data", detail::cat(flag, ": ", e.what()));
  }
}

// Examples [N, D] from a .npy or .csv file, with the image shape a .npy's dimensions give.
Tensor read_examples(const std::string& path, const char* flag, ImageShape* shape) {
  const std::string p = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path;
  Tensor x;
  if (ends_with(p, ".npy")) {
    std::string descr;
    x = read_for(flag, [&] { return data::read_npy(path, DType::f32, &descr); });
    const bool bytes = descr.find("u1") != std::string::npos;
    const std::int64_t dims = x.ndim();
    check(dims >= 2, "data", flag, " ", path, " holds an array of shape ", x.shape().str(),
          ": examples are rows, [N, D] (or [N, H, W] / [N, H, W, C] images)");
    if (dims >= 3) {
      const std::int64_t c = dims == 4 ? x.dim(3) : 1;
      check(c == 1 || c == 3, "data", flag, " ", path, " holds images of shape ", x.shape().str(),
            ": the last dimension (channels) must be 1 or 3");
      if (shape && !shape->defined())
        *shape =
            ImageShape{static_cast<int>(x.dim(1)), static_cast<int>(x.dim(2)), static_cast<int>(c)};
      x = x.reshape({x.dim(0), x.numel() / std::max<std::int64_t>(x.dim(0), 1)});
    }
    if (bytes) x = x * (1.0 / 255.0);
  } else if (ends_with(p, ".csv")) {
    x = read_for(flag, [&] { return data::read_csv(path); });
  } else {
    throw Error("data", std::string(flag) + " " + path +
                            ": not a folder of IDX files, a .npy or a .csv file (.gz allowed)");
  }
  check(x.dim(0) > 0, "data", flag, " ", path, " holds no examples");
  const std::vector<float> v = x.to_vector<float>();
  for (std::size_t i = 0; i < v.size(); ++i)
    check(std::isfinite(v[i]), "data", flag, " ", path, ": example ",
          static_cast<std::int64_t>(i) / x.dim(1), ", value ",
          static_cast<std::int64_t>(i) % x.dim(1), " is ", v[i], ", not a finite number");
  return x;
}

// Labels [N] from .npy ([N] or [N, 1]), a one-column .csv or an IDX file.
Tensor read_labels(const std::string& path, const char* flag, std::int64_t n) {
  const std::string p = ends_with(path, ".gz") ? path.substr(0, path.size() - 3) : path;
  Tensor y;
  if (ends_with(p, ".npy"))
    y = read_for(flag, [&] { return data::read_npy(path); });
  else if (ends_with(p, ".csv"))
    y = read_for(flag, [&] { return data::read_csv(path); });
  else
    y = read_for(flag, [&] { return data::read_idx(path); });
  check(y.ndim() == 1 || (y.ndim() == 2 && y.dim(1) == 1), "data", flag, " ", path,
        " holds an array of shape ", y.shape().str(), ": labels are [N] or [N, 1]");
  check(y.dim(0) == n, "data", flag, " ", path, " holds ", y.dim(0), " labels for ", n,
        " examples");
  return y.reshape({n});
}

data::Dataset head(const data::Dataset& d, std::int64_t limit) {
  if (limit <= 0 || limit >= d.size()) return d;
  return d.subset(0, limit);
}

// Rows `idx` of x (and of y when defined).
data::Dataset take(const Tensor& x, const Tensor& y, const std::vector<std::int64_t>& idx) {
  const std::int64_t d = x.dim(1);
  const std::vector<float> xv = x.to_vector<float>();
  std::vector<float> out(idx.size() * static_cast<std::size_t>(d));
  std::vector<float> labels;
  const std::vector<float> yv = y.defined() ? y.to_vector<float>() : std::vector<float>{};
  for (std::size_t r = 0; r < idx.size(); ++r) {
    std::copy_n(xv.begin() + idx[r] * d, d, out.begin() + static_cast<std::int64_t>(r) * d);
    if (y.defined()) labels.push_back(yv[static_cast<std::size_t>(idx[r])]);
  }
  data::Dataset ds;
  ds.images =
      Tensor::from_data(std::span<const float>(out), {static_cast<std::int64_t>(idx.size()), d});
  if (y.defined())
    ds.labels = Tensor::from_data(std::span<const float>(labels),
                                  {static_cast<std::int64_t>(labels.size())});
  return ds;
}

}  // namespace

UserData load_user_data(const DataSpec& s) {
  UserData u;
  if (s.data.empty() || is_dir(s.data)) {
    check(s.labels.empty() && s.test_data.empty() && s.test_labels.empty() && s.val_split < 0,
          "data", "--labels, --test-data, --test-labels and --val-split go with a --data file; a ",
          "folder of IDX files holds its labels and its test split");
    u.train = data::fashion_mnist(Split::train, {.dir = s.data, .limit = s.limit});
    u.test = data::fashion_mnist(Split::test, {.dir = s.data, .limit = s.test_limit});
    u.source = data::fashion_mnist_dir(s.data);
  } else {
    ImageShape inferred;
    const Tensor x = read_examples(s.data, "--data", &inferred);
    const Tensor y = s.labels.empty() ? Tensor() : read_labels(s.labels, "--labels", x.dim(0));
    u.source = s.data;
    if (!s.test_data.empty()) {
      check(s.val_split < 0, "data", "--val-split and --test-data both name a test set: give one");
      const Tensor tx = read_examples(s.test_data, "--test-data", nullptr);
      check(tx.dim(1) == x.dim(1), "data", "--test-data ", s.test_data, " has examples of ",
            tx.dim(1), " values, --data ", s.data, " of ", x.dim(1));
      u.train.images = x;
      u.train.labels = y;
      u.test.images = tx;
      if (!s.test_labels.empty())
        u.test.labels = read_labels(s.test_labels, "--test-labels", tx.dim(0));
    } else {
      check(s.test_labels.empty(), "data", "--test-labels goes with --test-data");
      const double f = s.val_split < 0 ? 0.1 : s.val_split;
      check(f > 0 && f < 1, "data", "--val-split ", f, " is not a fraction in (0, 1)");
      const std::int64_t n = x.dim(0);
      const auto held = static_cast<std::int64_t>(std::llround(f * static_cast<double>(n)));
      check(held >= 1 && held < n, "data", "--val-split ", f, " of ", n,
            " examples leaves no training or no test example");
      // A seeded Fisher-Yates draw (the same on every platform) picks the held-out rows; both
      // parts keep the file's order.
      std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
      std::mt19937_64 rng(s.seed ^ 0x5eed5eed5eedULL);
      for (std::int64_t i = n - 1; i > 0; --i)
        std::swap(perm[static_cast<std::size_t>(i)],
                  perm[static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(i + 1))]);
      std::vector<std::int64_t> test_rows(perm.begin(), perm.begin() + held);
      std::vector<std::int64_t> train_rows(perm.begin() + held, perm.end());
      std::sort(test_rows.begin(), test_rows.end());
      std::sort(train_rows.begin(), train_rows.end());
      u.train = take(x, y, train_rows);
      u.test = take(x, y, test_rows);
    }
    u.train = head(u.train, s.limit);
    u.test = head(u.test, s.test_limit);
    u.image = inferred;
  }
  const std::int64_t d = u.train.images.dim(1);
  if (!s.image.empty()) {
    u.image = parse_image_shape(s.image, "--image");
    check(u.image.size() == d, "data", "--image ", s.image, " has ", u.image.size(),
          " values, the examples ", d);
  } else if (u.image.defined()) {
    check(u.image.size() == d, "data", "the images' shape does not match the examples' width");
  } else if (d == 784) {
    u.image = ImageShape{28, 28, 1};
  }
  return u;
}

Examples load_examples(const std::string& data, const std::string& labels, bool train,
                       std::int64_t limit, const std::string& image) {
  Examples e;
  if (data.empty() || is_dir(data)) {
    check(labels.empty(), "data", "--labels goes with a --data file; a folder holds its labels");
    e.data = data::fashion_mnist(train ? Split::train : Split::test, {.dir = data, .limit = limit});
  } else {
    check(!train, "data", "--train picks a folder's training split; --data ", data,
          " is one file: all its rows are read");
    ImageShape inferred;
    e.data.images = read_examples(data, "--data", &inferred);
    if (!labels.empty()) e.data.labels = read_labels(labels, "--labels", e.data.images.dim(0));
    e.data = head(e.data, limit);
    e.image = inferred;
  }
  if (!image.empty() || !e.image.defined()) e.image = image_for(e.data.images.dim(1), image);
  check(!e.image.defined() || e.image.size() == e.data.images.dim(1), "data",
        "the images' shape does not match the examples' width");
  return e;
}

ImageShape image_for(std::int64_t width, const std::string& image) {
  if (!image.empty()) {
    const ImageShape s = parse_image_shape(image, "--image");
    check(s.size() == width, "data", "--image ", image, " has ", s.size(), " values, the model's ",
          "examples ", width);
    return s;
  }
  return width == 784 ? ImageShape{28, 28, 1} : ImageShape{};
}

void check_unit_range(const UserData& d, const std::string& why) {
  for (const data::Dataset* part : {&d.train, &d.test}) {
    if (!part->images.defined()) continue;
    const std::vector<float> v = part->images.to_vector<float>();
    if (v.empty()) continue;
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    check(*lo >= 0.0f && *hi <= 1.0f, "data", d.source, " has values from ", *lo, " to ", *hi, "; ",
          why,
          " reads them as probabilities in [0, 1]: scale the data to [0, 1] or use "
          "--likelihood gaussian");
  }
}

}  // namespace latent::app
