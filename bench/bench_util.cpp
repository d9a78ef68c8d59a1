#include "bench_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/backend.h"
#include "core/error.h"

#if LATENT_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#endif

#include "latent_commit.h"  // generated at every build (bench/commit.cmake)

namespace latent::bench {

const char* commit() {
  return LATENT_COMMIT;
}

// ---- JSON --------------------------------------------------------------------------------------

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

void JsonLine::key(const std::string& k) {
  if (!body_.empty()) body_ += ',';
  body_ += '"' + json_escape(k) + "\":";
}

JsonLine& JsonLine::str(const std::string& k, const std::string& value) {
  key(k);
  body_ += '"' + json_escape(value) + '"';
  return *this;
}

JsonLine& JsonLine::num(const std::string& k, double value, int decimals) {
  if (!std::isfinite(value)) return null(k);
  key(k);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  body_ += buf;
  return *this;
}

JsonLine& JsonLine::integer(const std::string& k, std::int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::boolean(const std::string& k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::num_or_null(const std::string& k, std::optional<double> value, int decimals) {
  return value ? num(k, *value, decimals) : null(k);
}

JsonLine& JsonLine::null(const std::string& k) {
  key(k);
  body_ += "null";
  return *this;
}

void JsonLine::print() const {
  std::fputs((text() + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// ---- host --------------------------------------------------------------------------------------

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(colon + 1);
        name.erase(0, name.find_first_not_of(" \t"));
        return name;
      }
    }
  }
  return "unknown";
}

int thread_count() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

namespace {

int iters_for(double one_call_ms, const TimingOptions& o) {
  if (!(one_call_ms > 0)) return o.max_iters;
  const double n = std::ceil(o.min_sample_ms / one_call_ms);
  return static_cast<int>(std::clamp(n, 1.0, static_cast<double>(std::max(o.max_iters, 1))));
}

Timing summarize(const std::vector<double>& per_call, int iters) {
  Timing t;
  t.median_ms = median(per_call);
  t.min_ms = per_call.empty() ? 0.0 : *std::min_element(per_call.begin(), per_call.end());
  t.iters = iters;
  t.runs = static_cast<int>(per_call.size());
  return t;
}

}  // namespace

Timing time_host(const std::function<void()>& fn, const TimingOptions& o) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };
  for (int i = 0; i < o.warmup; ++i) fn();
  auto t0 = Clock::now();
  fn();
  const int iters = iters_for(ms_since(t0), o);
  std::vector<double> per_call;
  for (int r = 0; r < o.runs; ++r) {
    t0 = Clock::now();
    for (int i = 0; i < iters; ++i) fn();
    per_call.push_back(ms_since(t0) / iters);
  }
  return summarize(per_call, iters);
}

// ---- GPU ---------------------------------------------------------------------------------------

#if LATENT_WITH_CUDA

GpuInfo gpu_info(int device) {
  backend::check_device(Device(DeviceType::cuda, device));
  GpuInfo g;
  cudaDeviceProp prop{};
  LATENT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  g.name = prop.name;
  g.major = prop.major;
  g.minor = prop.minor;
  // Clock rates left cudaDeviceProp in CUDA 13; the attributes remain (kHz, bits).
  int v = 0;
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device));
  g.sms = v;
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrClockRate, device));
  g.sm_clock_khz = v;
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, device));
  g.mem_clock_khz = v;
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrGlobalMemoryBusWidth, device));
  g.bus_width_bits = v;
  g.peak_gb_s = 2.0 * g.mem_clock_khz * 1e3 * (g.bus_width_bits / 8.0) / 1e9;
  const bool wide = g.major > 8 || (g.major == 8 && g.minor >= 6);
  const double lanes = wide ? 128.0 : 64.0;
  g.peak_fp32_tflops = g.sms * lanes * 2.0 * g.sm_clock_khz * 1e3 / 1e12;
  return g;
}

Timing time_cuda(Device device, const std::function<void()>& fn, const TimingOptions& o) {
  const cudaStream_t stream = backend::stream(device);
  cudaEvent_t start = nullptr, stop = nullptr;
  LATENT_CUDA_CHECK(cudaEventCreate(&start));
  LATENT_CUDA_CHECK(cudaEventCreate(&stop));
  // Events are released on every path, an exception from fn included.
  struct Events {
    cudaEvent_t a, b;
    ~Events() {
      cudaEventDestroy(a);
      cudaEventDestroy(b);
    }
  } guard{start, stop};
  auto sample = [&](int iters) {
    LATENT_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < iters; ++i) fn();
    LATENT_CUDA_CHECK(cudaEventRecord(stop, stream));
    LATENT_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    LATENT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return static_cast<double>(ms) / iters;
  };
  for (int i = 0; i < o.warmup; ++i) fn();
  backend::synchronize(device);
  const int iters = iters_for(sample(1), o);
  std::vector<double> per_call;
  for (int r = 0; r < o.runs; ++r) per_call.push_back(sample(iters));
  return summarize(per_call, iters);
}

#else

GpuInfo gpu_info(int device) {
  backend::check_device(Device(DeviceType::cuda, device));  // throws: no CUDA backend
  return {};
}

Timing time_cuda(Device device, const std::function<void()>&, const TimingOptions&) {
  backend::check_device(device);  // throws: no CUDA backend
  return {};
}

#endif

}  // namespace latent::bench
