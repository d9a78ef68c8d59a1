// Sparsity penalties on a code h [N, H].
#pragma once

#include "core/ops/loss.h"
#include "core/tensor.h"

namespace latent {

// L1: sum_j |h_nj| per sample, reduced as the Reduction says (h [N, ...]; the same rules as the
// losses in core/ops/loss.h). Gradient sign(h) (0 at 0).
Tensor l1_penalty(const Tensor& h, Reduction reduction = Reduction::batch_mean);

// sum_j KL(rho || rho_hat_j) with rho_hat_j = mean_n h_nj, the average activation of unit j over
// the batch (h in (0, 1), e.g. a sigmoid code):
//   rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat)).
// rho in (0, 1); rho_hat is clamped to [1e-6, 1 - 1e-6] (zero gradient where clamped). -> ()
// h must be 2-D with N > 0, rho in (0, 1) (representable as such in h's dtype); anything else
// throws latent::Error.
Tensor kl_sparsity(const Tensor& h, double rho);

}  // namespace latent
