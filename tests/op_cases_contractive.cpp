#include "op_cases.h"

namespace latent::testing {

std::vector<OpCase> contractive_cases() {
  return {};
}

}  // namespace latent::testing
