// Uses the installed package: a tiny dense layer, its gradient, one optimizer step.
#include <cstdio>

#include "core/latent.h"

int main() {
  using namespace latent;
  Generator gen(7);
  Tensor x = Tensor::randn({4, 3}, gen);
  Tensor w = Tensor::randn({2, 3}, gen, {.requires_grad = true});
  Tensor b = Tensor::zeros({2}, {.requires_grad = true});
  Tensor loss = mean(square(dense(x, w, b, {Act::tanh, 0.0f})));
  loss.backward();
  if (!w.grad().defined() || !b.grad().defined()) return 1;
  std::printf("consumer ok: loss %.6f\n", loss.item());
  return 0;
}
