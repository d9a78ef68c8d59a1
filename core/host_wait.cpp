#include "core/host_wait.h"

#include <atomic>
#include <chrono>
#include <thread>

namespace latent {
namespace {

std::atomic<std::thread::id> g_watched{};
std::atomic<std::uint64_t> g_serial{0};  // of the wait under way; 0: none
std::atomic<std::uint64_t> g_next{0};
std::atomic<std::int64_t> g_since_ns{0};
std::atomic<const char*> g_what{nullptr};
std::atomic<std::int64_t> g_count{-1};
std::atomic<bool> g_collective{true};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HostWait::HostWait(const char* what, std::int64_t count, bool collective) noexcept {
  if (g_watched.load(std::memory_order_relaxed) != std::this_thread::get_id()) return;
  recorded_ = true;
  // A seqlock's writer: a reader sees no wait while the fields change.
  g_serial.store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  g_since_ns.store(now_ns(), std::memory_order_relaxed);
  g_what.store(what, std::memory_order_relaxed);
  g_count.store(count, std::memory_order_relaxed);
  g_collective.store(collective, std::memory_order_relaxed);
  g_serial.store(g_next.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
}

HostWait::~HostWait() {
  if (recorded_) g_serial.store(0, std::memory_order_release);
}

HostWaitSeen host_wait_seen() {
  HostWaitSeen s;
  const std::uint64_t serial = g_serial.load(std::memory_order_acquire);
  if (serial == 0) return s;
  s.seconds = static_cast<double>(now_ns() - g_since_ns.load(std::memory_order_relaxed)) * 1e-9;
  s.what = g_what.load(std::memory_order_relaxed);
  s.count = g_count.load(std::memory_order_relaxed);
  s.collective = g_collective.load(std::memory_order_relaxed);
  // The fields belong to this wait only when it is still the one under way.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (g_serial.load(std::memory_order_relaxed) != serial) return {};
  s.serial = serial;
  return s;
}

void watch_host_waits_of_this_thread() {
  g_watched.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

}  // namespace latent
