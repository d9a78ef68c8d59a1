// A variational autoencoder written directly with latent's core: two MLPs, reparametrized
// sampling, a Bernoulli likelihood on logits and the analytic KL, trained with Adam.
//
// The data is synthetic so the program runs anywhere in seconds: binary-ish 64-pixel "images"
// generated from 2 hidden factors (the position and width of a bar). A VAE with a 2-D code should
// find them: the ELBO rises, and decoding the prior's samples gives bars.
//
//   ./vae_from_ops [steps]        (default 600)
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/latent.h"

using namespace latent;

// Encoder x -> (mu | logvar), decoder z -> logits.
struct Vae : nn::Module {
  Vae(std::int64_t input, std::int64_t hidden, std::int64_t latent, Generator& gen)
      : encoder(register_module(
            "encoder",
            std::make_shared<nn::MLP>(
                nn::MLPConfig{.sizes = {input, hidden, 2 * latent}, .activation = Act::elu}, gen))),
        decoder(register_module(
            "decoder",
            std::make_shared<nn::MLP>(
                nn::MLPConfig{.sizes = {latent, hidden, input}, .activation = Act::elu}, gen))) {}

  std::shared_ptr<nn::MLP> encoder, decoder;
};

// Bars: pixel j is on when |j - centre| < width, blurred a little; centre and width are the
// two factors of variation.
Tensor make_bars(std::int64_t n, std::int64_t d, Generator& gen) {
  const auto u = Tensor::rand({n, 2}, gen).to_vector<float>();
  std::vector<float> x(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i) {
    const double centre = 8 + u[2 * i] * (d - 16), width = 2 + u[2 * i + 1] * 6;
    for (std::int64_t j = 0; j < d; ++j)
      x[i * d + j] =
          static_cast<float>(1.0 / (1.0 + std::exp(2.0 * (std::fabs(j - centre) - width))));
  }
  return Tensor::from_data(x, {n, d});
}

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 600;
  if (steps <= 0) {
    std::fprintf(stderr, "usage: %s [steps > 0]\n", argv[0]);
    return 2;
  }
  const std::int64_t d = 64, batch = 128;
  Generator gen(0);
  Vae vae(d, 128, 2, gen);
  optim::Adam opt(vae.parameters(), {.lr = 2e-3});
  const Tensor test = make_bars(512, d, gen);

  auto elbo = [&](const Tensor& x) {  // per-sample ELBO in nats, averaged (higher is better)
    NoGradGuard no_grad;
    Tensor h = vae.encoder->forward(x);
    Tensor recon = bce_with_logits(vae.decoder->forward(reparametrize(h, 1, gen)), x);
    return -(recon.item() + kl_normal(h).item());
  };

  std::printf("step  train_loss  test_elbo\n");
  for (int step = 1; step <= steps; ++step) {
    const Tensor x = make_bars(batch, d, gen);
    Tensor h = vae.encoder->forward(x);                          // [N, 2Z]
    Tensor z = reparametrize(h, 1, gen);                         // [N, Z]
    Tensor recon = bce_with_logits(vae.decoder->forward(z), x);  // -log p(x|z), batch mean
    Tensor loss = recon + kl_normal(h);                          // -ELBO
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step == 1 || step % 100 == 0 || step == steps)
      std::printf("%4d  %10.3f  %9.3f\n", step, loss.item(), elbo(test));
  }

  // Decode three prior samples and print them as rows of characters.
  NoGradGuard no_grad;
  const auto pixels = sigmoid(vae.decoder->forward(Tensor::randn({3, 2}, gen))).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    std::string row;
    for (std::int64_t j = 0; j < d; ++j) row += pixels[i * d + j] > 0.5f ? '#' : '.';
    std::printf("sample %d: %s\n", i, row.c_str());
  }
  return 0;
}
