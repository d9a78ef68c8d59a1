// Noise ops: the corruptions of a denoising autoencoder and draws from discrete distributions.
// Each draws from a Generator's Philox stream: an op on n elements takes gen.take(n) (advancing
// the generator past the numbers it used), and element i uses the i-th number of that stream
// (kernels/noise.h), so a seed fixes the result whatever the number of threads.
//
// Gradients: the noise itself is not differentiable. gaussian_noise passes dy through to x
// (the noise is an additive constant); masking_noise and salt_and_pepper pass dy to the entries
// they kept and nothing to the ones they overwrote. bernoulli and categorical give no gradient.
//
// Devices: CPU (float32, float64) and CUDA (float32). For the same generator state both give the
// same draws: bit-identical decisions for masking, salt-and-pepper, bernoulli and categorical, and
// gaussian noise equal to a few ulp.
//
// Errors (latent::Error naming the op and the value): undefined tensors, sigma negative or not
// finite, p outside [0, 1] or NaN, probabilities outside [0, 1] (bernoulli) or negative / rows
// without positive mass (categorical). On CUDA the probabilities are not checked (that would make
// the host wait for the device): bernoulli gives NaN where a probability is outside [0, 1], and
// categorical gives NaN for a row with a negative or non-finite weight or without mass.
#pragma once

#include "core/random.h"
#include "core/tensor.h"

namespace latent {

// x + sigma * eps with eps ~ N(0, 1) per element, any shape. With the same generator state eps
// is the tensor Tensor::randn(x.shape(), gen) would draw (the sum may differ from x + sigma * eps
// computed by two ops in the last bit: the kernel can fuse the multiply-add). sigma >= 0.
Tensor gaussian_noise(const Tensor& x, double sigma, Generator& gen);

// Masking noise: each entry of x is set to 0 with probability p (independently), else kept.
// p in [0, 1]: p = 0 keeps everything, p = 1 zeroes everything.
Tensor masking_noise(const Tensor& x, double p, Generator& gen);

// Salt-and-pepper noise: each entry of x is, with probability p, set to 0 or to 1 (half each);
// otherwise kept. p in [0, 1].
Tensor salt_and_pepper(const Tensor& x, double p, Generator& gen);

// Independent draws y ~ Bernoulli(probs) in {0, 1}, probs' shape (e.g. dynamic binarization of
// grey-level images: bernoulli(images, gen)). Every probability must lie in [0, 1].
Tensor bernoulli(const Tensor& probs, Generator& gen);

// One class index per row of probs [M, K] by inverse CDF -> [M] (indices 0..K-1 as floats).
// Rows are non-negative weights with a positive total; they need not sum exactly to 1 (the
// draw is scaled by the row's total), so softmax outputs can be passed as they are.
Tensor categorical(const Tensor& probs, Generator& gen);

}  // namespace latent
