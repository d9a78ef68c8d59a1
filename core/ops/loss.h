// Losses and log-likelihood terms, each fused with its reduction, differentiable.
//
// All per-sample quantities sum over every dimension but the first (the sample), in nats, so a
// reconstruction loss is the negative log-likelihood of the whole input:
//   Reduction::none        -> [N], one value per sample
//   Reduction::sum         -> (), the sum over samples
//   Reduction::batch_mean  -> (), the sum over samples / N    (the usual AE / VAE objective)
//   Reduction::mean        -> (), the mean over every element  (the classic "MSE")
// Inputs need a batch dimension (ndim >= 1; a 1-D [N] input has one element per sample). For an
// empty batch (N = 0) none gives an empty [0] and sum gives 0, while batch_mean, and mean over
// zero elements, throw latent::Error (the mean of nothing). Every op taking a Reduction (KL,
// sparsity and contractive penalties too) follows these rules. Mismatched shapes, devices or
// dtypes throw latent::Error naming the op and the shapes. CPU and CUDA (float32); on the GPU the
// sums run in double in a fixed order, so repeated runs give identical bits.
#pragma once

#include <cstdint>

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
// constants included. logvar has mean's shape [N, D], or is [D] (shared across samples; in
// general mean's shape without its first dimension), or a scalar () or (1) (a fixed sigma).
// logvar is not clamped. Gradients for mean, logvar (summed over the samples that share it) and
// target.
Tensor gaussian_nll(const Tensor& mean, const Tensor& logvar, const Tensor& target,
                    Reduction reduction = Reduction::batch_mean);

// gaussian_nll for params [N, 2D] holding (mean | logvar) per row against target [N, D]: the
// learned-variance decoder's loss as one op, reduced (sum, batch_mean or mean; none throws). One
// kernel forward, which also writes the gradient of params; its backward from backward()'s
// implicit 1 runs no kernel. target gets no gradient.
Tensor gaussian_nll_packed(const Tensor& params, const Tensor& target, Reduction reduction);

// The categorical likelihood's loss as one op: logits [N, D*K] (K levels per input dimension, in
// order) against data x [N, D] in [0, 1], whose level is round(x (K - 1)); the K-way cross-entropy
// summed over dimensions, reduced (sum, batch_mean or mean over the N*D terms; none throws). One
// kernel forward, which also writes the logits' gradient; x gets no gradient. A value of x outside
// [0, 1] makes the loss NaN (the kernel cannot throw: check the data before; the Trainer does).
Tensor categorical_nll(const Tensor& logits, const Tensor& x, std::int64_t levels,
                       Reduction reduction);

// Row-wise log-softmax of a 2-D tensor [M, K], stable (the row max is subtracted).
Tensor log_softmax(const Tensor& logits);

// Categorical cross-entropy -log softmax(logits)[target] for logits [M, K] and class indices
// target [M] (integral values in [0, K), stored as floats; anything else throws on the CPU,
// naming the first bad index and its value). On a CUDA device the targets are not checked on the
// host (that would copy them and wait for the GPU): a row whose target is out of range, not an
// integer or NaN gets NaN as its loss, so a reduced loss is NaN and that row's gradient is NaN.
// Per-sample values are per row: none -> [M], and mean divides by M like batch_mean. Gradient for
// logits only (softmax - onehot); a target that requires grad gets none.
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     Reduction reduction = Reduction::batch_mean);

}  // namespace latent
