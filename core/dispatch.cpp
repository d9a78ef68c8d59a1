#include "core/dispatch.h"

namespace latent::dispatch {

namespace {
thread_local KernelCounts g_counts;
thread_local Plan* g_recording = nullptr;
thread_local KernelTrace* g_trace = nullptr;
}  // namespace

Recorder::Recorder(Plan& plan, Device device) : plan_(plan) {
  check(g_recording == nullptr, "record", "a recording is already under way on this thread");
  plan = Plan();
  plan.device_ = device;
  if (device.is_cuda()) backend::begin_capture(device);
  g_recording = &plan;
}

Recorder::~Recorder() {
  g_recording = nullptr;
  if (plan_.device_.is_cuda() && !finished_) {
    // An exception left the region: drop the capture so the stream can be used again.
    try {
      backend::end_capture(plan_.device_, false);
    } catch (...) {
    }
    plan_ = Plan();
  }
}

void Recorder::finish() {
  if (finished_) return;
  finished_ = true;
  g_recording = nullptr;
  if (!plan_.device_.is_cuda()) return;
  try {
    plan_.graph_ = backend::end_capture(plan_.device_, true);
  } catch (...) {
    plan_ = Plan();
    throw;
  }
}

bool recording() {
  return g_recording != nullptr;
}

bool capturing() {
  return g_recording != nullptr && g_recording->device().is_cuda();
}

void refuse_while_recording(const char* what) {
  if (g_recording)
    throw Error("record",
                ::latent::detail::cat("'", what,
                                      "' cannot be replayed: it has no place in a recorded step "
                                      "(see dispatch::Plan)"));
}

void refuse_unless_captured(const char* what) {
  if (g_recording && !g_recording->device().is_cuda())
    throw Error("record", ::latent::detail::cat(
                              "'", what, "' runs on a GPU inside a step recorded on ",
                              g_recording->device().str(), ": it cannot be replayed there"));
}

void refuse_while_recording_gpu(const char* what) {
  if (g_recording && g_recording->device().is_cuda())
    throw Error("record", ::latent::detail::cat(
                              "'", what, "' runs on the CPU inside a step captured on ",
                              g_recording->device().str(), ": it would not be in the CUDA graph"));
}

void detail_record(std::function<void()> call) {
  g_recording->calls_.push_back(std::move(call));
  ++g_recording->size_;
}

void detail_retain(std::shared_ptr<const void> storage) {
  if (g_recording) g_recording->storages_.push_back(std::move(storage));
}

void detail_count_recorded(const char* name, int gemms) {
  g_recording->graph_kernels_.emplace_back(name, gemms);
  ++g_recording->size_;
}

void Plan::replay() const {
  check(g_recording == nullptr, "record", "a plan cannot be replayed while recording");
  if (device_.is_cuda()) {
    check(graph_ != nullptr, "record", "replay of a GPU plan that was never finished");
    for (const auto& [name, gemms] : graph_kernels_) detail::count_kernel(name, gemms);
    backend::launch_graph(graph_.get(), device_);
    return;
  }
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

void detail::count_launch(const char* name, int gemms) {
  if (g_recording && g_recording->device().is_cuda()) {
    detail_count_recorded(name, gemms);  // counted at each launch of the graph
    return;
  }
  count_kernel(name, gemms);
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
