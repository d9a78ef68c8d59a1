#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "apps/inspect.h"
#include "apps/picture.h"
#include "apps/user_data.h"
#include "core/data.h"
#include "core/data/file_util.h"
#include "core/latent.h"
#include "models/evaluate.h"
#include "models/generate.h"
#include "models/report.h"
#include "models/serialize.h"
#include "models/vae.h"

namespace latent::app {
namespace {

namespace fs = std::filesystem;

struct Loaded {
  std::unique_ptr<models::Autoencoder> model;
  data::Dataset data;
  ImageShape image;
  Device device;
};

// The model and the data, checked against each other; the output folder made.
Loaded open(const InspectArgs& a, const char* what) {
  const Device dev = a.device == "auto" ? Device::best() : Device::parse(a.device);
  Loaded l{models::load(a.checkpoint, dev), {}, {}, dev};
  Examples e = load_examples(a.data, a.labels, a.train, a.limit, a.image);
  l.data = std::move(e.data);
  l.image = e.image;
  check(l.data.images.dim(1) == l.model->input_dim(), what, a.checkpoint, " holds a model of ",
        l.model->input_dim(), " inputs, but the examples have ", l.data.images.dim(1));
  std::error_code ec;
  fs::create_directories(a.out, ec);
  check(!ec, what, "cannot create the output folder ", a.out, ": ", ec.message());
  l.model->eval();
  return l;
}

std::vector<float> host(const Tensor& t) {
  return t.to(Device::cpu()).to_vector<float>();
}

bool pictures(const Loaded& l) {
  return l.image.defined();
}

std::string path(const InspectArgs& a, const std::string& file) {
  return (fs::path(a.out) / file).string();
}

void row_index(const char* what, const char* flag, std::int64_t i, const data::Dataset& d) {
  check(i >= 0 && i < d.size(), what, flag, " ", i, " is not an image of the data (0 to ",
        d.size() - 1, ")");
}

}  // namespace

int run_encode(const InspectArgs& a) {
  Loaded l = open(a, "encode");
  NoGradGuard no_grad;
  const Tensor codes =
      models::export_mu(*l.model, l.data.images.to(l.device), path(a, "codes.npy"));
  std::string wrote = "codes.npy";
  if (l.data.labels.defined()) {
    data::write_npy(path(a, "labels.npy"), l.data.labels.to(Device::cpu()));
    wrote += ", labels.npy";
  }
  std::fprintf(stderr, "latent: wrote %s/{%s}: the %s of %lld images, %lld dimensions\n",
               a.out.c_str(), wrote.c_str(),
               dynamic_cast<models::VAE*>(l.model.get()) ? "posterior means" : "codes",
               static_cast<long long>(codes.dim(0)), static_cast<long long>(codes.dim(1)));
  return 0;
}

int run_reconstruct(const InspectArgs& a) {
  Loaded l = open(a, "reconstruct");
  NoGradGuard no_grad;
  const std::int64_t n = std::min(a.n, l.data.size());
  const Tensor x = l.data.images.rows(0, n).to(l.device);
  const Tensor rec = l.model->reconstruct(x).to(Device::cpu());
  data::write_npy(path(a, "reconstructions.npy"), rec);
  if (pictures(l)) {
    // Rows of 10 inputs, each followed by a row of their reconstructions.
    const auto xin = host(x), xrec = rec.to_vector<float>();
    const std::int64_t d = l.model->input_dim();
    std::vector<float> pairs;
    for (std::int64_t r = 0; r * 10 < n; ++r) {
      const std::int64_t c = std::min<std::int64_t>(10, n - r * 10);
      pairs.insert(pairs.end(), xin.begin() + r * 10 * d, xin.begin() + (r * 10 + c) * d);
      pairs.insert(pairs.end(), static_cast<std::size_t>(d * (10 - c)), 0.0f);
      pairs.insert(pairs.end(), xrec.begin() + r * 10 * d, xrec.begin() + (r * 10 + c) * d);
      pairs.insert(pairs.end(), static_cast<std::size_t>(d * (10 - c)), 0.0f);
    }
    image_grid(pairs, static_cast<std::int64_t>(pairs.size()) / d, l.image, 10)
        .save_png(path(a, "reconstructions.png"));
  }
  std::fprintf(stderr, "latent: wrote %s/reconstructions.{npy%s} (%lld images)\n", a.out.c_str(),
               pictures(l) ? ", png" : "", static_cast<long long>(n));
  return 0;
}

int run_interpolate(const InspectArgs& a) {
  Loaded l = open(a, "interpolate");
  row_index("interpolate", "--from", a.from, l.data);
  row_index("interpolate", "--to", a.to, l.data);
  NoGradGuard no_grad;
  const Tensor line = models::interpolate(*l.model, l.data.images.rows(a.from, 1).to(l.device),
                                          l.data.images.rows(a.to, 1).to(l.device), a.steps)
                          .to(Device::cpu());
  data::write_npy(path(a, "interpolation.npy"), line);
  if (pictures(l))
    image_grid(line.to_vector<float>(), a.steps, 28,
               static_cast<int>(std::min<std::int64_t>(a.steps, 20)))
        .save_png(path(a, "interpolation.png"));
  std::fprintf(stderr, "latent: wrote %s/interpolation.{npy%s}: images %lld to %lld, %lld steps\n",
               a.out.c_str(), pictures(l) ? ", png" : "", static_cast<long long>(a.from),
               static_cast<long long>(a.to), static_cast<long long>(a.steps));
  return 0;
}

int run_traverse(const InspectArgs& a) {
  Loaded l = open(a, "traverse");
  row_index("traverse", "--index", a.index, l.data);
  NoGradGuard no_grad;
  const std::int64_t z = l.model->latent_dim();
  const Tensor x = l.data.images.to(l.device);
  auto* vae = dynamic_cast<models::VAE*>(l.model.get());
  // The dimensions to sweep, most informative first: by KL for a VAE, by code variance otherwise.
  const std::vector<float> score =
      vae ? models::kl_per_dim(*vae, x).to_vector<float>()
          : models::active_units(*l.model, x).variance.to_vector<float>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(z));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t i, std::int64_t j) {
    return score[static_cast<std::size_t>(i)] > score[static_cast<std::size_t>(j)];
  });
  const std::int64_t dims = std::min(a.dims, z);
  order.resize(static_cast<std::size_t>(dims));
  // The range of each swept dimension: the prior's -3..3, or the data's codes' range.
  std::vector<float> codes;
  if (!vae) codes = models::export_mu(*l.model, x).to_vector<float>();
  std::vector<float> rows;
  std::vector<double> los, his, scores;
  for (const std::int64_t d : order) {
    double lo = -3, hi = 3;
    if (!vae) {
      lo = hi = codes[static_cast<std::size_t>(d)];
      for (std::int64_t i = 0; i < l.data.size(); ++i) {
        lo = std::min<double>(lo, codes[static_cast<std::size_t>(i * z + d)]);
        hi = std::max<double>(hi, codes[static_cast<std::size_t>(i * z + d)]);
      }
    }
    const auto row = host(models::traverse(*l.model, x.rows(a.index, 1), d,
                                           models::linspace(lo, hi, a.traverse_steps)));
    rows.insert(rows.end(), row.begin(), row.end());
    los.push_back(lo);
    his.push_back(hi);
    scores.push_back(score[static_cast<std::size_t>(d)]);
  }
  const std::int64_t d_in = l.model->input_dim();
  data::write_npy(path(a, "traversals.npy"),
                  Tensor::from_data(std::span<const float>(rows),
                                    {static_cast<std::int64_t>(rows.size()) / d_in, d_in}));
  if (pictures(l))
    image_grid(rows, dims * a.traverse_steps, l.image, static_cast<int>(a.traverse_steps))
        .save_png(path(a, "traversals.png"));
  models::JsonReport js;
  js.set("checkpoint", a.checkpoint);
  js.set("image", a.index);
  js.set("steps", a.traverse_steps);
  js.set("dimensions", order);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::string key = "dim_" + std::to_string(order[i]);
    js.set(key + (vae ? "_kl" : "_code_variance"), scores[i]);
    js.set(key + "_from", los[i]);
    js.set(key + "_to", his[i]);
  }
  data::write_file_atomic(path(a, "traversals.json"), js.dump(), "traverse");
  std::fprintf(stderr, "latent: wrote %s/traversals.{npy%s, json}: dimensions", a.out.c_str(),
               pictures(l) ? ", png" : "");
  for (std::size_t i = 0; i < order.size(); ++i)
    std::fprintf(stderr, " %lld (%s %.3g)", static_cast<long long>(order[i]),
                 vae ? "KL" : "variance", scores[i]);
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace latent::app
