// What a Reduction (core/ops/loss.h) means for a fused kernel, shared by every op that takes one
// (losses, KL, sparsity and contractive penalties), so they all agree:
//   none       -> [N] per-sample values, dout stride 1 in the backward
//   sum        -> (), scale 1 (0 for an empty batch)
//   batch_mean -> (), scale 1/N          (an empty batch throws: the mean of nothing)
//   mean       -> (), scale 1/count      (count = the elements averaged; zero throws)
#pragma once

#include <cstdint>

#include "core/ops/loss.h"

namespace latent::detail {

struct ReduceSpec {
  bool per_sample = false;  // write [N] per-sample values instead of one scalar
  double scale = 1.0;       // applied to the sum over samples (and to every gradient)
  Shape out;                // [N] or ()
  std::int64_t stride = 0;  // of dout in the backward: 1 per sample, 0 for a scalar
};

const char* reduction_name(Reduction r);

// `n` samples; `count` elements for Reduction::mean; `shape` names the input in errors.
ReduceSpec reduce_spec(const char* op, Reduction r, std::int64_t n, std::int64_t count,
                       const Shape& shape);

// The same reduction applied with ops to per-sample values [N] (for composite ops).
Tensor reduce_per_sample(const char* op, const Tensor& per_sample, Reduction r, std::int64_t count);

}  // namespace latent::detail
