// Devices and element types.
#pragma once

#include <cstddef>
#include <string>

namespace latent {

enum class DType { f32, f64 };

inline std::size_t dtype_size(DType t) {
  return t == DType::f32 ? 4 : 8;
}
inline const char* dtype_name(DType t) {
  return t == DType::f32 ? "float32" : "float64";
}

enum class DeviceType { cpu, cuda };

// A place tensors live: the CPU, or one CUDA GPU by index.
class Device {
 public:
  constexpr Device() = default;
  constexpr Device(DeviceType type, int index = 0) : type_(type), index_(index) {}

  static constexpr Device cpu() { return Device(DeviceType::cpu, 0); }
  // CUDA device `index`. Throws latent::Error when the build has no CUDA backend or no such GPU.
  static Device cuda(int index = 0);
  // CUDA:0 when a GPU is usable, else the CPU (printing a one-line notice to stderr once).
  static Device best();
  // Parses "cpu", "cuda", "cuda:1".
  static Device parse(const std::string& text);

  DeviceType type() const { return type_; }
  int index() const { return index_; }
  bool is_cpu() const { return type_ == DeviceType::cpu; }
  bool is_cuda() const { return type_ == DeviceType::cuda; }
  std::string str() const;

  friend bool operator==(const Device&, const Device&) = default;

 private:
  DeviceType type_ = DeviceType::cpu;
  int index_ = 0;
};

// True when this build has the CUDA backend compiled in.
bool cuda_compiled();
// Number of usable CUDA GPUs (0 without the backend or without a driver/GPU). Never throws.
int cuda_device_count();
// True when at least one GPU is usable.
inline bool cuda_available() {
  return cuda_device_count() > 0;
}
// The PCI bus id of GPU `index` (domain:bus:device.function): which physical GPU it is, whatever
// number CUDA_VISIBLE_DEVICES gives it in this process. Throws latent::Error for a GPU that is not
// there.
std::string cuda_bus_id(int index);

}  // namespace latent
