#include "models/serialize.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace latent::models {
namespace {

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string widths_text(const std::vector<std::int64_t>& widths) {
  std::string s;
  for (std::size_t i = 0; i < widths.size(); ++i) s += (i ? "," : "") + std::to_string(widths[i]);
  return s;
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

// Writes "latent.<kind>.<key>" entries.
class Writer {
 public:
  explicit Writer(std::string kind) : kind_(std::move(kind)) { m_["latent.model"] = kind_; }
  void text(const std::string& key, const std::string& value) {
    m_["latent." + kind_ + "." + key] = value;
  }
  void integer(const std::string& key, std::int64_t v) { text(key, std::to_string(v)); }
  void unsigned_integer(const std::string& key, std::uint64_t v) { text(key, std::to_string(v)); }
  void number(const std::string& key, double v) { text(key, format_double(v)); }
  void flag(const std::string& key, bool v) { text(key, v ? "true" : "false"); }
  void alpha(const std::string& key, const std::optional<float>& v) {
    if (v) number(key, static_cast<double>(*v));
  }
  void likelihood(const LikelihoodConfig& l) {
    text("likelihood", likelihood_name(l.kind));
    number("sigma", l.sigma);
    integer("levels", l.levels);
  }
  void mlp(const std::string& name, const MLPSpec& s) {
    text(name + ".hidden", widths_text(s.hidden));
    text(name + ".activation", act_name(s.activation));
    alpha(name + ".activation_alpha", s.activation_alpha);
  }
  Metadata done() { return std::move(m_); }

 private:
  std::string kind_;
  Metadata m_;
};

// Reads "latent.<kind>.<key>" entries, naming the key and the value in every error.
class Reader {
 public:
  Reader(const Metadata& m, std::string kind) : m_(m), kind_(std::move(kind)) {
    const auto model = m_.find("latent.model");
    check(model != m_.end(), kind_, "checkpoint metadata lacks \"latent.model\"");
    check(model->second == kind_, kind_, "checkpoint metadata \"latent.model\" is '", model->second,
          "', not '", kind_, "'");
  }

  const std::string& text(const std::string& key) const {
    const auto it = m_.find(full(key));
    check(it != m_.end(), kind_, "checkpoint metadata lacks \"", full(key), "\"");
    return it->second;
  }
  bool has(const std::string& key) const { return m_.count(full(key)) > 0; }

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

  bool flag(const std::string& key) const {
    const std::string& s = text(key);
    if (s != "true" && s != "false") bad(key, s, "true or false");
    return s == "true";
  }

  std::optional<float> alpha(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return static_cast<float>(number(key));
  }

  Act act(const std::string& key) const {
    try {
      return parse_act(text(key));
    } catch (const Error&) {
      bad(key, text(key), "an activation name");
    }
  }

  std::vector<std::int64_t> widths(const std::string& key) const {
    const std::string& s = text(key);
    std::vector<std::int64_t> out;
    for (std::size_t pos = 0; pos < s.size();) {
      const std::size_t comma = std::min(s.find(',', pos), s.size());
      const std::string item = s.substr(pos, comma - pos);
      std::int64_t w = 0;
      const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), w);
      if (item.empty() || ec != std::errc() || p != item.data() + item.size())
        bad(key, s, "a comma-separated list of widths");
      out.push_back(w);
      pos = comma + 1;
      if (comma + 1 == s.size()) bad(key, s, "a list without a trailing comma");
    }
    return out;
  }

  LikelihoodConfig likelihood() const {
    LikelihoodConfig l;
    try {
      l.kind = parse_likelihood(text("likelihood"));
    } catch (const Error&) {
      bad("likelihood", text("likelihood"), "a likelihood name");
    }
    l.sigma = number("sigma");
    l.levels = integer<int>("levels");
    return l;
  }

  MLPSpec mlp(const std::string& name) const {
    return MLPSpec{.hidden = widths(name + ".hidden"),
                   .activation = act(name + ".activation"),
                   .activation_alpha = alpha(name + ".activation_alpha")};
  }

  [[noreturn]] void bad(const std::string& key, const std::string& value, const char* what) const {
    throw Error(kind_, "checkpoint metadata \"" + full(key) + "\" is '" + value + "', not " + what);
  }

 private:
  std::string full(const std::string& key) const { return "latent." + kind_ + "." + key; }
  const Metadata& m_;
  std::string kind_;
};

// The fields every deterministic autoencoder's config has.
template <class Config>
void write_deterministic(Writer& w, const Config& c) {
  w.integer("input", c.input);
  w.integer("latent", c.latent);
  w.mlp("encoder", c.encoder);
  w.mlp("decoder", c.decoder);
  w.likelihood(c.likelihood);
  w.unsigned_integer("seed", c.seed);
  w.flag("undercomplete", c.undercomplete);
}

template <class Config>
void read_deterministic(const Reader& r, Config& c) {
  c.input = r.integer<std::int64_t>("input");
  c.latent = r.integer<std::int64_t>("latent");
  c.encoder = r.mlp("encoder");
  c.decoder = r.mlp("decoder");
  c.likelihood = r.likelihood();
  c.seed = r.integer<std::uint64_t>("seed");
  c.undercomplete = r.flag("undercomplete");
}

// Checks, before anything is allocated, that the file holds the MLP "<name>.layers.i.weight"
// [sizes[i + 1], sizes[i]] and ".bias" [sizes[i + 1]] for every layer the metadata implies.
class LayerCheck {
 public:
  explicit LayerCheck(const std::string& path) : path_(path), present_(list_tensors(path)) {}

  void mlp(const std::string& name, const std::vector<std::int64_t>& sizes) const {
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      const std::string layer = name + ".layers." + std::to_string(i) + ".";
      expect(layer + "weight", Shape{sizes[i + 1], sizes[i]});
      expect(layer + "bias", Shape{sizes[i + 1]});
    }
  }

 private:
  void expect(const std::string& what, const Shape& shape) const {
    const auto it = std::find_if(present_.begin(), present_.end(),
                                 [&](const auto& p) { return p.first == what; });
    check(it != present_.end() && it->second == shape, "load",
          detail::cat(path_, ": its metadata describes a model with ", what, " ", shape.str(),
                      ", but the file holds ",
                      it == present_.end() ? std::string("no such tensor") : it->second.str()));
  }

  std::string path_;
  std::vector<std::pair<std::string, Shape>> present_;
};

std::vector<std::int64_t> sizes(std::int64_t in, const std::vector<std::int64_t>& hidden,
                                std::int64_t out) {
  std::vector<std::int64_t> s{in};
  s.insert(s.end(), hidden.begin(), hidden.end());
  s.push_back(out);
  return s;
}

// Widths that are not positive are left to the model's constructor, which refuses them (naming
// the field) before it allocates anything; every other width is checked against the file.
bool all_positive(std::int64_t a, std::int64_t b, const std::vector<std::int64_t>& h1,
                  const std::vector<std::int64_t>& h2) {
  const auto pos = [](std::int64_t v) { return v > 0; };
  return a > 0 && b > 0 && std::all_of(h1.begin(), h1.end(), pos) &&
         std::all_of(h2.begin(), h2.end(), pos);
}

// a * b for a width the metadata implies; an overflow is a file that cannot be right.
std::int64_t times(const std::string& path, std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  check(!__builtin_mul_overflow(a, b, &r), "load", path,
        ": its metadata describes a layer of more than 2^63 units");
  return r;
}

template <class Config>
void check_deterministic_layers(const LayerCheck& lc, const std::string& path, const Config& c) {
  const std::int64_t m = params_per_dim(c.likelihood);
  if (!all_positive(c.input, c.latent, c.encoder.hidden, c.decoder.hidden) || m < 1) return;
  const std::int64_t out = times(path, c.input, m);
  lc.mlp("encoder", sizes(c.input, c.encoder.hidden, c.latent));
  lc.mlp("decoder", sizes(c.latent, c.decoder.hidden, out));
}

void check_vae_layers(const LayerCheck& lc, const std::string& path, const VAEConfig& c) {
  const std::int64_t m = params_per_dim(c.likelihood);
  if (!all_positive(c.input, c.latent, c.hidden, {}) || m < 1) return;
  const std::int64_t heads = times(path, c.latent, 2), out = times(path, c.input, m);
  lc.mlp("encoder", sizes(c.input, c.hidden, heads));
  std::vector<std::int64_t> back(c.hidden.rbegin(), c.hidden.rend());
  lc.mlp("decoder", sizes(c.latent, back, out));
}

}  // namespace

// ---- writing ------------------------------------------------------------------------------------

Metadata to_metadata(const VAEConfig& c) {
  Writer w("vae");
  w.integer("input", c.input);
  w.text("hidden", widths_text(c.hidden));
  w.integer("latent", c.latent);
  w.text("activation", act_name(c.activation));
  w.alpha("activation_alpha", c.activation_alpha);
  w.likelihood(c.likelihood);
  w.integer("samples", c.samples);
  w.number("beta", c.beta);
  w.number("free_bits", c.free_bits);
  w.unsigned_integer("seed", c.seed);
  w.text("warmup", anneal_name(c.warmup.kind));
  w.integer("warmup_steps", c.warmup.steps);
  w.number("warmup_ratio", c.warmup.ratio);
  return w.done();
}

Metadata to_metadata(const IWAEConfig& c) {
  Writer w("iwae");
  w.integer("input", c.input);
  w.text("hidden", widths_text(c.hidden));
  w.integer("latent", c.latent);
  w.text("activation", act_name(c.activation));
  w.alpha("activation_alpha", c.activation_alpha);
  w.likelihood(c.likelihood);
  w.integer("k", c.k);
  w.unsigned_integer("seed", c.seed);
  return w.done();
}

Metadata to_metadata(const AEConfig& c) {
  Writer w("ae");
  write_deterministic(w, c);
  w.text("code_activation", act_name(c.code_activation));
  w.alpha("code_activation_alpha", c.code_activation_alpha);
  return w.done();
}

Metadata to_metadata(const DenoisingAEConfig& c) {
  Writer w("dae");
  write_deterministic(w, c);
  w.text("code_activation", act_name(c.code_activation));
  w.alpha("code_activation_alpha", c.code_activation_alpha);
  w.text("corruption", corruption_name(c.corruption.kind));
  w.number("corruption_p", c.corruption.p);
  w.number("corruption_sigma", c.corruption.sigma);
  return w.done();
}

Metadata to_metadata(const SparseAEConfig& c) {
  Writer w("sae");
  write_deterministic(w, c);
  if (c.code_activation) w.text("code_activation", act_name(*c.code_activation));
  w.alpha("code_activation_alpha", c.code_activation_alpha);
  w.text("penalty", c.penalty == Sparsity::l1 ? "l1" : "kl");
  w.number("weight", c.weight);
  w.number("rho", c.rho);
  w.number("beta", c.beta);
  return w.done();
}

Metadata to_metadata(const ContractiveAEConfig& c) {
  Writer w("cae");
  write_deterministic(w, c);
  w.text("code_activation", act_name(c.code_activation));
  w.alpha("code_activation_alpha", c.code_activation_alpha);
  w.number("lambda", c.lambda);
  return w.done();
}

Metadata to_metadata(const Autoencoder& model) {
  if (const auto* m = dynamic_cast<const IWAE*>(&model)) {
    const VAEConfig& v = m->config();
    return to_metadata(IWAEConfig{.input = v.input,
                                  .hidden = v.hidden,
                                  .latent = v.latent,
                                  .activation = v.activation,
                                  .activation_alpha = v.activation_alpha,
                                  .likelihood = v.likelihood,
                                  .k = v.samples,
                                  .seed = v.seed});
  }
  if (const auto* m = dynamic_cast<const VAE*>(&model)) return to_metadata(m->config());
  if (const auto* m = dynamic_cast<const DenoisingAE*>(&model)) return to_metadata(m->config());
  if (const auto* m = dynamic_cast<const SparseAE*>(&model)) return to_metadata(m->config());
  if (const auto* m = dynamic_cast<const ContractiveAE*>(&model)) return to_metadata(m->config());
  if (const auto* m = dynamic_cast<const AE*>(&model)) return to_metadata(m->config());
  throw Error("save", "no checkpoint metadata for a model of kind '" + model.name() +
                          "' (the library's kinds: ae, dae, sae, cae, vae, iwae)");
}

// ---- reading ------------------------------------------------------------------------------------

std::string model_kind(const Metadata& metadata) {
  const auto model = metadata.find("latent.model");
  check(model != metadata.end(), "load",
        "the checkpoint's metadata lacks \"latent.model\": it was not written by latent::save "
        "with a model's metadata (models::to_metadata)");
  for (const char* kind : {"ae", "dae", "sae", "cae", "vae", "iwae"})
    if (model->second == kind) return kind;
  throw Error("load", "the checkpoint's \"latent.model\" is '" + model->second +
                          "', not one of ae, dae, sae, cae, vae, iwae");
}

VAEConfig vae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "vae");
  VAEConfig c;
  c.input = r.integer<std::int64_t>("input");
  c.hidden = r.widths("hidden");
  c.latent = r.integer<std::int64_t>("latent");
  c.activation = r.act("activation");
  c.activation_alpha = r.alpha("activation_alpha");
  c.likelihood = r.likelihood();
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
    r.bad("warmup", warmup, "constant, linear or cyclical");
  c.warmup.steps = r.integer<std::int64_t>("warmup_steps");
  c.warmup.ratio = r.number("warmup_ratio");
  return c;
}

IWAEConfig iwae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "iwae");
  IWAEConfig c;
  c.input = r.integer<std::int64_t>("input");
  c.hidden = r.widths("hidden");
  c.latent = r.integer<std::int64_t>("latent");
  c.activation = r.act("activation");
  c.activation_alpha = r.alpha("activation_alpha");
  c.likelihood = r.likelihood();
  c.k = r.integer<std::int64_t>("k");
  c.seed = r.integer<std::uint64_t>("seed");
  return c;
}

AEConfig ae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "ae");
  AEConfig c;
  read_deterministic(r, c);
  c.code_activation = r.act("code_activation");
  c.code_activation_alpha = r.alpha("code_activation_alpha");
  return c;
}

DenoisingAEConfig dae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "dae");
  DenoisingAEConfig c;
  read_deterministic(r, c);
  c.code_activation = r.act("code_activation");
  c.code_activation_alpha = r.alpha("code_activation_alpha");
  const std::string& kind = r.text("corruption");
  if (kind == "gaussian")
    c.corruption.kind = Corruption::gaussian;
  else if (kind == "masking")
    c.corruption.kind = Corruption::masking;
  else if (kind == "salt_and_pepper")
    c.corruption.kind = Corruption::salt_and_pepper;
  else
    r.bad("corruption", kind, "gaussian, masking or salt_and_pepper");
  c.corruption.p = r.number("corruption_p");
  c.corruption.sigma = r.number("corruption_sigma");
  return c;
}

SparseAEConfig sae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "sae");
  SparseAEConfig c;
  read_deterministic(r, c);
  if (r.has("code_activation")) c.code_activation = r.act("code_activation");
  c.code_activation_alpha = r.alpha("code_activation_alpha");
  const std::string& penalty = r.text("penalty");
  if (penalty != "l1" && penalty != "kl") r.bad("penalty", penalty, "l1 or kl");
  c.penalty = penalty == "l1" ? Sparsity::l1 : Sparsity::kl;
  c.weight = r.number("weight");
  c.rho = r.number("rho");
  c.beta = r.number("beta");
  return c;
}

ContractiveAEConfig cae_config_from_metadata(const Metadata& metadata) {
  const Reader r(metadata, "cae");
  ContractiveAEConfig c;
  read_deterministic(r, c);
  c.code_activation = r.act("code_activation");
  c.code_activation_alpha = r.alpha("code_activation_alpha");
  c.lambda = r.number("lambda");
  return c;
}

std::unique_ptr<Autoencoder> load(const std::string& path, Device device) {
  const Metadata metadata = read_metadata(path);
  const std::string kind = model_kind(metadata);
  const LayerCheck layers(path);
  std::unique_ptr<Autoencoder> model;
  if (kind == "vae") {
    const VAEConfig c = vae_config_from_metadata(metadata);
    check_vae_layers(layers, path, c);
    model = std::make_unique<VAE>(c, device);
  } else if (kind == "iwae") {
    const IWAEConfig c = iwae_config_from_metadata(metadata);
    check_vae_layers(layers, path, vae_config(c));
    model = std::make_unique<IWAE>(c, device);
  } else if (kind == "ae") {
    const AEConfig c = ae_config_from_metadata(metadata);
    check_deterministic_layers(layers, path, c);
    model = std::make_unique<AE>(c, device);
  } else if (kind == "dae") {
    const DenoisingAEConfig c = dae_config_from_metadata(metadata);
    check_deterministic_layers(layers, path, c);
    model = std::make_unique<DenoisingAE>(c, device);
  } else if (kind == "sae") {
    const SparseAEConfig c = sae_config_from_metadata(metadata);
    check_deterministic_layers(layers, path, c);
    model = std::make_unique<SparseAE>(c, device);
  } else {
    const ContractiveAEConfig c = cae_config_from_metadata(metadata);
    check_deterministic_layers(layers, path, c);
    model = std::make_unique<ContractiveAE>(c, device);
  }
  latent::load(*model, path);
  return model;
}

std::unique_ptr<VAE> load_vae(const std::string& path, Device device) {
  const Metadata metadata = read_metadata(path);
  const auto kind = metadata.find("latent.model");
  check(kind != metadata.end(), "vae", path,
        ": checkpoint metadata lacks \"latent.model\" (not saved with a model's metadata)");
  check(kind->second == "vae" || kind->second == "iwae", "vae", path, " holds a model of kind '",
        kind->second, "', not a VAE");
  std::unique_ptr<Autoencoder> model = load(path, device);
  return std::unique_ptr<VAE>(static_cast<VAE*>(model.release()));
}

}  // namespace latent::models
