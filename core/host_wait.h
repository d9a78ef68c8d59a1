// What the watched thread (a Session's, in main) is waiting for, and since when: a collective
// across processes, or a GPU's queued work, which may hold one. dist's watchdog reads it to end a
// job whose ranks have waited too long for one another (core/dist/dist.h, LATENT_DIST_TIMEOUT).
// Waits on other threads are not recorded.
//
//   { HostWait wait("in an all-reduce", n);  MPI_Allreduce(...); }
#pragma once

#include <cstdint>

namespace latent {

class HostWait {
 public:
  // `what` is a static text that follows "waited 60 s " ("in an all-reduce", "for the GPU's
  // queued work"); `count` the values involved (-1: none to tell); `collective`: a call every rank
  // must join (not a wait for a device).
  explicit HostWait(const char* what, std::int64_t count = -1, bool collective = true) noexcept;
  ~HostWait();
  HostWait(const HostWait&) = delete;
  HostWait& operator=(const HostWait&) = delete;

 private:
  bool recorded_ = false;
};

// The wait under way on the watched thread: `serial` tells one wait from the next (0: none).
struct HostWaitSeen {
  std::uint64_t serial = 0;
  double seconds = 0;  // since it began
  const char* what = nullptr;
  std::int64_t count = -1;
  bool collective = true;
};
HostWaitSeen host_wait_seen();

// Makes the calling thread the watched one (until another takes its place).
void watch_host_waits_of_this_thread();

}  // namespace latent
