#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> shape_cases() {
  return {};
}

}  // namespace latent::testing
