// Evaluation of trained models on a data set: reconstruction error, the ELBO, importance-sampled
// log p(x), KL per latent dimension, active units, and the export of posterior means.
//
// Every function runs without recording a graph (NoGradGuard), with the model in evaluation mode
// (its previous mode is restored on return, also when it throws), and walks the data in batches of
// `batch` rows, moved to the model's device one at a time, so memory is bounded by the batch, not
// by the data set. Data x is [N, D] with D = the model's input width, on any device. Results are
// means over the N examples, in nats where they are log-likelihoods, accumulated in double on the
// host. Random draws come from a Generator seeded with options.seed (the model's own generators
// are not touched), so an evaluation repeats exactly.
//
// Across processes (options.group of more than one rank, e.g. dist::world() under mpirun): every
// rank calls the function with the same data, evaluates its share of every batch (dist::share;
// the noise is the one the whole batch draws, so the estimate is the single process's up to the
// order of the sums), and the sums are reduced: every rank returns the same numbers. These calls
// are collectives (every rank must make them, in the same order). export_mu and
// log_likelihood_per_example return every row and are computed whole by each caller.
//
// Errors (latent::Error "[evaluate] ..."): an empty data set, a wrong input width, batch < 1,
// samples < 1, k < 1, chunk < 1, a negative threshold.
#pragma once

#include <cstdint>
#include <string>

#include "core/dist.h"
#include "models/model.h"
#include "models/vae.h"

namespace latent::models {

struct EvalOptions {
  std::int64_t batch = 256;  // data rows per step
  std::uint64_t seed = 0;    // noise of the sampling estimates
  // The processes that evaluate together (see above); null: this process alone.
  dist::Group* group = nullptr;
};

// ---- any autoencoder ---------------------------------------------------------------------------
struct ReconstructionError {
  double squared_error = 0;  // 1/N sum_n ||x_n - decode(encode(x_n))||^2 (per example)
  double mse = 0;            // the same per element: squared_error / D
  double nll = 0;            // 1/N sum_n -log p(x_n | encode(x_n)), the model's likelihood (nats)
};
// Reconstructions through the deterministic code (the posterior mean for a VAE).
ReconstructionError reconstruction_error(Autoencoder& model, const Tensor& x,
                                         const EvalOptions& options = {});

// ---- VAE (and IWAE, beta-VAE) ------------------------------------------------------------------
struct ElboResult {
  double elbo = 0;   // -(recon + kl): the evidence lower bound per example (nats)
  double recon = 0;  // E_q[-log p(x|z)], estimated with `samples` draws per example
  double kl = 0;     // KL(q(z|x) || p(z)) in closed form
};
// The ELBO itself: beta = 1, no warm-up, no free bits, whatever the model was trained with.
ElboResult elbo(VAE& vae, const Tensor& x, std::int64_t samples = 1,
                const EvalOptions& options = {});

struct LogLikelihoodOptions {
  std::int64_t k = 5000;     // importance samples per example (>= 1)
  std::int64_t chunk = 500;  // samples evaluated at once (>= 1; memory ~ batch * chunk rows)
  std::int64_t batch = 20;   // examples per step
  std::uint64_t seed = 0;
  dist::Group* group = nullptr;  // shared by these processes (log_likelihood only); null: alone
};
// log p(x) ~ log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x): the k-sample IWAE bound
// (a lower bound in expectation that tightens as k grows), averaged over the examples. The k
// samples are taken `chunk` at a time and merged with a running log-sum-exp, so memory does not
// grow with k. Sample i of every example is the same whatever the chunk size, so the result does
// not depend on `chunk`.
double log_likelihood(VAE& vae, const Tensor& x, const LogLikelihoodOptions& options = {});
// The same per example [N] (float64, CPU).
Tensor log_likelihood_per_example(VAE& vae, const Tensor& x,
                                  const LogLikelihoodOptions& options = {});

// KL(q(z|x) || N(0, I)) of each latent dimension averaged over the data [Z] (float32, CPU); its
// sum is the mean total KL. Shared by the group's ranks like the sums above.
Tensor kl_per_dim(VAE& vae, const Tensor& x, const EvalOptions& options = {});

// ---- codes (any autoencoder; for a VAE the code is the posterior mean mu) -----------------------
struct ActiveUnits {
  std::int64_t count = 0;  // dimensions with variance > threshold
  Tensor variance;         // [Z] (float32, CPU): Var_x[mu_j(x)] over the data (population, 1/N)
};
// Active units (Burda et al. 2016): latent dimension j is active when the code mu_j = encode(x)_j
// varies across the data by more than `threshold` (>= 0).
ActiveUnits active_units(Autoencoder& model, const Tensor& x, double threshold = 0.01,
                         const EvalOptions& options = {});

// The codes encode(x) [N, Z] (float32, CPU): mu for a VAE.
Tensor export_mu(Autoencoder& model, const Tensor& x, const EvalOptions& options = {});
// The same, also written to a float32 .npy file (atomically); returns the tensor.
Tensor export_mu(Autoencoder& model, const Tensor& x, const std::string& npy_path,
                 const EvalOptions& options = {});

}  // namespace latent::models
