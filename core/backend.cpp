#include "core/backend.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/host_wait.h"

#if LATENT_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#endif

namespace latent {

bool cuda_compiled() {
  return LATENT_WITH_CUDA != 0;
}

int cuda_device_count() {
#if LATENT_WITH_CUDA
  static const int count = [] {
    int n = 0;
    // No driver or no GPU is an answer here, not an error.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
#else
  return 0;
#endif
}

std::string cuda_bus_id(int index) {
  check(index >= 0 && index < cuda_device_count(), "device", "no GPU cuda:", index, " (",
        cuda_device_count(), " visible)");
#if LATENT_WITH_CUDA
  char id[32] = {};
  LATENT_CUDA_CHECK(cudaDeviceGetPCIBusId(id, static_cast<int>(sizeof id), index));
  return id;
#else
  return "";
#endif
}

Device Device::cuda(int index) {
  Device d(DeviceType::cuda, index);
  backend::check_device(d);
  return d;
}

Device Device::best() {
  if (cuda_available()) return Device(DeviceType::cuda, 0);
  static std::once_flag notice;
  std::call_once(notice, [] {
    std::cerr << "latent: " << (cuda_compiled() ? "no CUDA GPU found" : "built without CUDA")
              << ", running on the CPU\n";
  });
  return Device::cpu();
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string idx = text.substr(5);
    char* end = nullptr;
    const long v = std::strtol(idx.c_str(), &end, 10);
    check(!idx.empty() && end && *end == '\0' && v >= 0 && v < 1024, "device",
          "bad device index in '", text, "'");
    return Device::cuda(static_cast<int>(v));
  }
  if (text == "best" || text == "auto") return Device::best();
  throw Error("device", "unknown device '" + text + "' (expected cpu, cuda, cuda:N or auto)");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index_);
}

namespace backend {

void check_device(Device device) {
  if (device.is_cpu()) return;
  check(cuda_compiled(), "device", "this build of latent has no CUDA backend (asked for ",
        device.str(), "); rebuild with the CUDA toolkit and LATENT_CUDA=ON");
  const int n = cuda_device_count();
  check(n > 0, "device", "asked for ", device.str(),
        " but no CUDA GPU is available (no device or no driver)");
  check(device.index() >= 0 && device.index() < n, "device", "asked for ", device.str(),
        " but only ", n, " CUDA GPU(s) exist");
}

#if LATENT_WITH_CUDA
namespace {

// The host waiting for a device's queued work, as dist's watchdog sees it (core/host_wait.h).
struct DeviceWait : HostWait {
  DeviceWait()
      : HostWait("for the GPU's queued work, whose collectives wait for every rank", -1,
                 /*collective=*/false) {}
};

// Host-to-device copies go through pinned staging slots so that cudaMemcpyAsync is truly
// asynchronous: from pageable memory the runtime synchronizes the stream before every copy, which
// would stall each training step on the batch upload. A slot is reused only after the event of
// its previous copy has completed, so the host waits only when the GPU is kSlots uploads behind.
struct StagingSlot {
  void* host = nullptr;  // pinned
  std::size_t bytes = 0;
  cudaEvent_t done = nullptr;
};
constexpr int kSlots = 4;
constexpr std::size_t kMaxStaged = std::size_t(64) << 20;  // larger uploads copy directly

struct DeviceState {
  cudaStream_t stream = nullptr;
  bool ready = false;
  // Stream capture under way (dispatch::Recorder): allocations bypass the pool, frees wait.
  bool capturing = false;
  std::vector<void*> deferred_frees;
  StagingSlot slots[kSlots];
  int next_slot = 0;
  std::mutex staging_mu;
};

// A call in a path that cannot throw (a free, a destructor): a failure is said on stderr and
// cleared, so that the next checked call does not report it as its own. Quiet while the CUDA
// runtime unloads at exit.
void soft_check(cudaError_t e, const char* call) noexcept {
  if (e == cudaSuccess) return;
  cudaGetLastError();
  if (e == cudaErrorCudartUnloading) return;
  std::fprintf(stderr, "latent: warning: %s failed: %s\n", call, cudaGetErrorString(e));
}

DeviceState& state(int index) {
  // Never destroyed: tensors that statics hold (a generator's counter on the GPU) are freed at
  // exit, after any static here would have gone.
  static auto* const states = new DeviceState[64];
  static auto* const mu = new std::mutex;
  check(index >= 0 && index < 64, "device", "CUDA device index out of range: ", index);
  std::lock_guard<std::mutex> lock(*mu);
  DeviceState& s = states[index];
  if (!s.ready) {
    LATENT_CUDA_CHECK(cudaSetDevice(index));
    // Keep freed blocks in the pool: without a release threshold the driver would return memory
    // at every synchronization and the next step would pay for cudaMalloc again.
    cudaMemPool_t pool;
    LATENT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, index));
    std::uint64_t threshold = UINT64_MAX;
    LATENT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    LATENT_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    s.ready = true;
  }
  return s;
}

}  // namespace
#endif

namespace {
std::atomic<std::uint64_t> g_allocations{0};
#if LATENT_WITH_CUDA
// Memory taken with cudaMalloc during a capture (released with cudaFree).
std::mutex g_direct_mu;
std::unordered_set<void*> g_direct;
#endif
}  // namespace

std::uint64_t allocation_count() {
  return g_allocations.load(std::memory_order_relaxed);
}

void* allocate(std::size_t bytes, Device device) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (bytes == 0) bytes = 1;
  if (device.is_cpu()) {
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    check(p != nullptr, "memory", "out of host memory allocating ", bytes, " bytes");
    return p;
  }
#if LATENT_WITH_CUDA
  check_device(device);
  DeviceState& s = state(device.index());
  LATENT_CUDA_CHECK(cudaSetDevice(device.index()));
  void* p = nullptr;
  // While the stream is captured, a stream-ordered allocation would become a node of the graph:
  // take plain device memory instead, owned by whoever recorded (the plan keeps it).
  const cudaError_t err =
      s.capturing ? cudaMalloc(&p, bytes) : cudaMallocAsync(&p, bytes, s.stream);
  if (err == cudaSuccess && s.capturing) {
    std::lock_guard<std::mutex> lock(g_direct_mu);
    g_direct.insert(p);
  }
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    soft_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    std::uint64_t reserved = 0, used = 0;
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, device.index()) == cudaSuccess) {
      soft_check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved),
                 "cudaMemPoolGetAttribute");
      soft_check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used),
                 "cudaMemPoolGetAttribute");
    }
    cudaGetLastError();
    throw Error("memory",
                detail::cat("out of GPU memory on ", device.str(), ": requested ", bytes, " bytes",
                            s.capturing ? " while recording a step" : "", "; ", free_b, " free of ",
                            total_b, " total, latent's pool holding ", reserved, " of which ", used,
                            " in use"));
  }
  LATENT_CUDA_CHECK(err);
  return p;
#else
  check_device(device);
  return nullptr;
#endif
}

void deallocate(void* ptr, Device device) noexcept {
  if (!ptr) return;
  if (device.is_cpu()) {
    std::free(ptr);
    return;
  }
#if LATENT_WITH_CUDA
  DeviceState* sp = nullptr;
  try {
    sp = &state(device.index());
  } catch (...) {
    return;  // no such device: nothing of it was allocated
  }
  DeviceState& s = *sp;
  if (s.capturing) {
    // Nothing may synchronize the device, nor free into the graph, while it is captured: every
    // free waits for the capture's end (end_capture).
    std::lock_guard<std::mutex> lock(g_direct_mu);
    s.deferred_frees.push_back(ptr);
    return;
  }
  // The current device is the caller's again afterwards (a tensor of another GPU freed in the
  // middle of an op must not move the op's own calls).
  int current = -1;
  soft_check(cudaGetDevice(&current), "cudaGetDevice");
  soft_check(cudaSetDevice(device.index()), "cudaSetDevice");
  bool direct = false;
  {
    std::lock_guard<std::mutex> lock(g_direct_mu);
    direct = g_direct.erase(ptr) > 0;
  }
  if (direct)
    soft_check(cudaFree(ptr), "cudaFree");  // waits for the device: a graph may still use it
  else  // stream-ordered: the block returns to the pool once the work queued before it is done
    soft_check(cudaFreeAsync(ptr, s.stream), "cudaFreeAsync");
  if (current >= 0 && current != device.index())
    soft_check(cudaSetDevice(current), "cudaSetDevice");
#endif
}

kernels::Stream stream(Device device) {
  check(device.is_cuda(), "device", "the CPU has no stream");
#if LATENT_WITH_CUDA
  check_device(device);
  DeviceState& s = state(device.index());
  LATENT_CUDA_CHECK(cudaSetDevice(device.index()));
  return s.stream;
#else
  check_device(device);
  return nullptr;
#endif
}

void begin_capture(Device device) {
#if LATENT_WITH_CUDA
  check_device(device);
  DeviceState& s = state(device.index());
  check(!s.capturing, "record", "a capture is already under way on ", device.str());
  LATENT_CUDA_CHECK(cudaSetDevice(device.index()));
  // What the captured step allocates is plain device memory (cudaMalloc), which cannot take the
  // blocks the pool keeps from earlier steps: the pool gives them back first, so that recording a
  // step needs the step's memory once, not twice.
  {
    DeviceWait wait;
    LATENT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  }
  cudaMemPool_t pool = nullptr;
  LATENT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device.index()));
  LATENT_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
  // Relaxed: cudaMalloc (above) is allowed while capturing.
  LATENT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeRelaxed));
  s.capturing = true;
#else
  check_device(device);
#endif
}

std::shared_ptr<void> end_capture(Device device, bool keep) {
#if LATENT_WITH_CUDA
  DeviceState& s = state(device.index());
  check(s.capturing, "record", "no capture under way on ", device.str());
  // The capture ends first, whatever fails after it: a stream left capturing would defer every
  // later free.
  soft_check(cudaSetDevice(device.index()), "cudaSetDevice");
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(s.stream, &graph);
  std::vector<void*> frees;
  {
    std::lock_guard<std::mutex> lock(g_direct_mu);
    s.capturing = false;
    frees.swap(s.deferred_frees);
  }
  // Memory released during the capture (its last tensor dropped then) may still be what a
  // captured kernel reads or writes: it goes back only when no replay of the graph can come.
  auto release = [device](const std::vector<void*>& ps) {
    for (void* p : ps) deallocate(p, device);
  };
  // Every failure below clears the runtime's last error, so that the eager step that follows a
  // failed capture does not find it at its first launch check.
  auto fail = [&](cudaError_t e, const char* what) {
    cudaGetLastError();
    throw Error("record", detail::cat(what, ": ", cudaGetErrorString(e)));
  };
  if (!keep || ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    release(frees);  // nothing captured will run
    if (!keep) {
      cudaGetLastError();  // an invalidated capture leaves its error behind
      return nullptr;
    }
    fail(ended, "ending the CUDA stream capture of the step");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (made != cudaSuccess) {
    release(frees);
    fail(made, "instantiating the captured CUDA graph");
  }
  std::shared_ptr<void> owned(exec, [release, frees](void* e) {
    soft_check(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(e)), "cudaGraphExecDestroy");
    release(frees);  // stream-ordered after every launch of the graph
  });
  const cudaError_t uploaded = cudaGraphUpload(exec, s.stream);
  if (uploaded != cudaSuccess) fail(uploaded, "uploading the captured CUDA graph");
  return owned;
#else
  (void)keep;
  check_device(device);
  return nullptr;
#endif
}

void launch_graph(void* graph, Device device) {
#if LATENT_WITH_CUDA
  LATENT_CUDA_CHECK(cudaSetDevice(device.index()));
  LATENT_CUDA_CHECK(
      cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), state(device.index()).stream));
#else
  (void)graph;
  check_device(device);
#endif
}

#if LATENT_WITH_CUDA
namespace {
struct ReadSlot {
  unsigned char* host = nullptr;  // pinned, ReadBack::kMaxBytes
  cudaEvent_t done = nullptr;     // of the slot's device: an event records on its own device only
  int device = 0;
};
std::mutex g_read_mu;
std::vector<ReadSlot*> g_free_reads;  // of every device

// A free slot of `device` (the current device is `device` on return).
ReadSlot* take_read_slot(int device) {
  LATENT_CUDA_CHECK(cudaSetDevice(device));
  {
    std::lock_guard<std::mutex> lock(g_read_mu);
    for (auto it = g_free_reads.rbegin(); it != g_free_reads.rend(); ++it) {
      if ((*it)->device != device) continue;
      ReadSlot* s = *it;
      g_free_reads.erase(std::next(it).base());
      return s;
    }
  }
  auto* s = new ReadSlot;
  s->device = device;
  LATENT_CUDA_CHECK(cudaMallocHost(&s->host, ReadBack::kMaxBytes));
  LATENT_CUDA_CHECK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming));
  return s;
}
}  // namespace
#endif

ReadBack::ReadBack(const void* src, Device device, std::size_t bytes) : bytes_(bytes) {
  check(bytes <= kMaxBytes, "read back", "at most ", kMaxBytes, " bytes, asked for ", bytes);
  if (device.is_cpu()) {
    std::memcpy(local_, src, bytes);
    return;
  }
#if LATENT_WITH_CUDA
  check(!state(device.index()).capturing, "record",
        "a read of device memory cannot be part of a captured step");
  auto* s = take_read_slot(device.index());
  slot_ = s;
  cudaStream_t stream = state(device.index()).stream;
  LATENT_CUDA_CHECK(cudaMemcpyAsync(s->host, src, bytes, cudaMemcpyDeviceToHost, stream));
  LATENT_CUDA_CHECK(cudaEventRecord(s->done, stream));
#else
  check_device(device);
#endif
}

ReadBack::~ReadBack() {
#if LATENT_WITH_CUDA
  if (slot_) {
    auto* s = static_cast<ReadSlot*>(slot_);
    DeviceWait wait;
    cudaEventSynchronize(s->done);  // the copy may still write into the slot
    std::lock_guard<std::mutex> lock(g_read_mu);
    g_free_reads.push_back(s);
  }
#endif
}

ReadBack::ReadBack(ReadBack&& other) noexcept : slot_(other.slot_), bytes_(other.bytes_) {
  std::memcpy(local_, other.local_, sizeof local_);
  other.slot_ = nullptr;
}

ReadBack& ReadBack::operator=(ReadBack&& other) noexcept {
  if (this != &other) {
    this->~ReadBack();
    slot_ = other.slot_;
    bytes_ = other.bytes_;
    std::memcpy(local_, other.local_, sizeof local_);
    other.slot_ = nullptr;
  }
  return *this;
}

bool ReadBack::ready() const {
#if LATENT_WITH_CUDA
  if (slot_) {
    const cudaError_t e = cudaEventQuery(static_cast<ReadSlot*>(slot_)->done);
    if (e == cudaErrorNotReady) {
      // The runtime keeps "not ready" as the thread's last error: cleared, or the next launch
      // check would report it as its own failure.
      cudaGetLastError();
      return false;
    }
    LATENT_CUDA_CHECK(e);
  }
#endif
  return true;
}

const void* ReadBack::value() {
#if LATENT_WITH_CUDA
  if (slot_) {
    auto* s = static_cast<ReadSlot*>(slot_);
    {
      DeviceWait wait;
      LATENT_CUDA_CHECK(cudaEventSynchronize(s->done));
    }
    std::memcpy(local_, s->host, bytes_);
    std::lock_guard<std::mutex> lock(g_read_mu);
    g_free_reads.push_back(s);
    slot_ = nullptr;
  }
#endif
  return local_;
}

void synchronize(Device device) {
  if (device.is_cpu()) return;
#if LATENT_WITH_CUDA
  DeviceWait wait;
  LATENT_CUDA_CHECK(cudaStreamSynchronize(state(device.index()).stream));
#endif
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if LATENT_WITH_CUDA
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    if (dst_device == src_device) {
      LATENT_CUDA_CHECK(cudaSetDevice(dst_device.index()));
      LATENT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice,
                                        state(dst_device.index()).stream));
    } else {
      // The copy runs on the destination's stream after the source's pending work (event 1), and
      // the source's stream waits for the copy (event 2): the source block is freed stream-ordered
      // on its own stream, so without the second edge the pool could hand it out again while the
      // copy still reads it. Neither edge blocks the host.
      cudaStream_t src_stream = state(src_device.index()).stream;
      cudaStream_t dst_stream = state(dst_device.index()).stream;
      cudaEvent_t src_ready = nullptr, copied = nullptr;
      LATENT_CUDA_CHECK(cudaSetDevice(src_device.index()));
      LATENT_CUDA_CHECK(cudaEventCreateWithFlags(&src_ready, cudaEventDisableTiming));
      LATENT_CUDA_CHECK(cudaEventRecord(src_ready, src_stream));
      LATENT_CUDA_CHECK(cudaSetDevice(dst_device.index()));
      LATENT_CUDA_CHECK(cudaStreamWaitEvent(dst_stream, src_ready, 0));
      LATENT_CUDA_CHECK(
          cudaMemcpyPeerAsync(dst, dst_device.index(), src, src_device.index(), bytes, dst_stream));
      LATENT_CUDA_CHECK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
      LATENT_CUDA_CHECK(cudaEventRecord(copied, dst_stream));
      LATENT_CUDA_CHECK(cudaSetDevice(src_device.index()));
      LATENT_CUDA_CHECK(cudaStreamWaitEvent(src_stream, copied, 0));
      // Destroying an event with work pending is allowed: its resources go once it completes.
      LATENT_CUDA_CHECK(cudaEventDestroy(src_ready));
      LATENT_CUDA_CHECK(cudaEventDestroy(copied));
    }
    return;
  }
  if (dst_device.is_cuda()) {
    LATENT_CUDA_CHECK(cudaSetDevice(dst_device.index()));
    DeviceState& st = state(dst_device.index());
    check(!st.capturing, "record", "a copy from the host to ", dst_device.str(),
          " cannot be part of a captured step");
    if (bytes > kMaxStaged) {
      // Pageable: the runtime stages the source itself and returns once the caller may reuse it.
      LATENT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, st.stream));
      return;
    }
    std::lock_guard<std::mutex> lock(st.staging_mu);
    StagingSlot& slot = st.slots[st.next_slot];
    st.next_slot = (st.next_slot + 1) % kSlots;
    if (slot.done) {  // its last copy is done
      DeviceWait wait;
      LATENT_CUDA_CHECK(cudaEventSynchronize(slot.done));
    }
    if (slot.bytes < bytes) {
      if (slot.host) LATENT_CUDA_CHECK(cudaFreeHost(slot.host));
      slot.host = nullptr;
      const std::size_t grown = std::max(bytes, std::size_t(1) << 20);
      LATENT_CUDA_CHECK(cudaMallocHost(&slot.host, grown));
      slot.bytes = grown;
    }
    if (!slot.done) LATENT_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    std::memcpy(slot.host, src, bytes);
    LATENT_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, bytes, cudaMemcpyHostToDevice, st.stream));
    LATENT_CUDA_CHECK(cudaEventRecord(slot.done, st.stream));
    return;
  }
  LATENT_CUDA_CHECK(cudaSetDevice(src_device.index()));
  check(!state(src_device.index()).capturing, "record", "a copy from ", src_device.str(),
        " to the host cannot be part of a captured step");
  LATENT_CUDA_CHECK(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, state(src_device.index()).stream));
  DeviceWait wait;
  LATENT_CUDA_CHECK(cudaStreamSynchronize(state(src_device.index()).stream));
#else
  check_device(dst_device.is_cuda() ? dst_device : src_device);
#endif
}

}  // namespace backend
}  // namespace latent
