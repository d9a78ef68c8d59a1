#include "kernels/cublas_handle.h"
#include "kernels/cuda_check.h"

namespace latent::kernels::cuda {

// cuBLAS's recommended workspace for Hopper; smaller ones make some kernels unavailable.
constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
constexpr int kMaxDevices = 64;

struct DeviceBlas {
  std::mutex use;  // held by a BlasLease
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
};

namespace {

DeviceBlas& device_blas(int device) {
  static DeviceBlas devices[kMaxDevices];
  static std::mutex create;
  check(device >= 0 && device < kMaxDevices, "cublas", "CUDA device index out of range: ", device);
  std::lock_guard<std::mutex> lock(create);
  DeviceBlas& d = devices[device];
  if (d.blas == nullptr) {
    if (d.lt == nullptr) LATENT_CUBLAS_CHECK(cublasLtCreate(&d.lt));
    // Allocated once and kept, outside any stream's order (plain device memory: valid on every
    // stream, and not a node of a graph when the first GEMM of the device is being captured).
    if (d.workspace == nullptr) LATENT_CUDA_CHECK(cudaMalloc(&d.workspace, kWorkspaceBytes));
    cublasHandle_t h = nullptr;
    LATENT_CUBLAS_CHECK(cublasCreate(&h));
    d.blas = h;  // set last: a failure above leaves the rest to be retried
  }
  return d;
}

}  // namespace

BlasLease::BlasLease(Stream stream) {
  LATENT_CUDA_CHECK(cudaGetDevice(&device_));
  blas_ = &device_blas(device_);
  lock_ = std::unique_lock<std::mutex>(blas_->use);
  LATENT_CUBLAS_CHECK(cublasSetStream(blas_->blas, stream));
  // cublasSetStream resets the workspace to cuBLAS's own pool: set ours again after it.
  LATENT_CUBLAS_CHECK(cublasSetWorkspace(blas_->blas, blas_->workspace, kWorkspaceBytes));
}

cublasHandle_t BlasLease::blas() const {
  return blas_->blas;
}

cublasLtHandle_t BlasLease::lt() const {
  return blas_->lt;
}

void* BlasLease::workspace() const {
  return blas_->workspace;
}

std::size_t BlasLease::workspace_bytes() const {
  return kWorkspaceBytes;
}

}  // namespace latent::kernels::cuda
