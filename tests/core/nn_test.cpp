// nn: modules (naming, order, recursion, conversion, modes), Linear, MLP and initialization.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "core/latent.h"
#include "support/gradcheck.h"
#include "support/test_util.h"

namespace latent {
namespace {

using latent::testing::error_of;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& [n, t] : m.named_parameters()) out.push_back(n);
  return out;
}

// A two-level model: an encoder with its own parameter and a Linear, and a decoder MLP.
struct Encoder : nn::Module {
  explicit Encoder(Generator& gen) {
    scale = register_parameter("scale", Tensor::ones({3}));
    fc = register_module("fc", std::make_shared<nn::Linear>(3, 2, nn::LinearOptions{}, gen));
  }
  Tensor scale;
  std::shared_ptr<nn::Linear> fc;
};

struct Model : nn::Module {
  explicit Model(Generator& gen) {
    encoder = register_module("encoder", std::make_shared<Encoder>(gen));
    decoder = register_module("decoder",
                              std::make_shared<nn::MLP>(nn::MLPConfig{.sizes = {2, 4, 3}}, gen));
    temperature = register_parameter("temperature", Tensor::scalar(1.0));
  }
  std::shared_ptr<Encoder> encoder;
  std::shared_ptr<nn::MLP> decoder;
  Tensor temperature;
};

TEST(Module, NamesFollowRegistrationOrderAndRecurse) {
  Generator gen(1);
  Model m(gen);
  const std::vector<std::string> want{"temperature",
                                      "encoder.scale",
                                      "encoder.fc.weight",
                                      "encoder.fc.bias",
                                      "decoder.layers.0.weight",
                                      "decoder.layers.0.bias",
                                      "decoder.layers.1.weight",
                                      "decoder.layers.1.bias"};
  EXPECT_EQ(names_of(m), want);
  const auto ps = m.parameters();
  ASSERT_EQ(ps.size(), want.size());
  EXPECT_EQ(ps[2].impl(), m.encoder->fc->weight().impl());  // the very tensors, not copies
  for (const Tensor& p : ps) {
    EXPECT_TRUE(p.requires_grad());
    EXPECT_TRUE(p.is_leaf());
  }
  EXPECT_EQ(m.num_parameters(), 1 + 3 + 6 + 2 + 8 + 4 + 12 + 3);
  EXPECT_EQ(m.parameter("decoder.layers.1.bias").shape(), (Shape{3}));
  const std::string err = error_of([&] { m.parameter("decoder.layers.2.bias"); });
  EXPECT_TRUE(contains(err, "decoder.layers.2.bias")) << err;
  EXPECT_TRUE(contains(err, "encoder.fc.weight")) << err;  // lists what exists

  std::vector<std::string> mods;
  for (const auto& [n, mod] : m.named_modules()) mods.push_back(n);
  const std::vector<std::string> want_mods{"",
                                           "encoder",
                                           "encoder.fc",
                                           "decoder",
                                           "decoder.layers",
                                           "decoder.layers.0",
                                           "decoder.layers.1"};
  EXPECT_EQ(mods, want_mods);
  ASSERT_EQ(m.named_children().size(), 2u);
  EXPECT_EQ(m.named_children()[1].first, "decoder");
}

TEST(Module, SharedSubmoduleAndTiedParameterAreListedOnce) {
  Generator gen(2);
  auto shared = std::make_shared<nn::Linear>(2, 2, nn::LinearOptions{}, gen);
  nn::Module root;
  root.register_module("a", shared);
  root.register_module("b", shared);
  root.register_parameter("tied", shared->weight());
  EXPECT_EQ(names_of(root), (std::vector<std::string>{"tied", "a.bias"}));
  EXPECT_EQ(root.num_parameters(), 6);
  EXPECT_EQ(root.named_modules().size(), 2u);
}

TEST(Module, RegistrationErrors) {
  nn::Module m;
  m.register_parameter("w", Tensor::zeros({2}));
  EXPECT_TRUE(
      contains(error_of([&] { m.register_parameter("w", Tensor::zeros({2})); }), "already taken"));
  EXPECT_TRUE(contains(error_of([&] { m.register_parameter("a.b", Tensor::zeros({2})); }), "'.'"));
  EXPECT_THROW(m.register_parameter("", Tensor::zeros({2})), Error);
  EXPECT_THROW(m.register_parameter("u", Tensor()), Error);
  auto leaf = Tensor::ones({2}, {.requires_grad = true});
  const std::string e = error_of([&] { m.register_parameter("n", exp(leaf)); });
  EXPECT_TRUE(contains(e, "leaf") && contains(e, "exp")) << e;
  EXPECT_THROW(m.register_module("w", std::make_shared<nn::Module>()), Error);  // name taken
  EXPECT_THROW(m.register_module("null", std::shared_ptr<nn::Module>()), Error);
  // Cycles.
  auto a = std::make_shared<nn::Module>();
  auto b = std::make_shared<nn::Module>();
  a->register_module("b", b);
  EXPECT_TRUE(contains(error_of([&] { b->register_module("a", a); }), "cycle"));
  EXPECT_THROW(a->register_module("self", a), Error);
}

TEST(Module, TrainEvalPropagates) {
  Generator gen(3);
  Model m(gen);
  for (const auto& [n, mod] : m.named_modules()) EXPECT_TRUE(mod->is_training()) << n;
  m.eval();
  for (const auto& [n, mod] : m.named_modules()) EXPECT_FALSE(mod->is_training()) << n;
  EXPECT_FALSE(m.decoder->layer(1).is_training());
  m.train();
  for (const auto& [n, mod] : m.named_modules()) EXPECT_TRUE(mod->is_training()) << n;
  m.encoder->eval();  // a subtree only
  EXPECT_TRUE(m.is_training());
  EXPECT_FALSE(m.encoder->fc->is_training());
  EXPECT_TRUE(m.decoder->is_training());
}

TEST(Module, ToFloat64InPlaceKeepsHandlesAndGradients) {
  Generator gen(4);
  nn::MLP mlp({.sizes = {3, 4, 2}, .activation = Act::tanh}, gen);
  const Tensor held = mlp.layer(0).weight();  // a handle taken before the conversion
  const std::vector<float> before = held.to_vector<float>();
  auto x = Tensor::rand({2, 3}, gen, {}, -1, 1);
  sum(mlp.forward(x)).backward();
  ASSERT_TRUE(held.grad().defined());
  const std::vector<float> grad_before = held.grad().to_vector<float>();

  mlp.to(DType::f64);
  EXPECT_EQ(mlp.dtype(), DType::f64);
  EXPECT_EQ(held.dtype(), DType::f64);
  EXPECT_TRUE(held.requires_grad());
  const std::vector<double> after = held.to_vector<double>();
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], double(before[i]));
  ASSERT_TRUE(held.grad().defined());  // carried along, converted
  EXPECT_EQ(held.grad().dtype(), DType::f64);
  EXPECT_EQ(held.grad().to_vector<double>()[1], double(grad_before[1]));

  // The converted model is differentiable in float64: a central-difference check of every
  // parameter through the module's own forward.
  mlp.zero_grad();
  auto x64 = Tensor::rand({3, 3}, gen, {.dtype = DType::f64}, -1, 1);
  auto r = testing::gradcheck([&](const std::vector<Tensor>&) { return mlp.forward(x64); },
                              mlp.parameters(), 1e-6, 1e-5);
  EXPECT_TRUE(r.ok) << r.first_failure;

  // A gradient accumulated after the conversion is float64 too, and back to float32 works.
  mlp.to(DType::f32);
  EXPECT_EQ(held.dtype(), DType::f32);
  EXPECT_EQ(held.grad().dtype(), DType::f32);
  EXPECT_EQ(mlp.forward(x).dtype(), DType::f32);
}

TEST(Module, ToDeviceWithoutBackendFailsCleanly) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  Generator gen(5);
  nn::Linear lin(2, 3, {}, gen);
  EXPECT_THROW(lin.to(Device(DeviceType::cuda, 0)), Error);
  EXPECT_TRUE(lin.device().is_cpu());
  lin.to(Device::cpu());  // already there: nothing happens
  EXPECT_TRUE(lin.weight().device().is_cpu());
}

TEST(Module, ZeroGradAndEmptyModule) {
  Generator gen(6);
  nn::Linear lin(2, 2, {}, gen);
  sum(lin.forward(Tensor::ones({1, 2}))).backward();
  EXPECT_NE(lin.bias().grad().to_vector<float>()[0], 0.0f);
  lin.zero_grad();
  for (float v : lin.bias().grad().to_vector<float>()) EXPECT_EQ(v, 0.0f);
  nn::Module empty;
  EXPECT_TRUE(empty.device().is_cpu());
  EXPECT_EQ(empty.num_parameters(), 0);
  EXPECT_TRUE(empty.parameters().empty());
}

// ---- Linear ---------------------------------------------------------------------------------

TEST(Linear, ForwardIsXWTransposePlusB) {
  Generator gen(7);
  nn::Linear lin(3, 2, {}, gen);
  EXPECT_EQ(lin.weight().shape(), (Shape{2, 3}));
  EXPECT_EQ(lin.bias().shape(), (Shape{2}));
  EXPECT_EQ(names_of(lin), (std::vector<std::string>{"weight", "bias"}));
  {
    NoGradGuard ng;
    lin.bias().copy_(Tensor::from_data(std::vector<float>{0.5f, -1.0f}, {2}));
  }
  const std::vector<float> w = lin.weight().to_vector<float>();
  const std::vector<float> b{0.5f, -1.0f};
  const std::vector<float> xv{1, 2, 3, -1, 0.5f, 0.25f};
  auto x = Tensor::from_data(xv, {2, 3});
  const std::vector<float> y = lin.forward(x).to_vector<float>();
  const std::vector<float> yr = lin(x, {Act::relu}).to_vector<float>();
  ASSERT_EQ(y.size(), 4u);
  for (int n = 0; n < 2; ++n)
    for (int h = 0; h < 2; ++h) {
      double ref = b[h];
      for (int d = 0; d < 3; ++d) ref += double(xv[n * 3 + d]) * w[h * 3 + d];
      EXPECT_NEAR(y[n * 2 + h], ref, 1e-5);
      EXPECT_NEAR(yr[n * 2 + h], std::max(ref, 0.0), 1e-5);
    }
}

TEST(Linear, NoBiasAndErrors) {
  Generator gen(8);
  nn::Linear lin(4, 3, {.bias = false}, gen);
  EXPECT_FALSE(lin.bias().defined());
  EXPECT_EQ(names_of(lin), (std::vector<std::string>{"weight"}));
  EXPECT_EQ(lin.forward(Tensor::ones({5, 4})).shape(), (Shape{5, 3}));
  const std::string e = error_of([&] { lin.forward(Tensor::ones({2, 3})); });
  EXPECT_TRUE(contains(e, "[linear]") && contains(e, "(2, 3)") && contains(e, "4")) << e;
  EXPECT_TRUE(contains(error_of([&] { nn::Linear(0, 3, {}, gen); }), "in_features=0"));
}

// ---- MLP ------------------------------------------------------------------------------------

TEST(MLP, ShapesAndLayers) {
  Generator gen(9);
  nn::MLP mlp({.sizes = {5, 7, 4, 3}, .activation = Act::tanh}, gen);
  ASSERT_EQ(mlp.num_layers(), 3u);
  EXPECT_EQ(mlp.layer(0).weight().shape(), (Shape{7, 5}));
  EXPECT_EQ(mlp.layer(2).weight().shape(), (Shape{3, 4}));
  EXPECT_EQ(mlp.in_features(), 5);
  EXPECT_EQ(mlp.out_features(), 3);
  EXPECT_EQ(mlp.forward(Tensor::ones({6, 5})).shape(), (Shape{6, 3}));
  EXPECT_EQ(mlp.activation_of(0).act, Act::tanh);
  EXPECT_EQ(mlp.activation_of(2).act, Act::identity);
  EXPECT_THROW(mlp.layer(3), Error);
  EXPECT_EQ(nn::act_params(Act::leaky_relu, std::nullopt).alpha, 0.01f);
  EXPECT_EQ(nn::act_params(Act::elu, std::nullopt).alpha, 1.0f);
  EXPECT_EQ(nn::act_params(Act::elu, 0.5f).alpha, 0.5f);
}

TEST(MLP, Errors) {
  Generator gen(10);
  nn::MLP mlp({.sizes = {784, 16, 8}}, gen);
  const std::string e = error_of([&] { mlp.forward(Tensor::zeros({2, 100})); });
  EXPECT_TRUE(contains(e, "[mlp]") && contains(e, "784") && contains(e, "(2, 100)")) << e;
  EXPECT_TRUE(contains(error_of([&] { mlp.forward(Tensor::zeros({784})); }), "2-D"));
  const std::string few = error_of([&] { nn::MLP({.sizes = {784}}, gen); });
  EXPECT_TRUE(contains(few, "at least 2 sizes") && contains(few, "{784}")) << few;
  const std::string neg = error_of([&] { nn::MLP({.sizes = {784, 0, 32}}, gen); });
  EXPECT_TRUE(contains(neg, "positive") && contains(neg, "{784, 0, 32}")) << neg;
}

TEST(MLP, PreactivationsMatchTheLayers) {
  Generator gen(11);
  nn::MLP mlp({.sizes = {4, 6, 3},
               .activation = Act::leaky_relu,
               .activation_alpha = 0.2f,
               .output_activation = Act::sigmoid},
              gen);
  auto x = Tensor::rand({5, 4}, gen, {}, -1, 1);
  std::vector<Tensor> pre;
  const Tensor y = mlp.forward_with_preacts(x, &pre);
  ASSERT_EQ(pre.size(), 2u);
  EXPECT_EQ(pre[0].shape(), (Shape{5, 6}));
  EXPECT_EQ(pre[1].shape(), (Shape{5, 3}));
  const auto ref = mlp.forward(x).to_vector<float>();
  const auto got = y.to_vector<float>();
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-6);
  // pre[0] is layer 0 without activation; pre[1] is layer 1 applied to leaky_relu(pre[0]).
  const auto p0 = pre[0].to_vector<float>();
  const auto l0 = mlp.layer(0).forward(x).to_vector<float>();
  for (std::size_t i = 0; i < p0.size(); ++i) EXPECT_NEAR(p0[i], l0[i], 1e-6);
  const auto p1 = pre[1].to_vector<float>();
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], 1.0 / (1.0 + std::exp(-double(p1[i]))), 1e-6);
  // The pre-activations are part of the graph: gradients flow through them.
  sum(square(pre[0])).backward();
  EXPECT_TRUE(mlp.layer(0).weight().grad().defined());
  EXPECT_EQ(mlp.forward_with_preacts(x, nullptr).shape(), (Shape{5, 3}));
}

// ---- init -----------------------------------------------------------------------------------

struct Stats {
  double mean = 0, var = 0, max_abs = 0;
};
Stats stats_of(const Tensor& t) {
  const auto v = t.to_vector<double>();
  Stats s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) {
    s.var += (x - s.mean) * (x - s.mean);
    s.max_abs = std::max(s.max_abs, std::fabs(x));
  }
  s.var /= double(v.size());
  return s;
}

TEST(Init, VarianceMatchesTheFormulas) {
  Generator gen(12);
  auto w = Tensor::empty({256, 512});  // fan_out 256, fan_in 512
  const double xavier = 2.0 / (256 + 512);
  struct Case {
    const char* name;
    std::function<void()> run;
    double var;
    double bound;  // 0: normal
  } cases[] = {
      {"xavier_uniform", [&] { nn::init::xavier_uniform(w, gen); }, xavier, std::sqrt(3 * xavier)},
      {"xavier_normal", [&] { nn::init::xavier_normal(w, gen, 2.0); }, 4 * xavier, 0},
      {"kaiming_uniform", [&] { nn::init::kaiming_uniform(w, gen); }, 2.0 / 512,
       std::sqrt(6.0 / 512)},
      {"kaiming_normal", [&] { nn::init::kaiming_normal(w, gen); }, 2.0 / 512, 0},
      {"kaiming_normal fan_out",
       [&] { nn::init::kaiming_normal(w, gen, 1.0, nn::FanMode::fan_out); }, 1.0 / 256, 0},
  };
  for (const auto& c : cases) {
    c.run();
    const Stats s = stats_of(w);
    EXPECT_NEAR(s.var, c.var, 0.03 * c.var) << c.name;
    EXPECT_NEAR(s.mean, 0.0, 0.02 * std::sqrt(c.var)) << c.name;
    if (c.bound > 0) {
      EXPECT_LE(s.max_abs, c.bound) << c.name;
      EXPECT_GT(s.max_abs, 0.99 * c.bound) << c.name;
    }
  }
  nn::init::constant(w, 0.25);
  EXPECT_EQ(stats_of(w).mean, 0.25);
  nn::init::zeros(w);
  EXPECT_EQ(stats_of(w).max_abs, 0.0);
}

TEST(Init, AutomaticPicksKaimingForReluAndXavierOtherwise) {
  Generator gen(13);
  nn::Linear relu(512, 256, {.activation = Act::relu}, gen);
  EXPECT_NEAR(stats_of(relu.weight()).var, 2.0 / 512, 0.03 * 2.0 / 512);
  nn::Linear tanh_layer(512, 256, {.activation = Act::tanh}, gen);
  const double want = (25.0 / 9.0) * 2.0 / 768;
  EXPECT_NEAR(stats_of(tanh_layer.weight()).var, want, 0.03 * want);
  for (float b : relu.bias().to_vector<float>()) EXPECT_EQ(b, 0.0f);
  EXPECT_DOUBLE_EQ(nn::init::gain(Act::relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(nn::init::gain(Act::tanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(nn::init::gain(Act::leaky_relu, 0.2), std::sqrt(2.0 / 1.04));
  EXPECT_DOUBLE_EQ(nn::init::gain(Act::sigmoid), 1.0);
}

TEST(Init, SeedingIsReproducible) {
  Generator g1(42), g2(42), g3(43);
  nn::MLP a({.sizes = {8, 6, 4}}, g1), b({.sizes = {8, 6, 4}}, g2), c({.sizes = {8, 6, 4}}, g3);
  EXPECT_EQ(a.layer(0).weight().to_vector<float>(), b.layer(0).weight().to_vector<float>());
  EXPECT_EQ(a.layer(1).weight().to_vector<float>(), b.layer(1).weight().to_vector<float>());
  EXPECT_NE(a.layer(0).weight().to_vector<float>(), c.layer(0).weight().to_vector<float>());
  // Layers draw in sequence: the second layer's weights differ from the first's stream start.
  EXPECT_NE(a.layer(0).weight().to_vector<float>()[0], a.layer(1).weight().to_vector<float>()[0]);
}

TEST(Init, InPlaceOnParametersAndErrors) {
  Generator gen(14);
  nn::Linear lin(4, 4, {}, gen);
  const Tensor handle = lin.weight();
  const auto before = handle.to_vector<float>();
  nn::init::xavier_normal(lin.weight(), gen);  // requires_grad, grad mode on: still allowed
  EXPECT_NE(handle.to_vector<float>(), before);
  EXPECT_EQ(handle.impl(), lin.parameters()[0].impl());
  const std::string e = error_of([&] { nn::init::xavier_uniform(Tensor::zeros({5}), gen); });
  EXPECT_TRUE(contains(e, "[init.xavier_uniform]") && contains(e, "(5)")) << e;
  EXPECT_THROW(nn::init::kaiming_uniform(Tensor::zeros({3, 0}), gen), Error);
  EXPECT_THROW(nn::init::xavier_uniform(Tensor::zeros({3, 3}), gen, -1.0), Error);
}

}  // namespace
}  // namespace latent
