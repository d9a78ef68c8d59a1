// Every model of the family saved with its config in the checkpoint's metadata is rebuilt from the
// file alone (models::load); bad or missing config metadata is a clear error.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/contractive.h"
#include "models/denoising.h"
#include "models/iwae.h"
#include "models/serialize.h"
#include "models/sparse.h"
#include "models/vae.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::expect_mentions;

class VaeCheckpointTest : public latent::testing::ScratchDirTest {};

// Every field away from its default, so a field lost on the way shows.
VAEConfig odd_config() {
  return {.input = 20,
          .hidden = {16, 8},
          .latent = 3,
          .activation = Act::leaky_relu,
          .activation_alpha = 0.2f,
          .likelihood = LikelihoodConfig{.kind = Likelihood::gaussian, .sigma = 0.3, .levels = 5},
          .samples = 2,
          .beta = 0.7,
          .warmup = {.kind = KlAnneal::cyclical, .steps = 7, .ratio = 0.25},
          .free_bits = 0.1,
          .seed = 123};
}

void expect_same_config(const VAEConfig& a, const VAEConfig& b) {
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.hidden, b.hidden);
  EXPECT_EQ(a.latent, b.latent);
  EXPECT_EQ(a.activation, b.activation);
  EXPECT_EQ(a.activation_alpha, b.activation_alpha);
  EXPECT_EQ(a.likelihood.kind, b.likelihood.kind);
  EXPECT_EQ(a.likelihood.sigma, b.likelihood.sigma);
  EXPECT_EQ(a.likelihood.levels, b.likelihood.levels);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.beta, b.beta);
  EXPECT_EQ(a.warmup.kind, b.warmup.kind);
  EXPECT_EQ(a.warmup.steps, b.warmup.steps);
  EXPECT_EQ(a.warmup.ratio, b.warmup.ratio);
  EXPECT_EQ(a.free_bits, b.free_bits);
  EXPECT_EQ(a.seed, b.seed);
}

TEST(VaeMetadata, ConfigRoundTripsExactly) {
  const VAEConfig c = odd_config();
  const Metadata m = to_metadata(c);
  EXPECT_EQ(m.at("latent.model"), "vae");
  EXPECT_EQ(m.at("latent.vae.hidden"), "16,8");
  EXPECT_EQ(m.at("latent.vae.likelihood"), "gaussian");
  expect_same_config(vae_config_from_metadata(m), c);

  // Defaults, and an encoder without hidden layers.
  VAEConfig plain{.hidden = {}};
  const Metadata pm = to_metadata(plain);
  EXPECT_EQ(pm.at("latent.vae.hidden"), "");
  EXPECT_EQ(pm.count("latent.vae.activation_alpha"), 0u);
  expect_same_config(vae_config_from_metadata(pm), plain);
}

TEST(VaeMetadata, MissingOrInvalidValuesAreNamed) {
  const Metadata good = to_metadata(odd_config());
  auto with = [&](const std::string& key, const std::string& value) {
    Metadata m = good;
    m[key] = value;
    return error_of([&] { vae_config_from_metadata(m); });
  };
  auto without = [&](const std::string& key) {
    Metadata m = good;
    m.erase(key);
    return error_of([&] { vae_config_from_metadata(m); });
  };
  expect_mentions(without("latent.model"), {"[vae]", "lacks \"latent.model\""});
  expect_mentions(with("latent.model", "ae"), {"[vae]", "\"latent.model\" is 'ae', not 'vae'"});
  expect_mentions(without("latent.vae.beta"), {"[vae]", "lacks \"latent.vae.beta\""});
  expect_mentions(with("latent.vae.input", "78x"), {"latent.vae.input", "'78x'", "integer"});
  expect_mentions(with("latent.vae.hidden", "16,,8"), {"latent.vae.hidden", "'16,,8'"});
  expect_mentions(with("latent.vae.hidden", "16,"), {"latent.vae.hidden", "'16,'"});
  expect_mentions(with("latent.vae.beta", "nan"), {"latent.vae.beta", "'nan'", "number"});
  expect_mentions(with("latent.vae.activation", "swish"), {"latent.vae.activation", "'swish'"});
  expect_mentions(with("latent.vae.likelihood", "poisson"), {"latent.vae.likelihood", "'poisson'"});
  expect_mentions(with("latent.vae.warmup", "cosine"), {"latent.vae.warmup", "'cosine'"});
  expect_mentions(with("latent.vae.seed", "-1"), {"latent.vae.seed", "'-1'"});
  // Values that parse but the model refuses are the VAE's own errors.
  Metadata neg = good;
  neg["latent.vae.beta"] = "-1";
  expect_mentions(error_of([&] { VAE vae(vae_config_from_metadata(neg)); }), {"[vae]", "beta"});
}

TEST_F(VaeCheckpointTest, VaeIsRebuiltFromTheFileAloneWithIdenticalOutputs) {
  const VAEConfig c = odd_config();
  VAE vae(c);
  Generator data_gen(5);
  const Tensor x = Tensor::randn({48, 20}, data_gen);
  // A few steps, so the weights differ from what the seed gives a fresh model.
  const std::vector<double> losses = testing::train(vae, x, 4, 16, 0.01);
  ASSERT_EQ(losses.size(), 4u);

  const std::string p = path("vae.safetensors");
  save(vae, p, to_metadata(vae.config()));

  const auto again = load_vae(p);
  expect_same_config(again->config(), c);
  const auto pa = vae.named_parameters();
  const auto pb = again->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_EQ(pa[i].second.to_vector<float>(), pb[i].second.to_vector<float>()) << pa[i].first;
  }
  // A fresh model from the same config does not match: the file's weights were needed.
  VAE fresh(c);
  EXPECT_NE(fresh.named_parameters()[0].second.to_vector<float>(), pa[0].second.to_vector<float>());

  vae.eval();
  again->eval();
  const Tensor eps = Tensor::randn({2 * 48, 3}, data_gen);
  const VAEOutput oa = vae.forward(x, eps);
  const VAEOutput ob = again->forward(x, eps);
  EXPECT_EQ(oa.h.to_vector<float>(), ob.h.to_vector<float>());
  EXPECT_EQ(oa.params.to_vector<float>(), ob.params.to_vector<float>());
  EXPECT_EQ(vae.encode(x).to_vector<float>(), again->encode(x).to_vector<float>());
  EXPECT_EQ(vae.loss(oa, x).total.item(), again->loss(ob, x).total.item());
}

TEST_F(VaeCheckpointTest, LoadVaeReportsFilesWithoutOrWithWrongConfig) {
  VAE vae(odd_config());
  const std::string bare = path("bare.safetensors");
  save(vae, bare);
  expect_mentions(error_of([&] { load_vae(bare); }), {"[vae]", "lacks \"latent.model\""});

  // Metadata that describes another architecture than the tensors hold.
  Metadata m = to_metadata(odd_config());
  m["latent.vae.hidden"] = "12,8";
  const std::string wrong = path("wrong.safetensors");
  save(vae, wrong, m);
  expect_mentions(
      error_of([&] { load_vae(wrong); }),
      {"[load]", wrong.c_str(), "its metadata describes a model with", "but the file holds"});
}

// Metadata claiming a huge model is refused from the tensors' shapes before anything is built:
// at once, and without the memory the claim would take (3 GB here).
TEST_F(VaeCheckpointTest, HugeClaimsInTheMetadataCostNothing) {
  VAE vae(odd_config());
  Metadata m = to_metadata(odd_config());
  m["latent.vae.hidden"] = "300000";
  const std::string huge = path("huge.safetensors");
  save(vae, huge, m);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  const auto t0 = std::chrono::steady_clock::now();
  expect_mentions(error_of([&] { load_vae(huge); }),
                  {"[load]", huge.c_str(), "(300000,", "but the file holds"});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  EXPECT_LT(seconds, 1.0);
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 100 * 1024);  // kilobytes
}

// One model of every kind, each with fields away from their defaults.
struct Kind {
  std::string name;  // the metadata's latent.model
  std::function<std::unique_ptr<Autoencoder>()> make;
};

std::vector<Kind> kinds() {
  const MLPSpec enc{.hidden = {16, 8}, .activation = Act::elu, .activation_alpha = 0.5f};
  const MLPSpec dec{.hidden = {9}, .activation = Act::tanh};
  const LikelihoodConfig gauss{.kind = Likelihood::gaussian_learned};
  return {
      {"ae",
       [=] {
         return std::make_unique<AE>(AEConfig{.input = 20,
                                              .latent = 4,
                                              .encoder = enc,
                                              .decoder = dec,
                                              .code_activation = Act::leaky_relu,
                                              .code_activation_alpha = 0.1f,
                                              .likelihood = gauss,
                                              .seed = 5});
       }},
      {"ae", [] { return std::make_unique<AE>(AEConfig::linear(20, 3, 0.4, 6)); }},
      {"dae",
       [=] {
         return std::make_unique<DenoisingAE>(DenoisingAEConfig{
             .input = 20,
             .latent = 4,
             .encoder = enc,
             .decoder = dec,
             .likelihood = {.kind = Likelihood::categorical, .levels = 3},
             .corruption = {.kind = Corruption::salt_and_pepper, .p = 0.15, .sigma = 0.2},
             .seed = 7});
       }},
      {"sae",
       [=] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 20,
                                                          .latent = 30,
                                                          .encoder = enc,
                                                          .decoder = dec,
                                                          .penalty = Sparsity::kl,
                                                          .weight = 0.01,
                                                          .rho = 0.1,
                                                          .beta = 2.5,
                                                          .seed = 8});
       }},
      {"sae",
       [=] {
         return std::make_unique<SparseAE>(SparseAEConfig{.input = 20,
                                                          .latent = 6,
                                                          .code_activation = Act::softplus,
                                                          .penalty = Sparsity::l1,
                                                          .weight = 0.02,
                                                          .seed = 9,
                                                          .undercomplete = true});
       }},
      {"cae",
       [=] {
         return std::make_unique<ContractiveAE>(ContractiveAEConfig{
             .input = 20, .latent = 5, .decoder = dec, .lambda = 0.3, .seed = 10});
       }},
      {"vae", [] { return std::make_unique<VAE>(odd_config()); }},
      {"iwae",
       [] {
         return std::make_unique<IWAE>(IWAEConfig{.input = 20,
                                                  .hidden = {12},
                                                  .latent = 3,
                                                  .activation = Act::gelu,
                                                  .likelihood = Likelihood::bernoulli,
                                                  .k = 4,
                                                  .seed = 11});
       }},
  };
}

class ModelCheckpointTest : public VaeCheckpointTest {};

TEST_F(ModelCheckpointTest, EveryKindIsRebuiltFromItsFileAlone) {
  Generator g(2);
  const Tensor x = Tensor::rand({6, 20}, g);
  int i = 0;
  for (const Kind& k : kinds()) {
    SCOPED_TRACE(k.name + " #" + std::to_string(i));
    const std::unique_ptr<Autoencoder> model = k.make();
    const Metadata meta = to_metadata(*model);
    EXPECT_EQ(meta.at("latent.model"), k.name);
    EXPECT_EQ(model_kind(meta), k.name);
    const std::string p = path("model" + std::to_string(i++) + ".safetensors");
    save(*model, p, meta);
    const std::unique_ptr<Autoencoder> again = load(p);
    EXPECT_EQ(again->name(), model->name());
    // The same configuration (its metadata, every field written), parameters and code.
    EXPECT_EQ(to_metadata(*again), meta);
    const auto a = model->named_parameters(), b = again->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t j = 0; j < a.size(); ++j) {
      EXPECT_EQ(a[j].first, b[j].first);
      EXPECT_EQ(a[j].second.to_vector<float>(), b[j].second.to_vector<float>()) << a[j].first;
    }
    model->eval();
    again->eval();
    EXPECT_EQ(model->encode(x).to_vector<float>(), again->encode(x).to_vector<float>());
  }
}

TEST_F(ModelCheckpointTest, LoadVaeTakesAnIwaeAndRefusesADeterministicModel) {
  const std::vector<Kind> all = kinds();
  const auto iwae = all.back().make();
  const std::string pi = path("iwae.safetensors");
  save(*iwae, pi, to_metadata(*iwae));
  const auto v = load_vae(pi);
  EXPECT_EQ(v->name(), "iwae");
  EXPECT_NE(dynamic_cast<IWAE*>(v.get()), nullptr);
  const auto ae = all.front().make();
  const std::string pa = path("ae.safetensors");
  save(*ae, pa, to_metadata(*ae));
  expect_mentions(error_of([&] { load_vae(pa); }), {"[vae]", pa.c_str(), "'ae'", "not a VAE"});
}

TEST_F(ModelCheckpointTest, BadMetadataIsNamed) {
  const auto dae = kinds()[2].make();
  const std::string p = path("dae.safetensors");
  Metadata m = to_metadata(*dae);
  auto with = [&](const std::string& key, const std::string& value) {
    Metadata changed = m;
    if (value.empty())
      changed.erase(key);
    else
      changed[key] = value;
    save(*dae, p, changed);
    return error_of([&] { load(p); });
  };
  expect_mentions(with("latent.model", "gan"), {"[load]", "'gan'", "ae, dae, sae, cae, vae, iwae"});
  expect_mentions(with("latent.model", ""), {"[load]", "lacks \"latent.model\""});
  expect_mentions(
      with("latent.dae.corruption", "blur"),
      {"[dae]", "latent.dae.corruption", "'blur'", "gaussian, masking or salt_and_pepper"});
  expect_mentions(with("latent.dae.encoder.hidden", "16,,8"),
                  {"[dae]", "latent.dae.encoder.hidden", "comma-separated"});
  expect_mentions(with("latent.dae.undercomplete", "maybe"),
                  {"[dae]", "latent.dae.undercomplete", "true or false"});
  expect_mentions(with("latent.dae.corruption_p", ""), {"[dae]", "lacks", "corruption_p"});
  // A configuration whose layers the file does not hold, refused before the model is built.
  expect_mentions(
      with("latent.dae.decoder.hidden", "400000"),
      {"[load]", p.c_str(), "decoder.layers.0.weight", "(400000, 4)", "but the file holds"});
  expect_mentions(with("latent.dae.input", "9223372036854775807"), {"[load]", "2^63"});
  // A value the model itself refuses, named by its constructor.
  expect_mentions(with("latent.dae.corruption_p", "1.5"), {"[DenoisingAE]", "corruption.p", "1.5"});
}

}  // namespace
}  // namespace latent::models
