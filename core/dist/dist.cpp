#include "core/dist/dist.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string_view>
#include <thread>
#include <type_traits>

#include "core/dispatch.h"
#include "core/error.h"

#if LATENT_WITH_MPI
#include <mpi.h>
#endif
#if LATENT_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>

#include "kernels/cuda_check.h"
#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 0)
#error "latent needs NCCL 2.10 or later (ncclAvg)"
#endif
#endif

namespace latent::dist {
namespace {

constexpr const char* kWhere = "dist";

int parse_int(const char* v, int fallback) {
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > std::numeric_limits<int>::max()) return fallback;
  return static_cast<int>(x);
}

#if LATENT_WITH_MPI
// 64-bit FNV-1a: the fingerprint check_same compares.
std::uint64_t fingerprint(std::string_view a, std::string_view b) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](std::string_view s) {
    for (const char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
    h ^= 0xffu;  // a separator no byte can fake
    h *= 1099511628211ull;
  };
  mix(a);
  mix(b);
  return h;
}
#endif

#if LATENT_WITH_MPI
void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(kWhere,
              detail::cat(call, " failed: ", std::string(text, static_cast<std::size_t>(len))));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::min:
      return MPI_MIN;
    case ReduceOp::max:
      return MPI_MAX;
    case ReduceOp::sum:
    case ReduceOp::mean:
      break;
  }
  return MPI_SUM;
}

template <class T>
MPI_Datatype mpi_type() {
  return std::is_same_v<T, double> ? MPI_DOUBLE : MPI_FLOAT;
}

// MPI counts are int: large buffers go in pieces.
constexpr std::int64_t kMpiChunk = std::int64_t{1} << 30;

bool mpi_initialized() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}
#endif

#if LATENT_WITH_NCCL
void check_nccl(ncclResult_t rc, const char* call) {
  if (rc == ncclSuccess) return;
  throw Error(kWhere, detail::cat(call, " failed: ", ncclGetErrorString(rc)));
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::mean:
      return ncclAvg;
    case ReduceOp::min:
      return ncclMin;
    case ReduceOp::max:
      return ncclMax;
    case ReduceOp::sum:
      break;
  }
  return ncclSum;
}
#endif

}  // namespace

// One per group for the process's lifetime (recorded steps keep its address); a Session opens
// and closes the world's.
struct Group::Impl {
#if LATENT_WITH_MPI
  MPI_Comm comm = MPI_COMM_NULL;
#endif
#if LATENT_WITH_NCCL
  std::map<int, ncclComm_t> nccl;  // CUDA device index -> communicator
#endif
  void close() {
#if LATENT_WITH_NCCL
    for (auto& [index, c] : nccl) ncclCommDestroy(c);
    nccl.clear();
#endif
#if LATENT_WITH_MPI
    if (comm != MPI_COMM_NULL && mpi_initialized()) MPI_Comm_free(&comm);
    comm = MPI_COMM_NULL;
#endif
  }
  ~Impl() {
    close();
  }
};

// ---- launch --------------------------------------------------------------------------------

Launch detect_launch(const std::function<const char*(const char*)>& getenv) {
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv(name);
    return v && *v ? v : nullptr;
  };
  Launch l;
  auto said = [&](const char* name, const char* value) {
    l.launched = true;
    l.variable = std::string(name) + "=" + value;
  };
  if (const char* v = get("OMPI_COMM_WORLD_SIZE")) {
    said("OMPI_COMM_WORLD_SIZE", v);
    l.size = parse_int(v, 1);
    l.rank = parse_int(get("OMPI_COMM_WORLD_RANK"), 0);
    l.local_rank = parse_int(get("OMPI_COMM_WORLD_LOCAL_RANK"), 0);
  } else if (const char* p = get("PMI_SIZE")) {
    said("PMI_SIZE", p);
    l.size = parse_int(p, 1);
    l.rank = parse_int(get("PMI_RANK"), 0);
    l.local_rank = parse_int(get("MPI_LOCALRANKID"), parse_int(get("SLURM_LOCALID"), 0));
  } else if (const char* x = get("PMIX_RANK")) {
    said("PMIX_RANK", x);
    l.rank = parse_int(x, 0);
    l.size = parse_int(get("SLURM_STEP_NUM_TASKS"), parse_int(get("SLURM_NTASKS"), 1));
    l.local_rank = parse_int(get("SLURM_LOCALID"), 0);
  }
  if (l.size < 1) l.size = 1;
  return l;
}

Launch detect_launch() {
  return detect_launch([](const char* name) { return std::getenv(name); });
}

bool built_with_mpi() {
#if LATENT_WITH_MPI
  return true;
#else
  return false;
#endif
}

bool built_with_nccl() {
#if LATENT_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::string launch_refusal(const Launch& l, bool with_mpi) {
  if (with_mpi || l.size <= 1) return "";
  return detail::cat(
      "this latent was built without MPI (LATENT_MPI=OFF, or no MPI found when it "
      "was configured) but a launcher started it as one of ",
      l.size, " ranks (", l.variable,
      "): each process would train alone and write the same files. Rebuild with "
      "MPI (apt-get install libopenmpi-dev openmpi-bin) or run one process");
}

// ---- groups --------------------------------------------------------------------------------

namespace {

// One object for the process's lifetime (references to it stay valid): a Session fills it in
// and empties it again.
std::unique_ptr<Group>& world_slot() {
  static std::unique_ptr<Group> g;
  return g;
}

bool g_session = false;  // a Session is alive
#if LATENT_WITH_MPI
bool g_mpi_ours = false;  // MPI was initialized by the Session
#endif

}  // namespace

Group::Group(int rank, int size, int local_rank, std::unique_ptr<Impl> impl)
    : rank_(rank), size_(size), local_rank_(local_rank), impl_(std::move(impl)) {}

Group::~Group() = default;

Group& world() {
  std::unique_ptr<Group>& g = world_slot();
  if (!g) g.reset(new Group(0, 1, 0, std::make_unique<Group::Impl>()));
  return *g;
}

Group& self() {
  static Group g(0, 1, 0, std::make_unique<Group::Impl>());
  return g;
}

namespace {

// The all-reduce as a kernel of both backends (dispatch::call): recorded on the CPU (the MPI call
// is made again at every replay), captured on a GPU (the NCCL call becomes a graph node).
// `comm` is the device's NCCL communicator (null on the CPU).
constexpr auto all_reduce_fn = [](const auto& be, auto* p, std::int64_t n, Group::Impl* impl,
                                  void* comm, ReduceOp op, int size) {
  using T = std::remove_pointer_t<decltype(p)>;
  static_assert(std::is_floating_point_v<T>);
  if constexpr (std::decay_t<decltype(be)>::is_cuda) {
#if LATENT_WITH_NCCL
    check_nccl(ncclAllReduce(p, p, static_cast<std::size_t>(n), ncclFloat, nccl_op(op),
                             static_cast<ncclComm_t>(comm), be.stream),
               "ncclAllReduce");
#else
    (void)comm;
    throw Error(kWhere, "a GPU tensor needs NCCL, and this latent was built without it");
#endif
  } else {
    (void)comm;
#if LATENT_WITH_MPI
    for (std::int64_t at = 0; at < n; at += kMpiChunk) {
      const int count = static_cast<int>(std::min(kMpiChunk, n - at));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, p + at, count, mpi_type<T>(), mpi_op(op), impl->comm),
                "MPI_Allreduce");
    }
    if (op == ReduceOp::mean)
      for (std::int64_t i = 0; i < n; ++i) p[i] /= static_cast<T>(size);
#else
    (void)p, (void)n, (void)impl, (void)op, (void)size;
    throw Error(kWhere,
                "a collective across processes needs MPI, and this latent was built "
                "without it");
#endif
  }
};
constexpr dispatch::Kernel<decltype(all_reduce_fn)> kAllReduce{"all_reduce", 0, all_reduce_fn};

}  // namespace

#if LATENT_WITH_NCCL
namespace {
// The device's communicator, created on first use (collective over the group's ranks).
ncclComm_t nccl_comm(Group::Impl& impl, const Group& g, Device device) {
  const int index = device.index();
  auto it = impl.nccl.find(index);
  if (it != impl.nccl.end()) return it->second;
  dispatch::refuse_while_recording("creating a GPU's communicator (the first collective on it)");
  ncclUniqueId id{};
  if (g.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, impl.comm), "MPI_Bcast");
  LATENT_CUDA_CHECK(cudaSetDevice(index));
  ncclComm_t c = nullptr;
  check_nccl(ncclCommInitRank(&c, g.size(), id, g.rank()), "ncclCommInitRank");
  impl.nccl.emplace(index, c);
  return c;
}
}  // namespace
#endif

void Group::all_reduce(const Tensor& t, ReduceOp op) {
  dispatch::check_defined("all_reduce", {&t});
  if (size_ == 1) return;
  void* comm = nullptr;
  if (t.device().is_cuda()) {
#if LATENT_WITH_NCCL
    comm = nccl_comm(*impl_, *this, t.device());
#else
    throw Error(kWhere, detail::cat("all_reduce of a tensor on ", t.device().str(),
                                    " needs NCCL, and this latent was built without it"));
#endif
  }
  const std::int64_t n = t.numel();
  Impl* impl = impl_.get();
  const int size = size_;
  dispatch::run("all_reduce", t, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, kAllReduce, t.data<T>(), n, impl, comm, op, size);
  });
  t.bump_version();
}

std::vector<double> Group::all_reduce(std::vector<double> values, ReduceOp op) {
  if (size_ == 1 || values.empty()) return values;
  (void)op;
#if LATENT_WITH_MPI
  check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                          mpi_op(op), impl_->comm),
            "MPI_Allreduce");
  if (op == ReduceOp::mean)
    for (double& v : values) v /= size_;
#endif
  return values;
}

void Group::broadcast(const Tensor& t, int root) {
  dispatch::check_defined("broadcast", {&t});
  check(root >= 0 && root < size_, kWhere, "broadcast from rank ", root, " in a world of ", size_);
  if (size_ == 1) return;
  dispatch::refuse_while_recording("a broadcast");
  [[maybe_unused]] const std::int64_t n = t.numel();
  if (t.device().is_cuda()) {
#if LATENT_WITH_NCCL
    ncclComm_t c = nccl_comm(*impl_, *this, t.device());
    check_nccl(ncclBroadcast(t.data<float>(), t.data<float>(), static_cast<std::size_t>(n),
                             ncclFloat, root, c, backend::stream(t.device())),
               "ncclBroadcast");
#else
    throw Error(kWhere, detail::cat("broadcast of a tensor on ", t.device().str(),
                                    " needs NCCL, and this latent was built without it"));
#endif
  } else {
#if LATENT_WITH_MPI
    auto* bytes = static_cast<char*>(t.raw_data());
    const std::int64_t total = n * static_cast<std::int64_t>(dtype_size(t.dtype()));
    for (std::int64_t at = 0; at < total; at += kMpiChunk) {
      const int count = static_cast<int>(std::min(kMpiChunk, total - at));
      check_mpi(MPI_Bcast(bytes + at, count, MPI_BYTE, root, impl_->comm), "MPI_Bcast");
    }
#endif
  }
  t.bump_version();
}

std::string Group::broadcast(std::string bytes, int root) {
  check(root >= 0 && root < size_, kWhere, "broadcast from rank ", root, " in a world of ", size_);
  if (size_ == 1) return bytes;
#if LATENT_WITH_MPI
  std::uint64_t len = bytes.size();
  check_mpi(MPI_Bcast(&len, 1, MPI_UINT64_T, root, impl_->comm), "MPI_Bcast");
  bytes.resize(len);
  for (std::uint64_t at = 0; at < len; at += kMpiChunk) {
    const int count = static_cast<int>(std::min<std::uint64_t>(kMpiChunk, len - at));
    check_mpi(MPI_Bcast(bytes.data() + at, count, MPI_BYTE, root, impl_->comm), "MPI_Bcast");
  }
#endif
  return bytes;
}

void Group::barrier() {
  if (size_ == 1) return;
#if LATENT_WITH_MPI
  // Waits asleep, not spinning: the ranks that arrive first leave their cores to the others (a
  // rank 0 still writing its files, on a machine with as many cores as ranks).
  MPI_Request request = MPI_REQUEST_NULL;
  check_mpi(MPI_Ibarrier(impl_->comm, &request), "MPI_Ibarrier");
  int done = 0;
  while (true) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
#endif
}

void Group::check_same(const std::vector<std::pair<std::string, std::string>>& fields) {
  if (size_ == 1) return;
  const double count = static_cast<double>(fields.size());
  const std::vector<double> lo = all_reduce({count}, ReduceOp::min);
  const std::vector<double> hi = all_reduce({count}, ReduceOp::max);
  check(lo[0] == hi[0], kWhere, "ranks disagree on their configuration: between ", lo[0], " and ",
        hi[0], " fields");
#if LATENT_WITH_MPI
  const std::size_t k = fields.size();
  std::vector<std::uint64_t> mine(k), all(k * static_cast<std::size_t>(size_));
  for (std::size_t i = 0; i < k; ++i) mine[i] = fingerprint(fields[i].first, fields[i].second);
  check_mpi(MPI_Allgather(mine.data(), static_cast<int>(k), MPI_UINT64_T, all.data(),
                          static_cast<int>(k), MPI_UINT64_T, impl_->comm),
            "MPI_Allgather");
  for (std::size_t i = 0; i < k; ++i) {
    for (int r = 1; r < size_; ++r) {
      if (all[static_cast<std::size_t>(r) * k + i] == all[i]) continue;
      // Every rank found the same (field, rank): both values travel to everyone.
      const std::string name = broadcast(fields[i].first, 0);
      const std::string v0 = broadcast(fields[i].second, 0);
      const std::string vr = broadcast(fields[i].second, r);
      const std::string name_r = broadcast(fields[i].first, r);
      if (name_r != name)
        throw Error(kWhere, detail::cat("ranks disagree on their configuration: field ", i, " is '",
                                        name, "' on rank 0, '", name_r, "' on rank ", r));
      throw Error(kWhere, detail::cat("ranks disagree on '", name, "': ", v0, " on rank 0, ", vr,
                                      " on rank ", r));
    }
  }
#endif
}

// ---- session -------------------------------------------------------------------------------

Session::Session(int* argc, char*** argv) {
  check(!g_session, kWhere, "a Session is already alive: make one per process, in main");
  const Launch l = detect_launch();
  if (const std::string why = launch_refusal(l, built_with_mpi()); !why.empty())
    throw Error(kWhere, why);
  if (!l.launched) {  // a world of one: MPI is never touched
    g_session = true;
    return;
  }
#if LATENT_WITH_MPI
  if (!mpi_initialized()) {
    int provided = 0;
    check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    g_mpi_ours = true;
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      g_mpi_ours = false;
      throw Error(kWhere,
                  "the MPI library cannot be called from a multithreaded process "
                  "(MPI_THREAD_FUNNELED not provided)");
    }
  }
  int rank = 0, size = 1, local = 0;
  check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  check_mpi(MPI_Comm_rank(node, &local), "MPI_Comm_rank");
  MPI_Comm_free(&node);
  Group& w = world();
  // A communicator of our own: the library's messages never meet the program's.
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &w.impl_->comm), "MPI_Comm_dup");
  w.rank_ = rank;
  w.size_ = size;
  w.local_rank_ = local;
  ++w.revision_;
#else
  (void)argc, (void)argv;  // a launch of one rank: nothing to join
#endif
  g_session = true;
}

Session::~Session() {
  // The NCCL communicators go before MPI and the CUDA pools; the world is this process again.
  Group& w = world();
  w.impl_->close();
  w.rank_ = 0;
  w.size_ = 1;
  w.local_rank_ = 0;
  ++w.revision_;
#if LATENT_WITH_MPI
  if (g_mpi_ours && mpi_initialized()) MPI_Finalize();
  g_mpi_ours = false;
#endif
  g_session = false;
}

[[noreturn]] void abort(int code, const std::string& message) {
  const Group& w = world();
  std::fprintf(stderr, "latent [rank %d of %d]: %s\n", w.rank(), w.size(), message.c_str());
  std::fflush(stderr);
#if LATENT_WITH_MPI
  if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

Share share(std::int64_t n, int rank, int size) {
  check(size >= 1 && rank >= 0 && rank < size && n >= 0, kWhere, "no share of ", n,
        " rows for rank ", rank, " of ", size);
  const auto at = [&](std::int64_t r) {
    // floor(r n / size) without overflow for any n < 2^62 and size < 2^31.
    return (r * (n / size)) + (r * (n % size)) / size;
  };
  return {at(rank), at(rank + 1) - at(rank)};
}

}  // namespace latent::dist
