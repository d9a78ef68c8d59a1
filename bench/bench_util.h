// What the benchmark binaries share: one JSON line per measurement, the commit they were built
// from, host and GPU descriptions with the GPU's theoretical peaks, and timers (the host clock, and
// CUDA events on a device's stream).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"

namespace latent::bench {

// The commit the benches were configured from (12 hex digits, or "unknown").
const char* commit();

// One JSON object on one line, keys in insertion order:
//   JsonLine().str("bench", "kernel").num("median_ms", 0.0123, 4).print();
class JsonLine {
 public:
  JsonLine& str(const std::string& key, const std::string& value);
  // `decimals` digits after the point (printf %.*f); NaN and infinities become null.
  JsonLine& num(const std::string& key, double value, int decimals = 4);
  // Integers exactly.
  JsonLine& integer(const std::string& key, std::int64_t value);
  JsonLine& boolean(const std::string& key, bool value);
  // A number, or null when absent.
  JsonLine& num_or_null(const std::string& key, std::optional<double> value, int decimals = 4);
  JsonLine& null(const std::string& key);

  std::string text() const { return "{" + body_ + "}"; }
  // Writes the line to stdout and flushes (a crash later keeps what was measured).
  void print() const;

 private:
  void key(const std::string& k);
  std::string body_;
};

// JSON string escaping of `s` (without the quotes).
std::string json_escape(const std::string& s);

// "model name" from /proc/cpuinfo ("unknown" elsewhere), and the OpenMP thread count (1 without).
std::string cpu_name();
int thread_count();

// The median of `values` (the upper middle one for an even count); 0 for none.
double median(std::vector<double> values);

// A GPU's name and theoretical peaks, from the runtime's device attributes:
//   memory bandwidth = 2 (double data rate) * memory clock * bus width / 8 bytes
//   FP32 peak        = SMs * FP32 lanes per SM * 2 (an FMA is two flops) * SM clock
// with 128 FP32 lanes per SM for compute capability 8.6 and later (sm_86, sm_89, sm_90: H100,
// H200) and 64 before (sm_70, sm_80). Clocks are the boost clocks the driver reports; sustained
// clocks under load are lower, so a fraction of peak near 1 is not reachable in practice.
struct GpuInfo {
  std::string name;
  int major = 0, minor = 0;
  int sms = 0;
  double sm_clock_khz = 0;
  double mem_clock_khz = 0;
  int bus_width_bits = 0;
  double peak_gb_s = 0;         // 1e9 bytes per second
  double peak_fp32_tflops = 0;  // 1e12 flops per second, without tensor cores
};
// Throws latent::Error without the CUDA backend or without such a GPU.
GpuInfo gpu_info(int device = 0);

// How a timer repeats the work.
struct TimingOptions {
  int warmup = 3;  // calls before anything is measured
  int runs = 21;   // measured samples; the median is reported
  // Calls per sample: enough back-to-back calls that a sample lasts about this long (at most
  // max_iters), so event resolution and launch jitter do not dominate small kernels.
  double min_sample_ms = 1.0;
  int max_iters = 1000;
};

struct Timing {
  double median_ms = 0;  // per call
  double min_ms = 0;     // per call, the fastest sample
  int iters = 1;         // calls per sample
  int runs = 0;          // samples
};

// Times fn() on the host clock (fn must finish its work before returning).
Timing time_host(const std::function<void()>& fn, const TimingOptions& options = {});

// Times fn() with CUDA events recorded on `device`'s one stream (core/backend.h), where every op
// of the engine queues its work. Each sample is `iters` back-to-back calls between two events,
// then one wait: per call, it is the device time of the calls' work plus any idle gap the host
// leaves between them (a call that launches faster than the GPU runs is measured by the GPU; one
// whose kernels are shorter than their launch cost is measured by the launches). Throws
// latent::Error without the CUDA backend.
Timing time_cuda(Device device, const std::function<void()>& fn, const TimingOptions& options = {});

}  // namespace latent::bench
