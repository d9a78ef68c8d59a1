// liblatent_mpi.so: core/dist's collectives on the CPU through MPI (core/dist/plugin_abi.h).
// Debian's Open MPI is not CUDA-aware: only host memory reaches it.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/dist/plugin_abi.h"

namespace {

bool g_ours = false;  // init() initialized MPI

// MPI counts are int: large buffers go in pieces.
constexpr std::int64_t kChunk = std::int64_t{1} << 30;

int fail(int rc, const char* call, char* err, std::size_t err_len) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
    std::snprintf(text, sizeof text, "error %d", rc);
  std::snprintf(err, err_len, "%s failed: %s", call, text);
  return 1;
}

// Returns from the caller with the failing function's name and MPI's message.
#define LATENT_MPI_TRY(fn, ...)                                                \
  do {                                                                         \
    const int latent_rc_ = fn(__VA_ARGS__);                                    \
    if (latent_rc_ != MPI_SUCCESS) return fail(latent_rc_, #fn, err, err_len); \
  } while (0)

MPI_Comm& comm_of(void* c) {
  return *static_cast<MPI_Comm*>(c);
}

int initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

int init(int* argc, char*** argv, char* err, std::size_t err_len) {
  if (initialized()) return 0;
  int provided = 0;
  LATENT_MPI_TRY(MPI_Init_thread, argc, argv, MPI_THREAD_FUNNELED, &provided);
  g_ours = true;
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    g_ours = false;
    std::snprintf(err, err_len,
                  "the MPI library cannot be called from a multithreaded process "
                  "(MPI_THREAD_FUNNELED not provided)");
    return 1;
  }
  return 0;
}

void finalize() {
  if (g_ours && initialized()) MPI_Finalize();
  g_ours = false;
}

int world(void** comm, int* rank, int* size, int* local_rank, char* err, std::size_t err_len) {
  LATENT_MPI_TRY(MPI_Comm_rank, MPI_COMM_WORLD, rank);
  LATENT_MPI_TRY(MPI_Comm_size, MPI_COMM_WORLD, size);
  MPI_Comm node = MPI_COMM_NULL;
  LATENT_MPI_TRY(MPI_Comm_split_type, MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL,
                 &node);
  const int rc = MPI_Comm_rank(node, local_rank);
  MPI_Comm_free(&node);
  if (rc != MPI_SUCCESS) return fail(rc, "MPI_Comm_rank", err, err_len);
  auto* c = new MPI_Comm(MPI_COMM_NULL);
  // A communicator of our own: the library's messages never meet the program's.
  const int dup = MPI_Comm_dup(MPI_COMM_WORLD, c);
  if (dup != MPI_SUCCESS) {
    delete c;
    return fail(dup, "MPI_Comm_dup", err, err_len);
  }
  // Its failures come back to the caller, who reports them (and ends the job) in latent's words,
  // instead of MPI ending the process with its own message only.
  const int handler = MPI_Comm_set_errhandler(*c, MPI_ERRORS_RETURN);
  if (handler != MPI_SUCCESS) {
    MPI_Comm_free(c);
    delete c;
    return fail(handler, "MPI_Comm_set_errhandler", err, err_len);
  }
  *comm = c;
  return 0;
}

void comm_free(void* c) {
  if (!c) return;
  if (comm_of(c) != MPI_COMM_NULL && initialized()) MPI_Comm_free(&comm_of(c));
  delete static_cast<MPI_Comm*>(c);
}

MPI_Op op_of(int op) {
  switch (op) {
    case LATENT_DIST_MIN:
      return MPI_MIN;
    case LATENT_DIST_MAX:
      return MPI_MAX;
    default:
      return MPI_SUM;
  }
}

int all_reduce(void* c, void* buf, std::int64_t count, int dtype, int op, char* err,
               std::size_t err_len) {
  const MPI_Datatype type = dtype == LATENT_DIST_F64 ? MPI_DOUBLE : MPI_FLOAT;
  const std::size_t size = dtype == LATENT_DIST_F64 ? sizeof(double) : sizeof(float);
  for (std::int64_t at = 0; at < count; at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, count - at));
    LATENT_MPI_TRY(MPI_Allreduce, MPI_IN_PLACE, static_cast<char*>(buf) + at * size, n, type,
                   op_of(op), comm_of(c));
  }
  return 0;
}

int broadcast(void* c, void* buf, std::int64_t bytes, int root, char* err, std::size_t err_len) {
  for (std::int64_t at = 0; at < bytes; at += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, bytes - at));
    LATENT_MPI_TRY(MPI_Bcast, static_cast<char*>(buf) + at, n, MPI_BYTE, root, comm_of(c));
  }
  return 0;
}

int all_gather_u64(void* c, const std::uint64_t* mine, int count, std::uint64_t* all, char* err,
                   std::size_t err_len) {
  LATENT_MPI_TRY(MPI_Allgather, mine, count, MPI_UINT64_T, all, count, MPI_UINT64_T, comm_of(c));
  return 0;
}

int barrier_start(void* c, void** request, char* err, std::size_t err_len) {
  auto* r = new MPI_Request(MPI_REQUEST_NULL);
  const int rc = MPI_Ibarrier(comm_of(c), r);
  if (rc != MPI_SUCCESS) {
    delete r;
    return fail(rc, "MPI_Ibarrier", err, err_len);
  }
  *request = r;
  return 0;
}

int barrier_test(void* request, int* done, char* err, std::size_t err_len) {
  auto* r = static_cast<MPI_Request*>(request);
  const int rc = MPI_Test(r, done, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS || *done) delete r;
  if (rc != MPI_SUCCESS) return fail(rc, "MPI_Test", err, err_len);
  return 0;
}

void abort_all(int code) {
  if (initialized()) MPI_Abort(MPI_COMM_WORLD, code);
}

const latent_mpi_api kApi{LATENT_DIST_PLUGIN_ABI,
                          init,
                          initialized,
                          finalize,
                          world,
                          comm_free,
                          all_reduce,
                          broadcast,
                          all_gather_u64,
                          barrier_start,
                          barrier_test,
                          abort_all};

}  // namespace

extern "C" __attribute__((visibility("default"))) const latent_mpi_api* latent_mpi_plugin(void) {
  return &kApi;
}
