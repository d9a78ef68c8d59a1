#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> sparsity_cases() {
  return {};
}

}  // namespace latent::testing
