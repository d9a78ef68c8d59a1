// The variational autoencoder's two fused ops: reparametrized sampling and the KL divergence of
// a diagonal Gaussian to the standard normal.
//
// Both take the encoder's output h [N, 2Z] = (mu | logvar): columns [0, Z) are the means,
// columns [Z, 2Z) the log-variances. Log-variances are clamped to [kLogvarMin, kLogvarMax] in the
// forward pass, and the gradient w.r.t. logvar is zero where the clamp is active, so exp(logvar)
// never overflows and a runaway encoder cannot produce inf/nan.
#pragma once

#include <cstdint>

#include "core/ops/loss.h"
#include "core/random.h"
#include "core/tensor.h"

namespace latent {

inline constexpr double kLogvarMin = -30.0;
inline constexpr double kLogvarMax = 20.0;

// R samples z = mu + exp(logvar / 2) * eps -> [R*N, Z], row r*N + n is sample r of input n.
// eps is drawn from gen's Philox stream (element i of the [R*N, Z] block is normal_at(seed,
// offset, i)); backward regenerates eps from the same counters instead of storing it.
Tensor reparametrize(const Tensor& h, std::int64_t samples, Generator& gen);
// The same with explicit noise eps [R*N, Z] (R = eps rows / N). eps gets no gradient.
Tensor reparametrize(const Tensor& h, const Tensor& eps);

// Both at once, as a VAE's training step needs them: z = reparametrize(h, samples, gen) and
// kl = kl_normal(h, batch_mean), the same values, from one kernel forward and one backward
// (which adds the KL's gradient to the sample's).
struct SampleAndKl {
  Tensor z;
  Tensor kl;
};
SampleAndKl reparametrize_kl(const Tensor& h, std::int64_t samples, Generator& gen);

// KL(N(mu, exp(logvar)) || N(0, I)) = -1/2 sum_z (1 + logvar - mu^2 - exp(logvar)), summed over
// the Z latent dimensions of each sample, reduced over samples as the Reduction says.
Tensor kl_normal(const Tensor& h, Reduction reduction = Reduction::batch_mean);
// The per-dimension terms [N, Z] (for KL per latent dimension and free bits).
Tensor kl_normal_terms(const Tensor& h);

}  // namespace latent
