// Generation from trained models: samples from the prior, interpolations between two inputs in
// latent space, and traversals of one latent dimension.
//
// Every function runs without recording a graph (NoGradGuard) and with the model in evaluation
// mode (the previous mode is restored on return). Inputs may live on any device; results are on
// the model's device. An "input" is one example, [D] or [1, D] with D = the model's input width.
//
// Errors (latent::Error "[generate] ..."): n < 1, steps < 2, an input that is not one example of
// width D, a latent dimension outside [0, Z), an empty list of values.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"
#include "models/vae.h"

namespace latent::models {

struct SampleOptions {
  // false: the decoder's mean for each z (probabilities, means, expected levels); true: one draw
  // x ~ p(x|z) from the likelihood.
  bool draw = false;
  // Where z (and the likelihood draw) come from; null: the model's evaluation stream
  // (noise_generator() in evaluation mode), so sampling never shifts the training noise.
  Generator* generator = nullptr;
};

// n samples z ~ N(0, I) decoded -> [n, D].
Tensor sample(VAE& vae, std::int64_t n, const SampleOptions& options = {});

// The decoder's means along the straight line between the codes of a and b:
// z_t = (1 - t) encode(a) + t encode(b) for t = 0, 1/(steps-1), ..., 1 -> [steps, D]. The first
// row is decode(encode(a)), the last decode(encode(b)). Works for every autoencoder (for a VAE the
// code is the posterior mean).
Tensor interpolate(Autoencoder& model, const Tensor& a, const Tensor& b, std::int64_t steps);

// A latent traversal: the code of x with dimension `dim` replaced by each of `values` in turn,
// decoded -> [values.size(), D].
Tensor traverse(Autoencoder& model, const Tensor& x, std::int64_t dim,
                const std::vector<double>& values);

// `count` evenly spaced values from lo to hi inclusive (count >= 2), e.g. for traverse().
std::vector<double> linspace(double lo, double hi, std::int64_t count);

}  // namespace latent::models
