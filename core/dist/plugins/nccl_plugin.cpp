// liblatent_nccl.so: core/dist's collectives on GPUs through NCCL (core/dist/plugin_abi.h).
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/dist/plugin_abi.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "latent needs NCCL 2.10 or later (ncclAvg)"
#endif

namespace {

// The file of the NCCL library loaded (null when the loader cannot say).
const char* nccl_file() {
  Dl_info info{};
  return dladdr(reinterpret_cast<void*>(&ncclGetVersion), &info) != 0 ? info.dli_fname : nullptr;
}

// ncclGetLastError (NCCL 2.13 and later), looked up in the library loaded so that an older one
// still loads; null when it has none.
using LastError = const char* (*)(ncclComm_t);
LastError last_error_fn() {
  static const LastError fn = [] {
    const char* file = nccl_file();
    void* lib = file ? dlopen(file, RTLD_LAZY | RTLD_NOLOAD) : nullptr;
    return lib ? reinterpret_cast<LastError>(dlsym(lib, "ncclGetLastError")) : LastError{nullptr};
  }();
  return fn;
}

// "<call> failed: <NCCL's error> (<its last message>)", and how to get more where neither says.
int check(ncclResult_t rc, const char* call, char* err, std::size_t err_len) {
  if (rc == ncclSuccess) return 0;
  const LastError last = last_error_fn();
  const char* detail = last ? last(nullptr) : nullptr;
  const bool has_detail = detail != nullptr && detail[0] != '\0';
  const char* what = ncclGetErrorString(rc);
  const bool hinted = std::strstr(what, "NCCL_DEBUG") != nullptr || std::getenv("NCCL_DEBUG");
  std::snprintf(err, err_len, "%s failed: %s%s%s%s%s", call, what, has_detail ? " (" : "",
                has_detail ? detail : "", has_detail ? ")" : "",
                hinted ? "" : "; NCCL_DEBUG=WARN in the environment says more");
  return 1;
}

// The loaded library's version (before 2.9 a code was major * 1000 + minor * 100 + patch).
int version(int* major, int* minor, int* patch, char* err, std::size_t err_len) {
  int v = 0;
  if (check(ncclGetVersion(&v), "ncclGetVersion", err, err_len) != 0) return 1;
  *major = v >= 10000 ? v / 10000 : v / 1000;
  *minor = v >= 10000 ? v % 10000 / 100 : v % 1000 / 100;
  *patch = v % 100;
  return 0;
}

// The library loaded may be older than the headers the plugin was built with.
int check_version(char* err, std::size_t err_len) {
  int major = 0, minor = 0, patch = 0;
  if (version(&major, &minor, &patch, err, err_len) != 0) return 1;
  if (major > 2 || (major == 2 && minor >= 10)) return 0;
  const char* file = nccl_file();
  std::snprintf(err, err_len,
                "the NCCL library loaded (%s) is version %d.%d.%d; latent needs 2.10 or later "
                "(for ncclAvg and graph capture): put a newer libnccl.so.2 first on "
                "LD_LIBRARY_PATH",
                file ? file : "libnccl.so.2", major, minor, patch);
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
  if (check_version(err, err_len) != 0) return 1;
  return check(ncclGetUniqueId(static_cast<ncclUniqueId*>(id)), "ncclGetUniqueId", err, err_len);
}

int init_rank(void** comm, int size, const void* id, int rank, char* err, std::size_t err_len) {
  if (check_version(err, err_len) != 0) return 1;
  ncclComm_t c = nullptr;
  const int rc = check(ncclCommInitRank(&c, size, *static_cast<const ncclUniqueId*>(id), rank),
                       "ncclCommInitRank", err, err_len);
  if (rc == 0) *comm = c;
  return rc;
}

// The error NCCL found on its own on a communicator (a rank gone, the network failing);
// ncclSuccess when there is none, or a non-blocking operation is under way.
ncclResult_t own_error(ncclComm_t c) {
  ncclResult_t state = ncclSuccess;
  if (ncclCommGetAsyncError(c, &state) != ncclSuccess) return ncclSuccess;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0)
  if (state == ncclInProgress) return ncclSuccess;
#endif
  return state;
}

// A communicator NCCL found an error on is aborted (its destruction would wait for work that may
// never end), any other destroyed.
void destroy(void* comm) {
  if (!comm) return;
  const auto c = static_cast<ncclComm_t>(comm);
  if (own_error(c) != ncclSuccess)
    ncclCommAbort(c);
  else
    ncclCommDestroy(c);
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

int async_error(void* comm, char* err, std::size_t err_len) {
  const ncclResult_t state = own_error(static_cast<ncclComm_t>(comm));
  if (state == ncclSuccess) return 0;
  std::snprintf(err, err_len,
                "NCCL found an error on its own on a communicator (a rank gone, the network "
                "failing): %s%s",
                ncclGetErrorString(state),
                std::getenv("NCCL_DEBUG") ? "" : "; NCCL_DEBUG=WARN in the environment says more");
  return 1;
}

const latent_nccl_api kApi{LATENT_DIST_PLUGIN_ABI,
                           static_cast<int>(sizeof(ncclUniqueId)),
                           unique_id,
                           init_rank,
                           destroy,
                           all_reduce,
                           broadcast,
                           version,
                           async_error};

}  // namespace

extern "C" __attribute__((visibility("default"))) const latent_nccl_api* latent_nccl_plugin(void) {
  return &kApi;
}
