#include "kernels/cuda_check.h"

#include <string>

namespace latent::kernels::detail {

static std::string where(const char* call, const char* file, int line) {
  return std::string(call) + " at " + file + ":" + std::to_string(line);
}

void throw_cuda(cudaError_t err, const char* call, const char* file, int line) {
  throw Error("cuda", std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) +
                          ") from " + where(call, file, line));
}

void throw_cublas(cublasStatus_t st, const char* call, const char* file, int line) {
  throw Error("cublas", std::string(cublasGetStatusName(st)) + " (" + cublasGetStatusString(st) +
                            ") from " + where(call, file, line));
}

void throw_curand(curandStatus_t st, const char* call, const char* file, int line) {
  throw Error("curand", "status " + std::to_string(static_cast<int>(st)) + " from " +
                            where(call, file, line));
}

}  // namespace latent::kernels::detail
