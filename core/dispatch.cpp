#include "core/dispatch.h"

namespace latent::dispatch {

Tensor scratch_doubles(std::int64_t count, Device device) {
  if (count <= 0) return Tensor();
  return Tensor::empty({2 * count}, {.dtype = DType::f32, .device = device});
}

double* as_doubles(const Tensor& scratch) {
  return scratch.defined() ? reinterpret_cast<double*>(scratch.data<float>()) : nullptr;
}

void check_defined(const char* op, std::initializer_list<const Tensor*> ts) {
  int i = 0;
  for (const Tensor* t : ts) {
    check(t->defined(), op, "input ", i, " is an undefined tensor");
    ++i;
  }
}

void check_same(const char* op, std::initializer_list<const Tensor*> ts) {
  check_defined(op, ts);
  const Tensor* first = *ts.begin();
  for (const Tensor* t : ts) {
    check(t->device() == first->device(), op, "devices differ: ", first->device().str(), " vs ",
          t->device().str());
    check(t->dtype() == first->dtype(), op, "dtypes differ: ", dtype_name(first->dtype()), " vs ",
          dtype_name(t->dtype()));
  }
}

void check_ndim(const char* op, const char* name, const Tensor& t, int ndim) {
  check(t.ndim() == ndim, op, name, " must be ", ndim, "-D, got ", t.shape().str());
}

}  // namespace latent::dispatch
