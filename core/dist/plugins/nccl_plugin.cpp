// liblatent_nccl.so: core/dist's collectives on GPUs through NCCL (core/dist/plugin_abi.h).
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>

#include "core/dist/plugin_abi.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "latent needs NCCL 2.10 or later (ncclAvg)"
#endif

namespace {

int check(ncclResult_t rc, const char* call, char* err, std::size_t err_len) {
  if (rc == ncclSuccess) return 0;
  std::snprintf(err, err_len, "%s failed: %s", call, ncclGetErrorString(rc));
  return 1;
}

ncclRedOp_t op_of(int op) {
  switch (op) {
    case LATENT_DIST_MEAN:
      return ncclAvg;
    case LATENT_DIST_MIN:
      return ncclMin;
    case LATENT_DIST_MAX:
      return ncclMax;
    default:
      return ncclSum;
  }
}

int unique_id(void* id, char* err, std::size_t err_len) {
  return check(ncclGetUniqueId(static_cast<ncclUniqueId*>(id)), "ncclGetUniqueId", err, err_len);
}

int init_rank(void** comm, int size, const void* id, int rank, char* err, std::size_t err_len) {
  ncclComm_t c = nullptr;
  const int rc = check(ncclCommInitRank(&c, size, *static_cast<const ncclUniqueId*>(id), rank),
                       "ncclCommInitRank", err, err_len);
  if (rc == 0) *comm = c;
  return rc;
}

void destroy(void* comm) {
  if (comm) ncclCommDestroy(static_cast<ncclComm_t>(comm));
}

int all_reduce(void* comm, float* buf, std::size_t count, int op, void* stream, char* err,
               std::size_t err_len) {
  return check(ncclAllReduce(buf, buf, count, ncclFloat, op_of(op), static_cast<ncclComm_t>(comm),
                             static_cast<cudaStream_t>(stream)),
               "ncclAllReduce", err, err_len);
}

int broadcast(void* comm, float* buf, std::size_t count, int root, void* stream, char* err,
              std::size_t err_len) {
  return check(ncclBroadcast(buf, buf, count, ncclFloat, root, static_cast<ncclComm_t>(comm),
                             static_cast<cudaStream_t>(stream)),
               "ncclBroadcast", err, err_len);
}

const latent_nccl_api kApi{LATENT_DIST_PLUGIN_ABI,
                           static_cast<int>(sizeof(ncclUniqueId)),
                           unique_id,
                           init_rank,
                           destroy,
                           all_reduce,
                           broadcast};

}  // namespace

extern "C" __attribute__((visibility("default"))) const latent_nccl_api* latent_nccl_plugin(void) {
  return &kApi;
}
