#include "core/ops/reduction.h"

#include "core/ops/elementwise.h"
#include "core/ops/reduce.h"

namespace latent::detail {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none:
      return "none";
    case Reduction::sum:
      return "sum";
    case Reduction::batch_mean:
      return "batch_mean";
    case Reduction::mean:
      return "mean";
  }
  return "?";
}

ReduceSpec reduce_spec(const char* op, Reduction r, std::int64_t n, std::int64_t count,
                       const Shape& shape) {
  switch (r) {
    case Reduction::none:
      return {true, 1.0, Shape{n}, 1};
    case Reduction::sum:
      return {false, 1.0, Shape{}, 0};
    case Reduction::batch_mean:
      check(n > 0, op, "cannot average over an empty batch (reduction batch_mean): ", shape.str());
      return {false, 1.0 / static_cast<double>(n), Shape{}, 0};
    case Reduction::mean:
      check(count > 0, op,
            "the mean over zero elements is undefined (reduction mean): ", shape.str());
      return {false, 1.0 / static_cast<double>(count), Shape{}, 0};
  }
  throw Error(op, "unknown reduction");
}

Tensor reduce_per_sample(const char* op, const Tensor& per_sample, Reduction r,
                         std::int64_t count) {
  const ReduceSpec spec = reduce_spec(op, r, per_sample.dim(0), count, per_sample.shape());
  if (spec.per_sample) return per_sample;
  Tensor total = sum(per_sample);
  return spec.scale == 1.0 ? total : mul(total, spec.scale);
}

}  // namespace latent::detail
