// The one place that chooses between the CPU and CUDA backends, plus the argument checks every op
// shares. An op runs its kernels through one function for both backends:
//
//   dispatch::run("exp", x, [&](auto t, auto be) {
//     using T = decltype(t);
//     dispatch::call(be, LATENT_KERNEL(unary_forward), y.data<T>(), x.data<T>(), op, n);
//   });
//
// run() calls fn(T{}, backend): on the CPU with T = float or double and a Cpu backend, on a GPU
// with T = float and a Cuda backend that holds the device's stream. call() invokes that backend's
// kernel, kernels::cpu::<name>(args..., stream) or kernels::cuda::<name>(args..., stream): the two
// take the same arguments, the stream last (ignored on the CPU). Every call is counted
// (kernel_counts()), on any device.
//
// Gradient clipping, whose norm is read back on the host, still passes two functions: a CPU one
// called with T{} and a CUDA one called with the stream (or dispatch::no_cuda, which makes a CUDA
// call throw naming the op); such a run() counts as one kernel call and cannot be recorded.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/tensor.h"

namespace latent::dispatch {

struct NoCuda {};
inline constexpr NoCuda no_cuda{};

// The backend an op's kernels run on, as run() hands it to the op.
struct Cpu {
  static constexpr bool is_cuda = false;
  kernels::Stream stream = nullptr;
};
struct Cuda {
  static constexpr bool is_cuda = true;
  kernels::Stream stream = nullptr;
};

// A kernel family's entry point on both backends (made by LATENT_KERNEL / LATENT_GEMM_KERNEL).
template <class Fn>
struct Kernel {
  const char* name;
  int gemms;  // GEMMs one call performs (for the counts)
  Fn fn;
};
// Spelled out for compilers without C++20's aggregate deduction (clang before 17).
template <class Fn>
Kernel(const char*, int, Fn) -> Kernel<Fn>;

// ---- record once, replay many ------------------------------------------------------------------
// A Plan holds the kernel calls of a region of code with fixed shapes, to be made again on the
// same memory (DESIGN.md section 5). Every storage allocated while recording is kept alive by the
// plan, so that the pointers stay valid, and replay() makes the same calls again: what the
// region's kernels read (inputs written in place, parameters, state in memory) may change between
// replays; everything else is fixed at recording, so a value the host computed and passed to a
// kernel is replayed as it was. Memory that existed before recording and is used in the region
// (inputs, parameters) must outlive the plan.
//
// On the CPU every kernel call made through call() while recording runs as usual and is also kept
// with its arguments exactly as they were (pointers and values); replay() calls them again.
// On a GPU the device's stream is captured instead (CUDA stream capture): the kernels of the
// region are NOT run while recording, they become one CUDA graph, instantiated by
// Recorder::finish(), and replay() launches it (one launch for the whole region, no host work).
// Memory allocated while capturing is taken outside the stream-ordered pool (it lives as long as
// the plan) and frees asked for while capturing wait until the capture ends.
//
// Work that cannot be replayed throws latent::Error while recording, naming it: a copy between
// the host and a GPU, a value read on the host (item(), to_vector()), a kernel of another device
// than the one recorded.
class Plan {
 public:
  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  Plan(Plan&&) = default;
  // The plan's own graph goes first, before the memory it uses (its retained storages).
  Plan& operator=(Plan&& other) noexcept {
    if (this == &other) return *this;
    graph_.reset();
    calls_ = std::move(other.calls_);
    storages_ = std::move(other.storages_);
    size_ = other.size_;
    device_ = other.device_;
    graph_ = std::move(other.graph_);
    graph_kernels_ = std::move(other.graph_kernels_);
    return *this;
  }

  // Makes every recorded call again, in order (they are counted like any call), or launches the
  // recorded CUDA graph on its device's stream (counted as its kernel calls at recording).
  void replay() const;
  // Recorded kernel calls.
  std::size_t size() const { return size_; }
  // Whether the plan is a CUDA graph (recorded on a GPU).
  bool is_graph() const { return graph_ != nullptr; }
  // The device recorded.
  Device device() const { return device_; }

 private:
  friend class Recorder;
  friend void detail_record(std::function<void()> call);
  friend void detail_retain(std::shared_ptr<const void> storage);
  friend void detail_count_recorded(const char* name, int gemms);
  // Declared before graph_: destroyed after it.
  std::vector<std::function<void()>> calls_;
  std::vector<std::shared_ptr<const void>> storages_;
  std::size_t size_ = 0;
  Device device_;
  std::shared_ptr<void> graph_;  // the instantiated CUDA graph (backend::Graph)
  std::vector<std::pair<const char*, int>> graph_kernels_;  // for the counts at replay
};

// Records into `plan` while alive (one recorder per thread at a time; the plan is cleared first):
// the kernel calls made on `device`. On a GPU, finish() must be called at the end of the region
// (it ends the capture and instantiates the graph; without it, the capture is dropped and the plan
// stays empty). On the CPU finish() does nothing.
class Recorder {
 public:
  explicit Recorder(Plan& plan, Device device = Device::cpu());
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;
  void finish();

 private:
  Plan& plan_;
  bool finished_ = false;
};

// Whether a Recorder is alive on this thread; whether it is capturing a GPU's stream.
bool recording();
bool capturing();
// Throws latent::Error naming `what` when recording: for work that cannot be replayed.
void refuse_while_recording(const char* what);
// For a GPU kernel launch: refused while recording unless the recording captures that GPU.
void refuse_unless_captured(const char* what);
void detail_record(std::function<void()> call);
void detail_retain(std::shared_ptr<const void> storage);
void detail_count_recorded(const char* name, int gemms);
// For a CPU kernel: refused while capturing a GPU (it would not be in the graph).
void refuse_while_recording_gpu(const char* what);

// Kernel calls made on this thread (all devices) since it started. Take the difference of two
// readings to count a region, e.g. one training step.
struct KernelCounts {
  std::int64_t calls = 0;  // kernel calls, GEMMs included
  std::int64_t gemms = 0;  // GEMMs among them
};
KernelCounts kernel_counts();
namespace detail {
void count_kernel(const char* name, int gemms);
// count_kernel for a launch made outside call() (the multi-tensor optimizer kernels), also kept
// for the counts of a captured plan's replays.
void count_launch(const char* name, int gemms);
}  // namespace detail
// The names of the kernels called on this thread while alive, in order (one trace at a time per
// thread): what a step is made of, for tests and for tuning.
class KernelTrace {
 public:
  KernelTrace();
  ~KernelTrace();
  KernelTrace(const KernelTrace&) = delete;
  KernelTrace& operator=(const KernelTrace&) = delete;
  const std::vector<const char*>& names() const { return names_; }

 private:
  friend void detail::count_kernel(const char* name, int gemms);
  std::vector<const char*> names_;
};

// fn(0) on a GPU backend, 0 on the CPU (LATENT_SCRATCH). fn is generic so that the CUDA sizing
// function is not even referenced where no GPU backend is built.
template <class Backend, class Fn>
std::int64_t scratch_count(const Backend&, Fn&& fn) {
  if constexpr (Backend::is_cuda)
    return fn(0);
  else
    return 0;
}

// Calls `kernel` on backend `be` with `args` (the stream is appended) and counts the call.
template <class Backend, class Fn, class... Args>
void call(const Backend& be, const Kernel<Fn>& kernel, Args... args) {
  if (recording()) {
    if constexpr (Backend::is_cuda) {
      refuse_unless_captured(kernel.name);  // captured into the CUDA graph as it launches
      detail_count_recorded(kernel.name, kernel.gemms);
    } else {
      refuse_while_recording_gpu(kernel.name);
      detail_record([kernel, args...] {
        detail::count_kernel(kernel.name, kernel.gemms);
        kernel.fn(Cpu{}, args...);
      });
    }
  }
  // A captured call is counted at each launch of the graph (Plan::replay), not here: it runs then.
  if (!capturing()) detail::count_kernel(kernel.name, kernel.gemms);
  kernel.fn(be, args...);
}

// The one-function form (see the top of this file).
template <class Fn>
void run(const char* op, Device device, DType dtype, Fn&& fn) {
  if (device.is_cpu()) {
    if (dtype == DType::f32)
      fn(float{}, Cpu{});
    else
      fn(double{}, Cpu{});
    return;
  }
  check(dtype == DType::f32, op, "float64 tensors are CPU-only, got float64 on ", device.str());
#if LATENT_WITH_CUDA
  fn(float{}, Cuda{backend::stream(device)});
#else
  backend::check_device(device);    // throws: no CUDA backend in this build
#endif
}

template <class Fn>
void run(const char* op, const Tensor& like, Fn&& fn) {
  run(op, like.device(), like.dtype(), std::forward<Fn>(fn));
}

// The two-function form of the families not yet moved to one signature.
template <class CpuFn, class CudaFn>
void run(const char* op, Device device, DType dtype, CpuFn&& cpu, [[maybe_unused]] CudaFn&& cuda) {
  refuse_while_recording(op);  // its kernel calls are not kept one by one
  detail::count_kernel(op, 0);
  if (device.is_cpu()) {
    if (dtype == DType::f32)
      cpu(float{});
    else
      cpu(double{});
    return;
  }
  check(dtype == DType::f32, op, "float64 tensors are CPU-only, got float64 on ", device.str());
  if constexpr (std::is_same_v<std::decay_t<CudaFn>, NoCuda>) {
    throw Error(op, "has no CUDA kernel yet; run it on the CPU (tensor.to(Device::cpu()))");
  } else {
#if LATENT_WITH_CUDA
    cuda(backend::stream(device));
#else
    backend::check_device(device);  // throws: no CUDA backend in this build
#endif
  }
}

template <class CpuFn, class CudaFn>
void run(const char* op, const Tensor& like, CpuFn&& cpu, CudaFn&& cuda) {
  run(op, like.device(), like.dtype(), std::forward<CpuFn>(cpu), std::forward<CudaFn>(cuda));
}

// Device scratch for CUDA kernels that accumulate in double: `count` doubles from the device's
// stream-ordered pool, held as float32 storage (float64 tensors are CPU-only) and returned to the
// pool behind the queued kernels when the tensor goes. Undefined for count <= 0.
Tensor scratch_doubles(std::int64_t count, Device device);
// The scratch's memory as doubles; null for an undefined tensor.
double* as_doubles(const Tensor& scratch);

// Throws unless every tensor is defined.
void check_defined(const char* op, std::initializer_list<const Tensor*> ts);
// Throws unless every tensor is defined and all share one device and one dtype, naming them:
//   [add] devices differ: cpu vs cuda:0
void check_same(const char* op, std::initializer_list<const Tensor*> ts);
// Throws unless t has exactly `ndim` dimensions: "[matmul] a must be 2-D, got (3, 4, 5)".
void check_ndim(const char* op, const char* name, const Tensor& t, int ndim);

}  // namespace latent::dispatch

// The kernel family function `name` of both backends, for dispatch::call.
// clang-format off
#define LATENT_KERNEL_IMPL(name, gemms)                         \
  ::latent::dispatch::Kernel{#name, gemms,                      \
    [](const auto& be_, auto... args_) {                        \
      if constexpr (std::decay_t<decltype(be_)>::is_cuda)       \
        ::latent::kernels::cuda::name(args_..., be_.stream);    \
      else                                                      \
        ::latent::kernels::cpu::name(args_..., be_.stream);     \
    }}
// The scratch doubles kernel `name`'s sizing function asks for on backend `be` (0 on the CPU,
// whose kernels keep their partial sums in locals); pass it to dispatch::scratch_doubles.
#define LATENT_SCRATCH(be, name, ...)                                       \
  ::latent::dispatch::scratch_count(be, [&](auto) {                         \
    return static_cast<std::int64_t>(::latent::kernels::cuda::name(__VA_ARGS__)); })
// A kernel with a CPU entry point only (the per-tensor optimizer updates, whose GPU form takes
// a list of tensors): calling it on a GPU backend does not compile.
#define LATENT_CPU_KERNEL(name)                                                       \
  ::latent::dispatch::Kernel{#name, 0,                                                \
    [](const auto& be_, auto... args_) {                                              \
      static_assert(!std::decay_t<decltype(be_)>::is_cuda, #name " has no GPU form"); \
      ::latent::kernels::cpu::name(args_..., be_.stream);                             \
    }}
// clang-format on
#define LATENT_KERNEL(name) LATENT_KERNEL_IMPL(name, 0)
// A kernel that performs one GEMM (counted apart: kernel_counts().gemms).
#define LATENT_GEMM_KERNEL(name) LATENT_KERNEL_IMPL(name, 1)
