// The cuBLAS and cuBLASLt handles of a CUDA device, shared by every GEMM the engine runs there.
// Include only from .cu files (it pulls in the cuBLAS headers).
//
// Per device there is one cuBLAS handle, one cuBLASLt handle and one workspace (32 MiB of plain
// cudaMalloc memory, valid on every stream and never a node of a captured graph) that both use.
// They are created on first use, under a lock, and live as long as the process: destroying them
// from a static destructor could run after the CUDA driver has shut down. A BlasLease binds them to
// the caller's stream for one call and holds the device's lock meanwhile, so two host threads never
// rebind a handle the other is using.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include <cstddef>
#include <mutex>

#include "kernels/common.h"

namespace latent::kernels::cuda {

struct DeviceBlas;

class BlasLease {
 public:
  // The handles of the current device (cudaGetDevice), bound to `stream`, with the workspace set.
  explicit BlasLease(Stream stream);
  BlasLease(const BlasLease&) = delete;
  BlasLease& operator=(const BlasLease&) = delete;

  cublasHandle_t blas() const;
  cublasLtHandle_t lt() const;
  void* workspace() const;
  std::size_t workspace_bytes() const;
  int device() const { return device_; }

 private:
  DeviceBlas* blas_ = nullptr;
  int device_ = 0;
  std::unique_lock<std::mutex> lock_;
};

}  // namespace latent::kernels::cuda
