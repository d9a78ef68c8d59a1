// CPU throughput: the GEMMs that CPU training runs on, validated against a naive reference first,
// then timed (warm-up, median of repeated runs), and one end-to-end autoencoder training step,
// each with both implementations of the build ("impl": "openblas", the default where latent was
// built with it, and "own", the hand-written kernel; kernels/gemm.h). One JSON line per
// measurement on stdout:
//   {"bench":"gemm_cpu","shape":"1024x1024x1024","trans":"NN","impl":"openblas",
//    "device":"cpu: <model>","threads":2,"median_ms":...,"gflops":...}
// shape is MxNxK of C[M, N] = op(A)[M, K] op(B)[K, N]. `--quick` runs fewer shapes and repeats.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.h"
#include "core/latent.h"
#include "kernels/gemm.h"
#include "models/vae.h"

namespace {

using latent::bench::JsonLine;
using latent::bench::thread_count;
using latent::kernels::index_t;

// Deterministic values in [-1, 1) without a generator dependency.
std::vector<float> pattern(std::size_t count, unsigned salt) {
  std::vector<float> v(count);
  unsigned s = 2463534242u ^ salt;
  for (float& x : v) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    x = static_cast<float>(s % 2001u) / 1000.0f - 1.0f;
  }
  return v;
}

struct Gemm {
  index_t m, n, k;
  bool ta, tb;
  std::string trans() const { return std::string(ta ? "T" : "N") + (tb ? "T" : "N"); }
  std::string shape() const {
    return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  }
};

// The kernel against a double-accumulating triple loop, all elements, relative to the size
// of the terms.
bool validate(const Gemm& g) {
  const auto a = pattern(static_cast<std::size_t>(g.m * g.k), 1);
  const auto b = pattern(static_cast<std::size_t>(g.k * g.n), 2);
  std::vector<float> c(static_cast<std::size_t>(g.m * g.n), std::nanf(""));
  const index_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  latent::kernels::cpu::gemm<float>(g.ta, g.tb, g.m, g.n, g.k, 1.0f, a.data(), lda, b.data(), ldb,
                                    0.0f, c.data(), g.n);
  for (index_t i = 0; i < g.m; ++i)
    for (index_t j = 0; j < g.n; ++j) {
      double ref = 0, mag = 0;
      for (index_t p = 0; p < g.k; ++p) {
        const double av = g.ta ? a[p * lda + i] : a[i * lda + p];
        const double bv = g.tb ? b[j * ldb + p] : b[p * ldb + j];
        ref += av * bv;
        mag += std::fabs(av * bv);
      }
      const double got = c[i * g.n + j];
      if (!(std::fabs(got - ref) <= 1e-5 * mag + 1e-6)) {
        std::fprintf(stderr, "bench_cpu: gemm %s %s wrong at (%lld, %lld): %g vs %g\n",
                     g.trans().c_str(), g.shape().c_str(), static_cast<long long>(i),
                     static_cast<long long>(j), got, ref);
        return false;
      }
    }
  return true;
}

std::string impl_name() {
  return latent::kernels::cpu::gemm_impl() == latent::kernels::cpu::GemmImpl::blas ? "openblas"
                                                                                   : "own";
}

void time_gemm(const Gemm& g, const std::string& what, int runs, const std::string& device) {
  const auto a = pattern(static_cast<std::size_t>(g.m * g.k), 3);
  const auto b = pattern(static_cast<std::size_t>(g.k * g.n), 4);
  std::vector<float> c(static_cast<std::size_t>(g.m * g.n));
  const index_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  auto once = [&] {
    latent::kernels::cpu::gemm<float>(g.ta, g.tb, g.m, g.n, g.k, 1.0f, a.data(), lda, b.data(), ldb,
                                      0.0f, c.data(), g.n);
  };
  // Warm-up (thread pool, workspace, caches), then one call per sample.
  const double median =
      latent::bench::time_host(once, {.warmup = 3, .runs = runs, .min_sample_ms = 0}).median_ms;
  const double gflops = 2.0 * double(g.m) * double(g.n) * double(g.k) / (median * 1e6);
  JsonLine()
      .str("bench", "gemm_cpu")
      .str("shape", g.shape())
      .str("trans", g.trans())
      .str("what", what)
      .str("impl", impl_name())
      .str("device", "cpu: " + device)
      .integer("threads", thread_count())
      .str("commit", latent::bench::commit())
      .num("median_ms", median, 4)
      .num("gflops", gflops, 2)
      .print();
}

// One training step of the autoencoder MLP 784-512-256-32-256-512-784 (relu hidden layers, linear
// code, logits out) at batch 128: forward, BCE-with-logits reconstruction loss, backward, Adam.
void time_train_step(int runs, const std::string& device) {
  using namespace latent;
  Generator gen(0);
  nn::MLP encoder({.sizes = {784, 512, 256, 32}, .activation = Act::relu}, gen);
  nn::MLP decoder({.sizes = {32, 256, 512, 784}, .activation = Act::relu}, gen);
  std::vector<Tensor> params = encoder.parameters();
  for (const Tensor& p : decoder.parameters()) params.push_back(p);
  optim::Adam opt(params, {.lr = 1e-3});
  const std::int64_t batch = 128;
  const Tensor x = Tensor::rand({batch, 784}, gen);
  double loss_value = 0;
  auto step = [&] {
    Tensor loss = bce_with_logits(decoder.forward(encoder.forward(x)), x);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_value = loss.item();
  };
  const double first = (step(), loss_value);
  const double median =
      latent::bench::time_host(step, {.warmup = 3, .runs = runs, .min_sample_ms = 0}).median_ms;
  // A training step that does not train is not worth timing.
  if (!(loss_value < first)) {
    std::fprintf(stderr, "bench_cpu: the loss did not fall (%g -> %g)\n", first, loss_value);
    std::exit(1);
  }
  // Three GEMMs of 2*N*in*out flops per layer per step (forward, dx, dW).
  const std::int64_t sizes[] = {784, 512, 256, 32, 256, 512, 784};
  double flops = 0;
  for (int l = 0; l + 1 < 7; ++l) flops += 3.0 * 2.0 * double(batch) * sizes[l] * sizes[l + 1];
  JsonLine()
      .str("bench", "mlp_train_step")
      .str("shape", "784-512-256-32-256-512-784")
      .integer("batch", batch)
      .str("what", "AE relu, bce_with_logits, adam")
      .str("impl", impl_name())
      .str("device", "cpu: " + device)
      .integer("threads", thread_count())
      .str("commit", latent::bench::commit())
      .num("median_ms", median, 4)
      .num("samples_per_s", double(batch) / (median * 1e-3), 1)
      .num("gflops", flops / (median * 1e6), 2)
      .print();
}

// Inference latency of the VAE 784-512-256-32 (Bernoulli): encode (the posterior mean) and
// reconstruct (decode of the mean, logits) of 1 and 8 rows, evaluation mode, no graph.
void time_inference(int runs, const std::string& device) {
  using namespace latent;
  models::VAE vae({.input = 784, .hidden = {512, 256}, .latent = 32});
  vae.eval();
  Generator gen(1);
  for (const std::int64_t rows : {1, 8}) {
    const Tensor x = Tensor::rand({rows, 784}, gen);
    for (const char* what : {"encode", "reconstruct"}) {
      const bool enc = std::strcmp(what, "encode") == 0;
      auto once = [&] {
        NoGradGuard no_grad;
        const Tensor y = enc ? vae.encode(x) : vae.reconstruct(x);
        (void)y;
      };
      const double median =
          latent::bench::time_host(once, {.warmup = 3, .runs = runs, .min_sample_ms = 20})
              .median_ms;
      JsonLine()
          .str("bench", "inference_cpu")
          .str("model", "vae")
          .str("shape", "784-512-256-32")
          .str("what", what)
          .integer("batch", rows)
          .str("impl", impl_name())
          .str("device", "cpu: " + device)
          .integer("threads", thread_count())
          .str("commit", latent::bench::commit())
          .num("median_ms", median, 4)
          .num("samples_per_s", double(rows) / (median * 1e-3), 1)
          .print();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
      return 2;
    }
  }
  const std::string device = latent::bench::cpu_name();
  const int runs = quick ? 7 : 21;

  using latent::kernels::cpu::GemmImpl;
  std::vector<GemmImpl> impls;
  if (latent::kernels::cpu::gemm_has_blas()) impls.push_back(GemmImpl::blas);
  impls.push_back(GemmImpl::own);
  if (latent::kernels::cpu::gemm_has_blas())
    std::fprintf(stderr, "bench_cpu: %s\n", latent::kernels::cpu::gemm_blas_config());

  // A dense layer x [N, D] -> [N, H] runs three GEMMs per step: the forward y = x W^T (NT),
  // dx = dpre W (NN) and dW = dpre^T x (TN). Batches 1 and 8 are inference (encode, reconstruct).
  struct Layer {
    index_t n, d, h;
  };
  std::vector<Layer> layers = {{128, 784, 512},  {128, 512, 256}, {1024, 784, 512},
                               {1024, 512, 256}, {8, 784, 512},   {1, 784, 512}};
  if (quick) layers = {{128, 784, 512}, {1024, 784, 512}, {8, 784, 512}};
  for (const GemmImpl impl : impls) {
    latent::kernels::cpu::set_gemm_impl(impl);
    // Odd sizes leave edge tiles in every direction; k > 192 spans two k blocks.
    for (int t = 0; t < 4; ++t)
      if (!validate({67, 45, 229, bool(t & 1), bool(t & 2)})) return 1;
    time_gemm({1024, 1024, 1024, false, false}, "square", runs, device);
    for (const Layer& l : layers) {
      const std::string name =
          "dense " + std::to_string(l.n) + "x" + std::to_string(l.d) + "->" + std::to_string(l.h);
      time_gemm({l.n, l.h, l.d, false, true}, name + " forward", runs, device);
      if (l.n < 128) continue;  // inference sizes: the forward only
      time_gemm({l.n, l.d, l.h, false, false}, name + " dx", runs, device);
      time_gemm({l.h, l.d, l.n, true, false}, name + " dw", runs, device);
    }
    time_train_step(quick ? 9 : 21, device);
    time_inference(quick ? 7 : 21, device);
  }
  return 0;
}
