#include "core/dispatch.h"

namespace latent::dispatch {

namespace {
thread_local KernelCounts g_counts;
thread_local Plan* g_recording = nullptr;
thread_local KernelTrace* g_trace = nullptr;
}  // namespace

Recorder::Recorder(Plan& plan) {
  check(g_recording == nullptr, "record", "a recording is already under way on this thread");
  plan = Plan();
  g_recording = &plan;
}

Recorder::~Recorder() {
  g_recording = nullptr;
}

bool recording() {
  return g_recording != nullptr;
}

void refuse_while_recording(const char* what) {
  if (g_recording)
    throw Error("record",
                ::latent::detail::cat("'", what,
                                      "' cannot be replayed: it has no place in a recorded step "
                                      "(see dispatch::Plan)"));
}

void detail_record(std::function<void()> call) {
  g_recording->calls_.push_back(std::move(call));
}

void detail_retain(std::shared_ptr<const void> storage) {
  if (g_recording) g_recording->storages_.push_back(std::move(storage));
}

void Plan::replay() const {
  check(g_recording == nullptr, "record", "a plan cannot be replayed while recording");
  for (const auto& c : calls_) c();
}

KernelCounts kernel_counts() {
  return g_counts;
}

void detail::count_kernel(const char* name, int gemms) {
  ++g_counts.calls;
  g_counts.gemms += gemms;
  if (g_trace) g_trace->names_.push_back(name);
}

KernelTrace::KernelTrace() {
  check(g_trace == nullptr, "kernel trace", "a trace is already under way on this thread");
  g_trace = this;
}

KernelTrace::~KernelTrace() {
  g_trace = nullptr;
}

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
