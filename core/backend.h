// The device runtime behind tensors: allocation, copies, streams. CPU memory is 64-byte aligned;
// CUDA memory comes from a stream-ordered pool (cudaMallocAsync on the device's default memory
// pool with a release threshold high enough that freed blocks are reused, never returned to the
// driver inside a training step). Every device has exactly one stream, and all of its work goes
// there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"
#include "kernels/common.h"

namespace latent::backend {

// Allocates `bytes` on `device`. Out of GPU memory throws latent::Error with the bytes requested,
// free and total.
void* allocate(std::size_t bytes, Device device);
// Allocations made so far by allocate(), on any device and thread: a test takes the difference
// around a region (a replayed training step allocates nothing).
std::uint64_t allocation_count();
void deallocate(void* ptr, Device device) noexcept;

// Copies bytes between any two devices, ordered on the CUDA stream(s) involved. A copy to the
// host waits for it to finish. A copy between two GPUs runs on the destination's stream after the
// source's pending work, and the source's stream waits for it, so freeing the source right after
// is safe; the host does not wait. A copy from the host (up to 64 MiB) goes through pinned staging
// buffers and returns without waiting for the device: the caller may reuse `src` at once, and a
// training step's batch upload does not synchronize the host.
void copy(void* dst, Device dst_device, const void* src, Device src_device, std::size_t bytes);

// The one stream of a CUDA device (throws for the CPU or without the backend).
kernels::Stream stream(Device device);

// Waits for all work queued on the device.
void synchronize(Device device);

// CUDA stream capture of the device's stream (dispatch::Recorder). Between begin_capture and
// end_capture nothing queued on the stream runs; allocate() takes memory outside the pool
// (cudaMalloc, released by cudaFree when deallocated: it belongs to the graph's plan) and
// deallocate() defers stream-ordered frees until the capture ends. end_capture(keep = true)
// instantiates the graph and returns it (destroyed with the last reference); keep = false drops
// it (after an error in the region) and returns null. Throws latent::Error naming the CUDA error.
void begin_capture(Device device);
std::shared_ptr<void> end_capture(Device device, bool keep);
// Launches an instantiated graph on the device's stream (no host synchronization).
void launch_graph(void* graph, Device device);

// A read of up to 64 bytes of device memory that does not wait: the copy to pinned host memory is
// queued on the device's stream behind the work already there, with an event after it. ready()
// asks whether it has landed, value() waits for it. On the CPU the bytes are copied at once.
// Slots (pinned memory and event) are reused across reads.
class ReadBack {
 public:
  static constexpr std::size_t kMaxBytes = 64;
  ReadBack(const void* src, Device device, std::size_t bytes);
  ~ReadBack();
  ReadBack(ReadBack&& other) noexcept;
  ReadBack& operator=(ReadBack&& other) noexcept;
  ReadBack(const ReadBack&) = delete;
  ReadBack& operator=(const ReadBack&) = delete;

  bool ready() const;
  // The bytes read (waits for the copy first).
  const void* value();

 private:
  void* slot_ = nullptr;  // the pinned slot (GPU), null on the CPU
  unsigned char local_[kMaxBytes] = {};
  std::size_t bytes_ = 0;
};

// Checks that `device` is usable (a CUDA index that exists); throws latent::Error otherwise.
void check_device(Device device);

}  // namespace latent::backend
