// A VAE saved with its config in the checkpoint's metadata is rebuilt from the file alone; bad or
// missing config metadata is a clear error.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/latent.h"
#include "models/serialize.h"
#include "models/vae.h"
#include "support/model_test_util.h"

namespace latent::models {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::expect_mentions;

class VaeCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("latent_vae_ckpt_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

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

}  // namespace
}  // namespace latent::models
