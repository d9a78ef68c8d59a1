// Decoder likelihoods p(x | z). A decoder outputs the distribution's parameters for every input
// dimension; these functions turn them into a negative log-likelihood, a mean and samples.
//
// Parameter layouts for x [N, D]:
//   bernoulli         [N, D]      logits                           (x in [0, 1])
//   gaussian          [N, D]      means, fixed sigma               (x real)
//   gaussian_learned  [N, 2D]     (means | log-variances)          (x real)
//   categorical       [N, D*K]    K logits per dimension, contiguous (x in [0, 1], quantized to
//                                 the level round(x * (K - 1)))
//   continuous_bernoulli [N, D]   logits eta (x in [0, 1]): the density C(lambda) lambda^x
//                                 (1 - lambda)^(1 - x), lambda = sigmoid(eta), normalized on
//                                 [0, 1] (Loaiza-Ganem and Cunningham, 2019), so grey levels get a
//                                 true density; its mean is not lambda (ops' cb_mean)
//
// nll() is a true negative log-likelihood in nats with every constant included (0.5 log 2 pi for
// the Gaussians), so numbers compare with papers. For the Bernoulli it is exact on binary data;
// on grey levels it is the usual cross-entropy, not a density. For the categorical it is the
// likelihood of the quantized data.
#pragma once

#include <string>

#include "core/latent.h"

namespace latent::models {

enum class Likelihood { bernoulli, gaussian, gaussian_learned, categorical, continuous_bernoulli };

struct LikelihoodConfig {
  Likelihood kind = Likelihood::bernoulli;
  double sigma = 1.0;  // gaussian: the fixed standard deviation (> 0)
  int levels = 16;     // categorical: K >= 2 intensity levels
};

// Throws latent::Error for sigma <= 0, levels < 2.
void validate(const LikelihoodConfig& config);
const char* likelihood_name(Likelihood kind);
Likelihood parse_likelihood(const std::string& name);

// Decoder output columns per input dimension: 1, 1, 2 or K.
std::int64_t params_per_dim(const LikelihoodConfig& config);

// -log p(x | params) per sample [N], in nats. Differentiable w.r.t. params. x [N, D], params
// [N, D*m] with m = params_per_dim(config); anything else throws latent::Error giving the expected
// shape. The categorical throws for data outside [0, 1] (naming the element).
Tensor nll(const LikelihoodConfig& config, const Tensor& params, const Tensor& x);
// mean(nll(config, params, x)), the scalar the models train on: the same value (up to the order of
// its sums), in one fused kernel each way for the Bernoulli and fixed-sigma Gaussian likelihoods.
Tensor nll_mean(const LikelihoodConfig& config, const Tensor& params, const Tensor& x);
// The distribution's mean [N, D] (probabilities, means, or the expected intensity level
// sum_k softmax_k * k / (K - 1)). Differentiable. params [N, D*m].
Tensor mean(const LikelihoodConfig& config, const Tensor& params);
// One draw x ~ p(x | params) [N, D], from gen's Philox stream; not differentiable (detached).
// Categorical draws are levels k / (K - 1) in [0, 1].
Tensor sample(const LikelihoodConfig& config, const Tensor& params, Generator& gen);

// The categorical likelihood's quantization of data x in [0, 1]: the level round(x * (K - 1))
// of every element, as floats in {0, ..., K - 1}, x's shape. Throws for levels < 2 and for data
// outside [0, 1]. Not differentiable.
Tensor quantize(const Tensor& x, int levels);

}  // namespace latent::models
