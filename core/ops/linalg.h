// Matrix products and the fused dense layer, differentiable.
#pragma once

#include <vector>

#include "core/tensor.h"
#include "kernels/common.h"

namespace latent {

// op(a) @ op(b) for 2-D a, b, where op transposes when the flag is set (no copy: a GEMM flag).
//   a [M, K] (or [K, M] with trans_a), b [K, N] (or [N, K] with trans_b) -> [M, N]
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);

// The fused dense layer y = act(x W^T + b).
//   x [N, D], w [H, D] (PyTorch's Linear layout), b [H] or undefined (no bias) -> y [N, H]
// Forward: one GEMM plus one fused bias+activation pass. Backward: one fused pass computes
// dpre = dy * act'(pre) and reduces db from it, then two GEMMs give dx and dw.
Tensor dense(const Tensor& x, const Tensor& w, const Tensor& b,
             kernels::ActParams act = {kernels::Act::identity, 0.0f});

// A stack of fused dense layers as one op: h_0 = x, h_{l+1} = act_l(h_l W_l^T + b_l).
struct DenseLayer {
  Tensor w;  // [H_l, D_l], D_0 = x's width, D_{l+1} = H_l
  Tensor b;  // [H_l] or undefined
  kernels::ActParams act;
};
// Forward: one dense_forward kernel per layer (GEMM, bias, activation). Backward: two GEMMs per
// layer and nothing between them: the GEMM that makes the gradient of a layer's input also
// applies the previous layer's act' and reduces its bias gradient (kernels/dense.h), and the
// GEMM of the weight gradient reduces the bias gradient where no one did (the last layer). Only
// a last layer with an activation needs one more pass. Same values as chaining dense().
Tensor mlp(const Tensor& x, const std::vector<DenseLayer>& layers);

// TF32 tensor cores for the float32 GEMMs of matmul and dense on CUDA devices, process-wide, from
// the next op on. Off by default: GPU products are full float32, within float rounding of the
// CPU. On: inputs rounded to TF32's 10 mantissa bits (relative error about 1e-3), several times
// faster for large GEMMs on Ampere and later. The CPU path ignores it.
void set_tf32(bool enabled);
bool tf32_enabled();

}  // namespace latent
