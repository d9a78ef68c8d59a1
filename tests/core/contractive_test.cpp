// The contractive penalty ||df/dx||_F^2: hand-computed values, the chain's building blocks, and
// the key property: both penalties equal the squared Frobenius norm of a finite-difference
// Jacobian of the actual encoder.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/latent.h"
#include "support/gradcheck.h"
#include "support/test_util.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace latent {
namespace {

using latent::testing::expect_thread_count_independent;

using testing::error_of;
using testing::expect_mentions;
using testing::expect_near_all;
using testing::f64;
using testing::kF64;

// ---- hand-computed values --------------------------------------------------------------------

TEST(ContractivePenalty, HandComputedSigmoid) {
  // ||W_0||^2 = 5, ||W_1||^2 = 10; sigmoid'(0) = 1/4, sigmoid'(1) = 0.19661193324148185.
  Tensor pre = f64({0.0, 1.0, -0.5, 2.0}, {2, 2}, true);
  Tensor w = f64({1, 2, 3, -1}, {2, 2}, true);
  const ActParams sig{Act::sigmoid};
  expect_near_all(contractive_penalty(pre, w, sig, Reduction::none).to_vector<double>(),
                  {0.6990625229295291, 0.3863702535014837}, 1e-14);
  EXPECT_NEAR(contractive_penalty(pre, w, sig, Reduction::sum).item(), 1.0854327764310128, 1e-14);
  EXPECT_NEAR(contractive_penalty(pre, w, sig).item(), 0.5427163882155064, 1e-14);
  // mean: over N * H * D = 8 Jacobian entries.
  EXPECT_NEAR(contractive_penalty(pre, w, sig, Reduction::mean).item(), 0.1356790970538766, 1e-14);

  contractive_penalty(pre, w, sig, Reduction::sum).backward();
  // dpre = 2 a' a'' ||W_j||^2 (a''(0) = 0); dW_j = 2 W_j sum_n a'(pre_nj)^2.
  expect_near_all(pre.grad().to_vector<double>(),
                  {0.0, -0.35727434839890276, 0.13526060452721003, -0.16791099367434398}, 1e-14);
  expect_near_all(w.grad().to_vector<double>(),
                  {0.2354534894970597, 0.4709069789941194, 0.2980794316130181, -0.0993598105376727},
                  1e-14);
}

TEST(ContractivePenalty, IdentityIsTheSquaredFrobeniusNormOfW) {
  Tensor pre = Tensor::zeros({3, 2}, kF64);
  Tensor w = f64({1, 2, 3, -1, 0.5, 2}, {2, 3});
  expect_near_all(contractive_penalty(pre, w, {Act::identity}, Reduction::none).to_vector<double>(),
                  {19.25, 19.25, 19.25}, 1e-14);
}

TEST(JacobianSeed, HandComputed) {
  Tensor d = f64({2, -1}, {1, 2}, true);
  Tensor w = f64({1, 2, 3, 4, 5, 6}, {2, 3}, true);
  Tensor out = jacobian_seed(d, w);
  EXPECT_EQ(out.shape(), Shape({2, 3}));
  expect_near_all(out.to_vector<double>(), {2, 4, 6, -4, -5, -6}, 0);
  out.backward(Tensor::ones({2, 3}, kF64));
  expect_near_all(d.grad().to_vector<double>(), {6, 15}, 0);
  expect_near_all(w.grad().to_vector<double>(), {2, 2, 2, -1, -1, -1}, 0);
}

TEST(ScaleRowGroups, HandComputed) {
  Tensor m = f64({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, true);  // N = 2 samples, G = 2 rows each
  Tensor d = f64({10, 20, -1, 0.5}, {2, 2}, true);
  Tensor out = scale_row_groups(m, d);
  expect_near_all(out.to_vector<double>(), {10, 40, 30, 80, -5, 3, -7, 4}, 0);
  out.backward(Tensor::ones({4, 2}, kF64));
  expect_near_all(m.grad().to_vector<double>(), {10, 20, 10, 20, -1, 0.5, -1, 0.5}, 0);
  expect_near_all(d.grad().to_vector<double>(), {4, 6, 12, 14}, 0);
}

// ---- the penalties against finite-difference Jacobians of the encoder -------------------------

struct Layer {
  Tensor w, b;
  ActParams act;
};

std::vector<Layer> make_encoder(const std::vector<std::int64_t>& widths,
                                const std::vector<ActParams>& acts, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<Layer> layers;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    const double scale = 1.5 / std::sqrt(static_cast<double>(widths[l]));
    layers.push_back({Tensor::randn({widths[l + 1], widths[l]}, gen, kF64, 0.0, scale),
                      Tensor::randn({widths[l + 1]}, gen, kF64, 0.0, 0.5), acts[l]});
  }
  return layers;
}

// f(x) through dense ops; collects the pre-activations when asked.
Tensor encode(const std::vector<Layer>& layers, const Tensor& x,
              std::vector<Tensor>* preacts = nullptr) {
  Tensor h = x;
  for (const Layer& l : layers) {
    Tensor pre = dense(h, l.w, l.b);
    if (preacts) preacts->push_back(pre);
    h = activation(pre, l.act);
  }
  return h;
}

// ||J_n||_F^2 per sample with J_n[:, i] = (f(x + s e_i) - f(x - s e_i)) / 2s. Samples are
// independent, so column i of every sample's Jacobian comes from one pair of batch passes.
std::vector<double> finite_difference_penalty(const std::vector<Layer>& layers, const Tensor& x,
                                              double step = 1e-5) {
  NoGradGuard no_grad;
  const std::int64_t n = x.dim(0), d = x.dim(1);
  std::vector<double> per(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < d; ++i) {
    Tensor xp = x.clone(), xm = x.clone();
    for (std::int64_t s = 0; s < n; ++s) {
      xp.data<double>()[s * d + i] += step;
      xm.data<double>()[s * d + i] -= step;
    }
    const auto fp = encode(layers, xp).to_vector<double>();
    const auto fm = encode(layers, xm).to_vector<double>();
    const std::size_t z = fp.size() / static_cast<std::size_t>(n);
    for (std::size_t k = 0; k < fp.size(); ++k) {
      const double j = (fp[k] - fm[k]) / (2 * step);
      per[k / z] += j * j;
    }
  }
  return per;
}

void expect_relative(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_GT(want[i], 1e-3) << "sample " << i << ": a vanishing reference proves nothing";
    EXPECT_NEAR(got[i] / want[i], 1.0, tol)
        << "sample " << i << ": " << got[i] << " vs " << want[i];
  }
}

TEST(ContractivePenalty, OneLayerMatchesFiniteDifferenceJacobian) {
  const auto layers = make_encoder({7, 5}, {{Act::sigmoid}}, 11);
  Generator gen(12);
  Tensor x = Tensor::randn({6, 7}, gen, kF64);
  std::vector<Tensor> pre;
  encode(layers, x, &pre);
  const auto fd = finite_difference_penalty(layers, x);
  expect_relative(
      contractive_penalty(pre[0], layers[0].w, layers[0].act, Reduction::none).to_vector<double>(),
      fd, 1e-7);
  expect_relative(
      jacobian_penalty({layers[0].w}, pre, {layers[0].act}, Reduction::none).to_vector<double>(),
      fd, 1e-7);
}

TEST(JacobianPenalty, ThreeLayersMatchFiniteDifferenceJacobian) {
  const std::vector<ActParams> acts = {{Act::tanh}, {Act::softplus}, {Act::sigmoid}};
  const auto layers = make_encoder({6, 8, 5, 3}, acts, 21);
  Generator gen(22);
  Tensor x = Tensor::randn({5, 6}, gen, kF64);
  std::vector<Tensor> pre;
  encode(layers, x, &pre);
  const auto fd = finite_difference_penalty(layers, x);
  const Tensor per =
      jacobian_penalty({layers[0].w, layers[1].w, layers[2].w}, pre, acts, Reduction::none);
  EXPECT_EQ(per.shape(), Shape({5}));
  expect_relative(per.to_vector<double>(), fd, 1e-7);

  double total = 0;
  for (double v : fd) total += v;
  const std::vector<Tensor> ws = {layers[0].w, layers[1].w, layers[2].w};
  EXPECT_NEAR(jacobian_penalty(ws, pre, acts, Reduction::sum).item() / total, 1.0, 1e-7);
  EXPECT_NEAR(jacobian_penalty(ws, pre, acts).item() / (total / 5), 1.0, 1e-7);
  EXPECT_NEAR(jacobian_penalty(ws, pre, acts, Reduction::mean).item() / (total / (5 * 3 * 6)), 1.0,
              1e-7);
}

TEST(JacobianPenalty, MatchesClosedFormForOneLayerAndEveryActivation) {
  const ActParams acts[] = {{Act::identity},  {Act::relu},    {Act::leaky_relu, 0.1f},
                            {Act::elu, 1.0f}, {Act::gelu},    {Act::sigmoid},
                            {Act::tanh},      {Act::softplus}};
  Generator gen(5);
  Tensor w = Tensor::randn({6, 4}, gen, kF64);
  Tensor pre = Tensor::randn({3, 6}, gen, kF64);
  for (const ActParams& a : acts) {
    expect_relative(jacobian_penalty({w}, {pre}, {a}, Reduction::none).to_vector<double>(),
                    contractive_penalty(pre, w, a, Reduction::none).to_vector<double>(), 1e-13);
  }
}

// The whole CAE penalty as a function of the encoder's parameters and input: the pre-activations
// come from dense layers, so the gradient flows through act'' into every weight and bias.
TEST(JacobianPenalty, GradientThroughTheWholeEncoderMatchesCentralDifferences) {
  const std::vector<ActParams> acts = {{Act::softplus}, {Act::tanh}, {Act::sigmoid}};
  const auto init = make_encoder({4, 5, 4, 2}, acts, 31);
  Generator gen(32);
  std::vector<Tensor> inputs;
  for (const Layer& l : init) {
    inputs.push_back(l.w.clone().detach().requires_grad_(true));
    inputs.push_back(l.b.clone().detach().requires_grad_(true));
  }
  inputs.push_back(Tensor::randn({3, 4}, gen, {.dtype = DType::f64, .requires_grad = true}));
  auto fn = [&](const std::vector<Tensor>& in) {
    std::vector<Layer> layers;
    for (std::size_t l = 0; l < 3; ++l) layers.push_back({in[2 * l], in[2 * l + 1], acts[l]});
    std::vector<Tensor> pre;
    encode(layers, in[6], &pre);
    return jacobian_penalty({in[0], in[2], in[4]}, pre, acts, Reduction::none);
  };
  const auto r = testing::gradcheck(fn, inputs, 1e-7, 1e-5);
  EXPECT_TRUE(r.ok) << r.first_failure << " (max abs err " << r.max_abs_err << ")";

  // One layer: the closed form and the chain give the same gradients for w, b and x.
  auto one_layer = [&](bool closed_form) {
    Tensor w = init[0].w.clone().detach().requires_grad_(true);
    Tensor b = init[0].b.clone().detach().requires_grad_(true);
    Tensor x = inputs[6].detach().clone().requires_grad_(true);
    Tensor pre = dense(x, w, b);
    Tensor p = closed_form ? contractive_penalty(pre, w, acts[0], Reduction::sum)
                           : jacobian_penalty({w}, {pre}, {acts[0]}, Reduction::sum);
    p.backward();
    std::vector<double> g = w.grad().to_vector<double>();
    for (const Tensor& t : {b, x})
      for (double v : t.grad().to_vector<double>()) g.push_back(v);
    return g;
  };
  expect_near_all(one_layer(true), one_layer(false), 1e-12);
}

TEST(ContractivePenalty, Float32AgreesWithFloat64) {
  Generator gen(7);
  Tensor w = Tensor::randn({64, 48}, gen, kF64);
  Tensor pre = Tensor::randn({160, 64}, gen, kF64);
  const double ref = contractive_penalty(pre, w, {Act::tanh}).item();
  const double got = contractive_penalty(pre.to(DType::f32), w.to(DType::f32), {Act::tanh}).item();
  EXPECT_NEAR(got / ref, 1.0, 1e-5);
}

// Appends the output's values and the inputs' gradients after a backward with weights dout.
std::vector<float> values_and_grads(const Tensor& out, std::initializer_list<Tensor> inputs) {
  Generator gen(3);
  out.backward(Tensor::rand(out.shape(), gen, {}, 0.5, 1.5));
  std::vector<float> v = out.to_vector<float>();
  for (const Tensor& t : inputs)
    for (float g : t.grad().to_vector<float>()) v.push_back(g);
  return v;
}

TEST(ContractiveFamily, ResultsDoNotDependOnTheThreadCount) {
  Generator gen(17);
  const Tensor pre0 = Tensor::randn({512, 64}, gen), w0 = Tensor::randn({64, 600}, gen);
  expect_thread_count_independent([&] {
    Tensor pre = pre0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    return values_and_grads(contractive_penalty(pre, w, {Act::softplus}, Reduction::none),
                            {pre, w});
  });
  expect_thread_count_independent([&] {
    Tensor pre = pre0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    return values_and_grads(contractive_penalty(pre, w, {Act::tanh}), {pre, w});
  });
  const Tensor d0 = Tensor::randn({200, 8}, gen), ws0 = Tensor::randn({8, 32}, gen);
  expect_thread_count_independent([&] {
    Tensor d = d0.clone().requires_grad_(true), w = ws0.clone().requires_grad_(true);
    return values_and_grads(jacobian_seed(d, w), {d, w});
  });
  const Tensor m0 = Tensor::randn({1600, 32}, gen), s0 = Tensor::randn({200, 32}, gen);
  expect_thread_count_independent([&] {
    Tensor m = m0.clone().requires_grad_(true), d = s0.clone().requires_grad_(true);
    return values_and_grads(scale_row_groups(m, d), {m, d});
  });
}

// ---- errors ----------------------------------------------------------------------------------

TEST(ContractivePenalty, Errors) {
  expect_mentions(
      error_of([] {
        contractive_penalty(Tensor::zeros({4, 3}), Tensor::zeros({5, 2}), {Act::sigmoid});
      }),
      {"[contractive_penalty]", "(4, 3)", "(5, 2)"});
  expect_mentions(error_of([] {
                    contractive_penalty(Tensor::zeros({4}), Tensor::zeros({4, 2}), {});
                  }),
                  {"[contractive_penalty]", "(4)"});
  EXPECT_THROW(contractive_penalty(Tensor::zeros({4, 3}), Tensor::zeros({3, 2}, kF64), {}), Error);
  EXPECT_THROW(contractive_penalty(Tensor(), Tensor::zeros({3, 2}), {}), Error);
}

TEST(JacobianSeedAndScaleRowGroups, Errors) {
  expect_mentions(error_of([] {
                    jacobian_seed(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}));
                  }),
                  {"[jacobian_seed]", "(2, 3)", "(4, 5)"});
  expect_mentions(error_of([] {
                    scale_row_groups(Tensor::zeros({5, 4}), Tensor::zeros({2, 4}));
                  }),
                  {"[scale_row_groups]", "(5, 4)", "(2, 4)"});
  EXPECT_THROW(scale_row_groups(Tensor::zeros({4, 3}), Tensor::zeros({2, 4})), Error);
}

TEST(JacobianPenalty, ErrorsNameTheLayer) {
  const Tensor w1 = Tensor::zeros({6, 4}), w2 = Tensor::zeros({5, 6}), w3 = Tensor::zeros({3, 5});
  const Tensor p1 = Tensor::zeros({2, 6}), p2 = Tensor::zeros({2, 5}), p3 = Tensor::zeros({2, 3});
  const std::vector<ActParams> acts(3, ActParams{Act::tanh});
  EXPECT_NO_THROW(jacobian_penalty({w1, w2, w3}, {p1, p2, p3}, acts));

  // weights[2] should have 5 columns.
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, w2, Tensor::zeros({3, 4})}, {p1, p2, p3}, acts);
                  }),
                  {"[jacobian_penalty]", "weights[2]", "weights[1]", "(3, 4)", "(5, 6)"});
  // preacts[1] has the wrong width.
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, w2, w3}, {p1, Tensor::zeros({2, 4}), p3}, acts);
                  }),
                  {"[jacobian_penalty]", "preacts[1]", "(2, 4)"});
  // preacts[2] has the wrong batch size.
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, w2, w3}, {p1, p2, Tensor::zeros({3, 3})}, acts);
                  }),
                  {"[jacobian_penalty]", "preacts[2]", "(3, 3)"});
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, w2}, {p1, p2, p3}, acts);
                  }),
                  {"[jacobian_penalty]", "one entry per layer"});
  expect_mentions(error_of([] { jacobian_penalty({}, {}, {}); }),
                  {"[jacobian_penalty]", "at least one layer"});
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, Tensor::zeros({5, 6}, kF64), w3}, {p1, p2, p3}, acts);
                  }),
                  {"[jacobian_penalty]", "layer 1", "dtypes differ"});
  expect_mentions(error_of([&] {
                    jacobian_penalty({w1, Tensor::zeros({30}), w3}, {p1, p2, p3}, acts);
                  }),
                  {"[jacobian_penalty]", "weights[1] must be 2-D"});
}

}  // namespace
}  // namespace latent
