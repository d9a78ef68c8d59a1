// The contractive autoencoder's penalty ||df/dx||_F^2 of the encoder f, per sample.
//
// Reductions (core/ops/loss.h): none -> [N] per-sample penalties; sum; batch_mean (sum / N);
// mean -> the mean squared Jacobian entry, sum / (N * entries of one sample's Jacobian), i.e.
// / (N*H*D) for contractive_penalty and / (N*Z*D) for jacobian_penalty.
// Errors (latent::Error): undefined tensors, mixed devices or dtypes, non-2-D inputs, shapes that
// do not chain (naming the layer index for jacobian_penalty), and CUDA tensors until the family
// has CUDA kernels.
#pragma once

#include <vector>

#include "core/ops/loss.h"
#include "core/tensor.h"
#include "kernels/common.h"

namespace latent {

// One dense encoder layer h = act(pre), pre = x W^T + b, in closed form:
//   sum_j act'(pre_nj)^2 * ||W_j||^2        (W_j: row j of w)
// pre [N, H], w [H, D]. One fused kernel forward and backward (gradients for pre and w; the
// gradient w.r.t. pre uses act'').
Tensor contractive_penalty(const Tensor& pre, const Tensor& w, kernels::ActParams act,
                           Reduction reduction = Reduction::batch_mean);

// The exact penalty for an MLP encoder of L dense layers h_l = act_l(pre_l), pre_l = h_{l-1} W_l^T
// + b_l (h_0 = x), through the Jacobian chain J = D_L W_L ... D_1 W_1 with D_l =
// diag(act_l'(pre_l)), computed for the whole batch as GEMMs with N*Z rows. weights[l] is W_{l+1}
// [H_{l+1}, H_l], preacts[l] its pre-activation [N, H_{l+1}]. Differentiable w.r.t. weights and
// pre-activations: composed from activation_grad, jacobian_seed, scale_row_groups and matmul.
// The weights and pre-activations are separate inputs: the gradient through pre_l into the
// lower layers flows along the graph that computed pre_l.
Tensor jacobian_penalty(const std::vector<Tensor>& weights, const std::vector<Tensor>& preacts,
                        const std::vector<kernels::ActParams>& acts,
                        Reduction reduction = Reduction::batch_mean);

// The two building blocks of the chain, exposed for tests:
//   jacobian_seed(d [N, Z], w [Z, H]) -> [N*Z, H],  out[(n, z), h] = d[n, z] * w[z, h]
//   scale_row_groups(m [N*G, H], d [N, H]) -> [N*G, H],  out[(n, g), h] = m[(n, g), h] * d[n, h]
Tensor jacobian_seed(const Tensor& d, const Tensor& w);
Tensor scale_row_groups(const Tensor& m, const Tensor& d);

}  // namespace latent
