// Losses and log-likelihood terms, each fused with its reduction, differentiable.
//
// All per-sample quantities sum over every dimension but the first (the sample), in nats, so a
// reconstruction loss is the negative log-likelihood of the whole input:
//   Reduction::none        -> [N], one value per sample
//   Reduction::sum         -> (), the sum over samples
//   Reduction::batch_mean  -> (), the sum over samples / N    (the usual AE / VAE objective)
//   Reduction::mean        -> (), the mean over every element  (the classic "MSE")
#pragma once

#include "core/tensor.h"

namespace latent {

enum class Reduction { none, sum, batch_mean, mean };

// Binary cross-entropy between logits and targets in [0, 1] (same shape), in the stable form
// max(x, 0) - x*y + log1p(exp(-|x|)). Gradients for both inputs.
Tensor bce_with_logits(const Tensor& logits, const Tensor& target,
                       Reduction reduction = Reduction::batch_mean);

// Squared error (pred - target)^2 (same shape). Default: the mean over all elements.
Tensor mse(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::mean);

// Negative log-likelihood of target under N(mean, exp(logvar)), per element
//   0.5 * (log(2 pi) + logvar + (target - mean)^2 * exp(-logvar)),
// constants included. logvar has mean's shape [N, D], or is [D] (shared across samples), or a
// scalar (a fixed sigma). Gradients for mean, logvar and target.
Tensor gaussian_nll(const Tensor& mean, const Tensor& logvar, const Tensor& target,
                    Reduction reduction = Reduction::batch_mean);

// Row-wise log-softmax of a 2-D tensor [M, K].
Tensor log_softmax(const Tensor& logits);

// Categorical cross-entropy -log softmax(logits)[target] for logits [M, K] and class indices
// target [M] (integral values in [0, K), stored as floats; anything else throws on the CPU).
// Per-sample values are per row: none -> [M]. Gradient for logits only.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::batch_mean);

}  // namespace latent
