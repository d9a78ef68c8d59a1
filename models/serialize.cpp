#include "models/serialize.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace latent::models {
namespace {

constexpr const char* kWhere = "vae";

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const char* anneal_name(KlAnneal k) {
  switch (k) {
    case KlAnneal::constant:
      return "constant";
    case KlAnneal::linear:
      return "linear";
    case KlAnneal::cyclical:
      return "cyclical";
  }
  return "constant";
}

class Reader {
 public:
  explicit Reader(const Metadata& m) : m_(m) {}

  const std::string& text(const std::string& key) const {
    const auto it = m_.find("latent.vae." + key);
    check(it != m_.end(), kWhere, "checkpoint metadata lacks \"latent.vae.", key, "\"");
    return it->second;
  }
  bool has(const std::string& key) const { return m_.count("latent.vae." + key) > 0; }

  template <class Int>
  Int integer(const std::string& key) const {
    const std::string& s = text(key);
    Int v{};
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size()) bad(key, s, "an integer");
    return v;
  }

  double number(const std::string& key) const {
    const std::string& s = text(key);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) bad(key, s, "a number");
    return v;
  }

  [[noreturn]] static void bad(const std::string& key, const std::string& value, const char* what) {
    throw Error(kWhere,
                "checkpoint metadata \"latent.vae." + key + "\" is '" + value + "', not " + what);
  }

 private:
  const Metadata& m_;
};

}  // namespace

Metadata to_metadata(const VAEConfig& c) {
  Metadata m;
  std::string hidden;
  for (std::size_t i = 0; i < c.hidden.size(); ++i)
    hidden += (i ? "," : "") + std::to_string(c.hidden[i]);
  m["latent.model"] = "vae";
  m["latent.vae.input"] = std::to_string(c.input);
  m["latent.vae.hidden"] = hidden;
  m["latent.vae.latent"] = std::to_string(c.latent);
  m["latent.vae.activation"] = act_name(c.activation);
  if (c.activation_alpha)
    m["latent.vae.activation_alpha"] = format_double(static_cast<double>(*c.activation_alpha));
  m["latent.vae.likelihood"] = likelihood_name(c.likelihood.kind);
  m["latent.vae.sigma"] = format_double(c.likelihood.sigma);
  m["latent.vae.levels"] = std::to_string(c.likelihood.levels);
  m["latent.vae.samples"] = std::to_string(c.samples);
  m["latent.vae.beta"] = format_double(c.beta);
  m["latent.vae.free_bits"] = format_double(c.free_bits);
  m["latent.vae.seed"] = std::to_string(c.seed);
  m["latent.vae.warmup"] = anneal_name(c.warmup.kind);
  m["latent.vae.warmup_steps"] = std::to_string(c.warmup.steps);
  m["latent.vae.warmup_ratio"] = format_double(c.warmup.ratio);
  return m;
}

VAEConfig vae_config_from_metadata(const Metadata& metadata) {
  const auto model = metadata.find("latent.model");
  check(model != metadata.end(), kWhere, "checkpoint metadata lacks \"latent.model\"");
  check(model->second == "vae", kWhere, "checkpoint metadata \"latent.model\" is '", model->second,
        "', not 'vae'");
  const Reader r(metadata);
  VAEConfig c;
  c.input = r.integer<std::int64_t>("input");
  c.hidden.clear();
  const std::string& hidden = r.text("hidden");
  for (std::size_t pos = 0; pos < hidden.size();) {
    const std::size_t comma = std::min(hidden.find(',', pos), hidden.size());
    const std::string item = hidden.substr(pos, comma - pos);
    std::int64_t w = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), w);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      Reader::bad("hidden", hidden, "a comma-separated list of widths");
    c.hidden.push_back(w);
    pos = comma + 1;
    if (comma + 1 == hidden.size())
      Reader::bad("hidden", hidden, "a list without a trailing comma");
  }
  c.latent = r.integer<std::int64_t>("latent");
  try {
    c.activation = parse_act(r.text("activation"));
  } catch (const Error&) {
    Reader::bad("activation", r.text("activation"), "an activation name");
  }
  if (r.has("activation_alpha"))
    c.activation_alpha = static_cast<float>(r.number("activation_alpha"));
  try {
    c.likelihood.kind = parse_likelihood(r.text("likelihood"));
  } catch (const Error&) {
    Reader::bad("likelihood", r.text("likelihood"), "a likelihood name");
  }
  c.likelihood.sigma = r.number("sigma");
  c.likelihood.levels = r.integer<int>("levels");
  c.samples = r.integer<std::int64_t>("samples");
  c.beta = r.number("beta");
  c.free_bits = r.number("free_bits");
  c.seed = r.integer<std::uint64_t>("seed");
  const std::string& warmup = r.text("warmup");
  if (warmup == "constant")
    c.warmup.kind = KlAnneal::constant;
  else if (warmup == "linear")
    c.warmup.kind = KlAnneal::linear;
  else if (warmup == "cyclical")
    c.warmup.kind = KlAnneal::cyclical;
  else
    Reader::bad("warmup", warmup, "constant, linear or cyclical");
  c.warmup.steps = r.integer<std::int64_t>("warmup_steps");
  c.warmup.ratio = r.number("warmup_ratio");
  return c;
}

std::unique_ptr<VAE> load_vae(const std::string& path, Device device) {
  const VAEConfig c = vae_config_from_metadata(read_metadata(path));
  // The layers the configuration implies are checked against the file's tensors before the model
  // is built: a damaged or hostile file costs no memory for what its metadata merely claims.
  std::vector<std::pair<std::string, Shape>> present = list_tensors(path);
  auto expect_mlp = [&](const std::string& name, const std::vector<std::int64_t>& sizes) {
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      const std::string layer = name + ".layers." + std::to_string(i) + ".";
      for (const auto& entry : {std::pair{layer + "weight", Shape{sizes[i + 1], sizes[i]}},
                                std::pair{layer + "bias", Shape{sizes[i + 1]}}}) {
        const std::string& what = entry.first;
        const Shape& shape = entry.second;
        const auto it = std::find_if(present.begin(), present.end(),
                                     [&](const auto& p) { return p.first == what; });
        check(it != present.end() && it->second == shape, "load",
              detail::cat(path, ": its metadata describes a model with ", what, " ", shape.str(),
                          ", but the file holds ",
                          it == present.end() ? std::string("no such tensor") : it->second.str()));
      }
    }
  };
  std::vector<std::int64_t> enc{c.input};
  enc.insert(enc.end(), c.hidden.begin(), c.hidden.end());
  enc.push_back(2 * c.latent);
  std::vector<std::int64_t> dec{c.latent};
  dec.insert(dec.end(), c.hidden.rbegin(), c.hidden.rend());
  dec.push_back(c.input * params_per_dim(c.likelihood));
  expect_mlp("encoder", enc);
  expect_mlp("decoder", dec);
  auto vae = std::make_unique<VAE>(c, device);
  load(*vae, path);
  return vae;
}

}  // namespace latent::models
