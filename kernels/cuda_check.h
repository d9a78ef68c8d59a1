// Checks for every CUDA runtime, cuBLAS and cuRAND call and every kernel launch. A failure throws
// latent::Error naming the call, the file and the line. Include only from .cu files or from
// translation units compiled with LATENT_WITH_CUDA.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include "kernels/error.h"

namespace latent::kernels::detail {

[[noreturn]] void throw_cuda(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas(cublasStatus_t st, const char* call, const char* file, int line);
[[noreturn]] void throw_curand(curandStatus_t st, const char* call, const char* file, int line);

}  // namespace latent::kernels::detail

#define LATENT_CUDA_CHECK(call)                                                      \
  do {                                                                               \
    const cudaError_t latent_err_ = (call);                                          \
    if (latent_err_ != cudaSuccess)                                                  \
      ::latent::kernels::detail::throw_cuda(latent_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define LATENT_CUBLAS_CHECK(call)                                                     \
  do {                                                                                \
    const cublasStatus_t latent_st_ = (call);                                         \
    if (latent_st_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::latent::kernels::detail::throw_cublas(latent_st_, #call, __FILE__, __LINE__); \
  } while (0)

#define LATENT_CURAND_CHECK(call)                                                     \
  do {                                                                                \
    const curandStatus_t latent_st_ = (call);                                         \
    if (latent_st_ != CURAND_STATUS_SUCCESS)                                          \
      ::latent::kernels::detail::throw_curand(latent_st_, #call, __FILE__, __LINE__); \
  } while (0)

// After every <<<...>>> launch: catches bad configurations at the launch site.
#define LATENT_LAUNCH_CHECK(kernel_name) LATENT_CUDA_CHECK(cudaGetLastError())
