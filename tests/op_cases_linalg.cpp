#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> linalg_cases() {
  return {};
}

}  // namespace latent::testing
