// The C interface between core/dist and the two shared libraries that hold its communication:
// liblatent_mpi.so (built on MPI) and liblatent_nccl.so (built on NCCL). core/dist loads them with
// dlopen when it needs them, the first when a launcher started the process, the second at the
// first collective on a GPU, so that a latent program links neither library and a process alone
// needs neither at run time.
//
// Every function that can fail returns 0 on success; otherwise it writes what failed (the call
// and the library's own message) into err (err_len bytes, always NUL-terminated) and returns
// non-zero. Handles are opaque pointers the plugin allocates.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

// Raised whenever a table changes; core refuses a plugin of another version.
#define LATENT_DIST_PLUGIN_ABI 3

enum latent_dist_dtype { LATENT_DIST_F32 = 0, LATENT_DIST_F64 = 1 };
enum latent_dist_op {
  LATENT_DIST_SUM = 0,
  LATENT_DIST_MEAN = 1,
  LATENT_DIST_MIN = 2,
  LATENT_DIST_MAX = 3
};

struct latent_mpi_api {
  int abi;
  // MPI_Init_thread(MPI_THREAD_FUNNELED) unless MPI is initialized already (then nothing).
  int (*init)(int* argc, char*** argv, char* err, std::size_t err_len);
  // Initialized and not finalized.
  int (*initialized)(void);
  // MPI_Finalize when init() initialized MPI; nothing otherwise.
  void (*finalize)(void);
  // A communicator of the library's own over MPI_COMM_WORLD (a duplicate), this rank, the size,
  // and the rank among the ranks of this machine.
  int (*world)(void** comm, int* rank, int* size, int* local_rank, char* err, std::size_t err_len);
  void (*comm_free)(void* comm);
  // In place over the ranks, any count (sent in pieces); MEAN is a SUM the caller divides.
  int (*all_reduce)(void* comm, void* buf, std::int64_t count, int dtype, int op, char* err,
                    std::size_t err_len);
  // Bytes from root, any count.
  int (*broadcast)(void* comm, void* buf, std::int64_t bytes, int root, char* err,
                   std::size_t err_len);
  // all[r * count + i] = rank r's mine[i].
  int (*all_gather_u64)(void* comm, const std::uint64_t* mine, int count, std::uint64_t* all,
                        char* err, std::size_t err_len);
  // A barrier in two halves, so that the caller can sleep between tests.
  int (*barrier_start)(void* comm, void** request, char* err, std::size_t err_len);
  int (*barrier_test)(void* request, int* done, char* err, std::size_t err_len);  // frees it
  // MPI_Abort on the world: every rank ends with code. Also called from core/dist's watchdog
  // thread (a job's last act, while the main thread may be inside another MPI call).
  void (*abort)(int code);
};

struct latent_nccl_api {
  int abi;
  int id_bytes;  // the size of a unique id (sizeof(ncclUniqueId))
  int (*unique_id)(void* id, char* err, std::size_t err_len);
  // A communicator of `size` ranks on the current CUDA device.
  int (*init_rank)(void** comm, int size, const void* id, int rank, char* err, std::size_t err_len);
  void (*destroy)(void* comm);
  // float32, in place, in stream order on `stream` (a cudaStream_t); capturable.
  int (*all_reduce)(void* comm, float* buf, std::size_t count, int op, void* stream, char* err,
                    std::size_t err_len);
  int (*broadcast)(void* comm, float* buf, std::size_t count, int root, void* stream, char* err,
                   std::size_t err_len);
  // The loaded library's version: major, minor, patch (no GPU needed).
  int (*version)(int* major, int* minor, int* patch, char* err, std::size_t err_len);
  // An error NCCL found on its own (a rank gone, the network failing): non-zero, with its
  // message; 0 while there is none. Called from core/dist's watchdog thread while the
  // communicator is in use (ncclCommGetAsyncError allows it).
  int (*async_error)(void* comm, char* err, std::size_t err_len);
};

// The entry points, found with dlsym.
const latent_mpi_api* latent_mpi_plugin(void);
const latent_nccl_api* latent_nccl_plugin(void);

}  // extern "C"
