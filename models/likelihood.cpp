#include "models/likelihood.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace latent::models {
namespace {

constexpr const char* kWhere = "likelihood";

// The parameters' width must be a whole number of dimensions: params [N, D*m] -> D.
std::int64_t dims_of(const LikelihoodConfig& c, const Tensor& params, const char* what) {
  check(params.defined(), kWhere, what, ": undefined parameters");
  const std::int64_t m = params_per_dim(c);
  check(params.ndim() == 2 && params.dim(1) % m == 0, kWhere, what, ": ", likelihood_name(c.kind),
        " parameters must be [N, D*", m, "] (", m, " columns per input dimension), got ",
        params.shape().str());
  return params.dim(1) / m;
}

// The fixed log-variance 2 log(sigma) of a Gaussian likelihood as a scalar tensor, made once per
// value, dtype and device (a new one every step would cost a fill kernel every step).
Tensor fixed_logvar(double sigma, const TensorOptions& like) {
  struct Entry {
    double sigma;
    DType dtype;
    Device device;
    Tensor value;
  };
  thread_local std::vector<Entry> cache;
  for (const Entry& e : cache)
    if (e.sigma == sigma && e.dtype == like.dtype && e.device == like.device) return e.value;
  NoGradGuard no_grad;
  cache.push_back(
      {sigma, like.dtype, like.device,
       Tensor::scalar(2.0 * std::log(sigma), {.dtype = like.dtype, .device = like.device})});
  return cache.back().value;
}

}  // namespace

void validate(const LikelihoodConfig& c) {
  switch (c.kind) {
    case Likelihood::bernoulli:
    case Likelihood::gaussian_learned:
      return;
    case Likelihood::gaussian:
      check(std::isfinite(c.sigma) && c.sigma > 0.0, kWhere,
            "gaussian: sigma must be finite and > 0, got ", c.sigma);
      return;
    case Likelihood::categorical:
      check(c.levels >= 2, kWhere, "categorical: levels must be >= 2, got ", c.levels);
      return;
    case Likelihood::continuous_bernoulli:
      return;
  }
  throw Error(kWhere, detail::cat("unknown likelihood kind ", static_cast<int>(c.kind)));
}

const char* likelihood_name(Likelihood kind) {
  switch (kind) {
    case Likelihood::bernoulli:
      return "bernoulli";
    case Likelihood::gaussian:
      return "gaussian";
    case Likelihood::gaussian_learned:
      return "gaussian_learned";
    case Likelihood::categorical:
      return "categorical";
    case Likelihood::continuous_bernoulli:
      return "continuous_bernoulli";
  }
  return "?";
}

Likelihood parse_likelihood(const std::string& name) {
  for (Likelihood k : {Likelihood::bernoulli, Likelihood::gaussian, Likelihood::gaussian_learned,
                       Likelihood::categorical, Likelihood::continuous_bernoulli})
    if (name == likelihood_name(k)) return k;
  throw Error(kWhere, "unknown likelihood '" + name +
                          "' (valid: bernoulli, gaussian, gaussian_learned, categorical, "
                          "continuous_bernoulli)");
}

std::int64_t params_per_dim(const LikelihoodConfig& c) {
  switch (c.kind) {
    case Likelihood::gaussian_learned:
      return 2;
    case Likelihood::categorical:
      validate(c);
      return c.levels;
    default:
      return 1;
  }
}

Tensor quantize(const Tensor& x, int levels) {
  check(levels >= 2, kWhere, "quantize: levels must be >= 2, got ", levels);
  check(x.defined(), kWhere, "quantize: undefined input");
  // Data, never a parameter: the levels are computed on the host and carry no gradient.
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> q(v.size());
  const double top = levels - 1;
  for (std::size_t i = 0; i < v.size(); ++i) {
    check(v[i] >= 0.0 && v[i] <= 1.0, kWhere, "categorical data must lie in [0, 1], element ", i,
          " of ", x.shape().str(), " is ", v[i]);
    q[i] = std::round(v[i] * top);
  }
  return Tensor::from_data(std::span<const double>(q), x.shape(), x.options());
}

Tensor nll(const LikelihoodConfig& c, const Tensor& params, const Tensor& x) {
  validate(c);
  check(x.defined(), kWhere, "nll: undefined data x");
  check(x.ndim() == 2, kWhere, "nll: x must be [N, D], got ", x.shape().str());
  check(params.defined(), kWhere, "nll: undefined parameters");
  const std::int64_t n = x.dim(0), d = x.dim(1), m = params_per_dim(c);
  check(params.ndim() == 2 && params.dim(0) == n && params.dim(1) == d * m, kWhere,
        "nll: ", likelihood_name(c.kind), " parameters for x ", x.shape().str(), " must be [N, D*",
        m, "] = (", n, ", ", d * m, "), got ", params.shape().str());
  switch (c.kind) {
    case Likelihood::bernoulli:
      return bce_with_logits(params, x, Reduction::none);
    case Likelihood::gaussian: {
      const Tensor logvar = Tensor::scalar(2.0 * std::log(c.sigma), params.options());
      return gaussian_nll(params, logvar, x, Reduction::none);
    }
    case Likelihood::gaussian_learned:
      return gaussian_nll(narrow_cols(params, 0, d), narrow_cols(params, d, d), x, Reduction::none);
    case Likelihood::continuous_bernoulli:
      // -log p = BCE(eta, x) - log C(eta), summed over the dimensions.
      return sub(bce_with_logits(params, x, Reduction::none), sum(cb_log_norm(params), 1));
    case Likelihood::categorical: {
      // One K-way softmax per input dimension: rows (n, d) of [N*D, K], per-sample sums after.
      const Tensor target = quantize(x, c.levels).reshape({n * d});
      const Tensor ce = cross_entropy(params.reshape({n * d, m}), target, Reduction::none);
      return sum(ce.reshape({n, d}), 1);
    }
  }
  throw Error(kWhere, "unknown likelihood kind");
}

Tensor nll_mean(const LikelihoodConfig& c, const Tensor& params, const Tensor& x) {
  switch (c.kind) {
    case Likelihood::bernoulli:
    case Likelihood::gaussian:
      // nll() checks the arguments; the reduced form sums every element and divides by N.
      if (params.defined() && x.defined() && params.shape() == x.shape() && x.ndim() == 2) {
        validate(c);
        if (c.kind == Likelihood::bernoulli)
          return bce_with_logits(params, x, Reduction::batch_mean);
        return gaussian_nll(params, fixed_logvar(c.sigma, params.options()), x,
                            Reduction::batch_mean);
      }
      break;
    case Likelihood::categorical:
      // One op, the levels computed in the kernel (no host read of the data): values outside
      // [0, 1] give NaN there, where nll() names them (the Trainer checks its data first).
      if (params.defined() && x.defined() && !x.requires_grad() && x.ndim() == 2 &&
          params.ndim() == 2 && params.dim(0) == x.dim(0) && params.dim(1) == x.dim(1) * c.levels) {
        validate(c);
        return categorical_nll(params, x, c.levels, Reduction::batch_mean);
      }
      break;
    case Likelihood::gaussian_learned:
      // One op over the packed (mean | logvar) columns: no column views, one kernel.
      if (params.defined() && x.defined() && !x.requires_grad() && x.ndim() == 2 &&
          params.ndim() == 2 && params.dim(0) == x.dim(0) && params.dim(1) == 2 * x.dim(1))
        return gaussian_nll_packed(params, x, Reduction::batch_mean);
      break;
    default:
      break;
  }
  return latent::mean(nll(c, params, x));
}

Tensor mean(const LikelihoodConfig& c, const Tensor& params) {
  validate(c);
  const std::int64_t d = dims_of(c, params, "mean");
  switch (c.kind) {
    case Likelihood::bernoulli:
      return sigmoid(params);
    case Likelihood::gaussian:
      return params;
    case Likelihood::gaussian_learned:
      return narrow_cols(params, 0, d);
    case Likelihood::continuous_bernoulli:
      return cb_mean(params);
    case Likelihood::categorical: {
      // E[level] / (K - 1) = sum_k softmax_k * k / (K - 1): one GEMV against the level values.
      const std::int64_t n = params.dim(0), k = c.levels;
      std::vector<double> values(static_cast<std::size_t>(k));
      for (std::int64_t j = 0; j < k; ++j)
        values[static_cast<std::size_t>(j)] = static_cast<double>(j) / static_cast<double>(k - 1);
      const Tensor levels =
          Tensor::from_data(std::span<const double>(values), {k, 1}, params.options());
      const Tensor probs = exp(log_softmax(params.reshape({n * d, k})));
      return matmul(probs, levels).reshape({n, d});
    }
  }
  throw Error(kWhere, "unknown likelihood kind");
}

Tensor sample(const LikelihoodConfig& c, const Tensor& params, Generator& gen) {
  validate(c);
  const std::int64_t d = dims_of(c, params, "sample");
  NoGradGuard no_grad;
  switch (c.kind) {
    case Likelihood::bernoulli:
      return bernoulli(sigmoid(params.detach()), gen);
    case Likelihood::gaussian:
      return gaussian_noise(params.detach(), c.sigma, gen);
    case Likelihood::gaussian_learned: {
      const Tensor mu = narrow_cols(params.detach(), 0, d);
      const Tensor sd = exp(mul(narrow_cols(params.detach(), d, d), 0.5));
      return add(mu, mul(sd, Tensor::randn(mu.shape(), gen, mu.options())));
    }
    case Likelihood::categorical: {
      const std::int64_t n = params.dim(0), k = c.levels;
      const Tensor probs = exp(log_softmax(params.detach().reshape({n * d, k})));
      return mul(categorical(probs, gen), 1.0 / static_cast<double>(k - 1)).reshape({n, d});
    }
    case Likelihood::continuous_bernoulli: {
      // The inverse CDF at u ~ U(0, 1), on the host (a sampling utility, not a training op):
      // x = log(1 + u (e^eta - 1)) / eta, written without overflow for eta > 0 as
      // 1 + log(u + (1 - u) e^-eta) / eta, and u itself near eta = 0.
      const Tensor eta = params.detach().to(Device::cpu());
      const std::vector<double> e = eta.to_vector<double>();
      const std::vector<double> u =
          Tensor::rand(eta.shape(), gen, {.dtype = DType::f64}).to_vector<double>();
      std::vector<double> x(e.size());
      for (std::size_t i = 0; i < e.size(); ++i) {
        const double h = e[i], v = u[i];
        if (std::fabs(h) < 1e-6)
          x[i] = v;
        else if (h > 0)
          x[i] = 1.0 + std::log(v + (1.0 - v) * std::exp(-h)) / h;
        else
          x[i] = std::log1p(v * std::expm1(h)) / h;
        x[i] = std::clamp(x[i], 0.0, 1.0);
      }
      return Tensor::from_data(std::span<const double>(x), eta.shape(), params.options())
          .to(params.device());
    }
  }
  throw Error(kWhere, "unknown likelihood kind");
}

}  // namespace latent::models
