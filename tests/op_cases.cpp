#include "op_cases.h"

#include "kernels/philox.h"

namespace latent::testing {

const std::vector<OpCase>& op_cases() {
  static const std::vector<OpCase> all = [] {
    std::vector<OpCase> v;
    for (auto family : {elementwise_cases, activation_cases, reduce_cases, linalg_cases,
                        shape_cases, loss_cases, vae_cases, contractive_cases, sparsity_cases}) {
      auto cases = family();
      v.insert(v.end(), cases.begin(), cases.end());
    }
    return v;
  }();
  return all;
}

std::vector<Tensor> make_inputs(const OpCase& c, std::int64_t n, DType dtype, Device device,
                                std::uint64_t seed, bool with_grad) {
  std::vector<Tensor> out;
  std::uint64_t offset = 0;
  for (const InputSpec& s : c.inputs(n)) {
    const std::int64_t count = s.shape.numel();
    std::vector<double> values(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) {
      const double u = kernels::philox::uniform_at(seed, offset, static_cast<std::uint64_t>(i));
      values[static_cast<std::size_t>(i)] = s.make ? s.make(i, u) : s.lo + (s.hi - s.lo) * u;
    }
    offset += kernels::philox::blocks_for(static_cast<std::uint64_t>(count)) + 1;
    Tensor t = Tensor::from_data(std::span<const double>(values), s.shape,
                                 {.dtype = dtype, .device = device});
    if (with_grad && s.grad) t.requires_grad_(true);
    out.push_back(t);
  }
  return out;
}

}  // namespace latent::testing
