#include "models/model.h"

namespace latent::models {

Tensor Loss::term(const std::string& name) const {
  std::string known;
  for (const auto& [n, t] : terms) {
    if (n == name) return t;
    known += (known.empty() ? "" : ", ") + n;
  }
  throw Error("loss", "no term '" + name + "' (terms: " + known + ")");
}

std::vector<std::pair<std::string, double>> Loss::values() const {
  std::vector<std::pair<std::string, double>> v;
  v.emplace_back("total", total.item());
  for (const auto& [n, t] : terms) v.emplace_back(n, t.item());
  return v;
}

void Autoencoder::check_input(const Tensor& x, const char* what) const {
  check(x.defined(), name(), what, ": undefined input");
  check(x.ndim() == 2 && x.dim(1) == input_dim(), name(), what, ": expected input [N, ",
        input_dim(), "], got ", x.shape().str());
}

}  // namespace latent::models
