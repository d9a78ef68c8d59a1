#include "core/dist/dist.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <type_traits>

#include "core/autograd.h"
#include "core/backend.h"
#include "core/data/file_util.h"
#include "core/dispatch.h"
#include "core/dist/plugin_abi.h"
#include "core/error.h"
#include "core/host_wait.h"
#include "core/ops.h"
#include "core/random.h"
#include "kernels/cpu_parallel.h"

#if LATENT_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
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

// 64-bit FNV-1a, the hash check_same compares and fingerprint() gives.
constexpr std::uint64_t kFnvBasis = 14695981039346656037ull;
void fnv_mix(std::uint64_t& h, const unsigned char* bytes, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= bytes[i];
    h *= 1099511628211ull;
  }
}

std::uint64_t fingerprint(std::string_view a, std::string_view b) {
  std::uint64_t h = kFnvBasis;
  const unsigned char separator =
      0xff;  // after each string, so that ("ab", "c") is not ("a", "bc")
  for (const std::string_view s : {a, b}) {
    fnv_mix(h, reinterpret_cast<const unsigned char*>(s.data()), s.size());
    fnv_mix(h, &separator, 1);
  }
  return h;
}

// ---- the plugins ---------------------------------------------------------------------------

// Where a plugin is looked for, in order: the file an environment variable names, the folder of
// the running program and its ../lib, the build's and the installation's library folders, then
// the loader's own search (LD_LIBRARY_PATH).
std::vector<std::string> plugin_candidates(const char* file, const char* variable) {
  std::vector<std::string> out;
  if (const char* v = std::getenv(variable); v && *v) {
    out.emplace_back(v);
    return out;
  }
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / file).string());
    out.push_back((exe.parent_path().parent_path() / "lib" / file).string());
  }
#ifdef LATENT_PLUGIN_BUILD_DIR
  out.push_back(std::string(LATENT_PLUGIN_BUILD_DIR) + "/" + file);
#endif
#ifdef LATENT_PLUGIN_INSTALL_DIR
  out.push_back(std::string(LATENT_PLUGIN_INSTALL_DIR) + "/" + file);
#endif
  out.emplace_back(file);
  return out;
}

// The plugin's table: loaded once (RTLD_GLOBAL: Open MPI's own components resolve the MPI
// symbols through it); throws latent::Error naming every place tried and why it failed.
template <class Api>
const Api* load_plugin(const char* file, const char* variable, const char* entry,
                       const char* what) {
  std::string tried;
  for (const std::string& path : plugin_candidates(file, variable)) {
    const bool bare = path.find('/') == std::string::npos;
    std::error_code missing;
    if (!bare && !std::filesystem::exists(path, missing)) {
      tried += detail::cat("\n  ", path, ": no such file");
      continue;
    }
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      const char* why = dlerror();
      tried += detail::cat("\n  ", path, ": ", why ? why : "cannot be loaded");
      continue;
    }
    using Entry = const Api* (*)();
    auto fn = reinterpret_cast<Entry>(dlsym(handle, entry));
    const Api* api = fn ? fn() : nullptr;
    if (!api || api->abi != LATENT_DIST_PLUGIN_ABI) {
      tried += detail::cat("\n  ", path, ": not a latent plugin of this version");
      dlclose(handle);
      continue;
    }
    return api;
  }
  throw Error(kWhere, detail::cat(what, " needs ", file, ", which could not be loaded (set ",
                                  variable, " to its path)", tried.empty() ? "" : ":", tried));
}

const latent_mpi_api& mpi_api() {
  static const latent_mpi_api* api =
      load_plugin<latent_mpi_api>("liblatent_mpi.so", "LATENT_MPI_PLUGIN", "latent_mpi_plugin",
                                  "a collective across processes");
  return *api;
}

// The MPI plugin when it is loaded already (it is loaded by the Session that joined a launch).
const latent_mpi_api* g_mpi = nullptr;

const latent_nccl_api& nccl_api() {
  static const latent_nccl_api* api = load_plugin<latent_nccl_api>(
      "liblatent_nccl.so", "LATENT_NCCL_PLUGIN", "latent_nccl_plugin", "a collective on a GPU");
  return *api;
}

// Calls a plugin function with an error buffer; throws latent::Error with its message.
template <class F, class... A>
void plugin_call(F f, A... args) {
  char err[1024] = {};
  if (f(args..., err, sizeof err) != 0) throw Error(kWhere, err[0] ? err : "a plugin call failed");
}

// The Session's watchdog (a world of several): its thread, what it polls, and what the program
// asked to run before it ends the job. Never destroyed: the thread may still run while the
// process exits through abort().
struct Watchdog {
  std::mutex mu;
  std::condition_variable wake;
  bool stop = false;
  std::thread* thread = nullptr;
  double limit = 0;  // LATENT_DIST_TIMEOUT (0: no limit)
  std::mutex hook_mu;
  std::function<void(const std::string&)> hook;
};

Watchdog& watchdog() {
  static Watchdog* w = new Watchdog;
  return *w;
}

}  // namespace

std::string nccl_version() {
  check(built_with_nccl(), kWhere, "this latent was built without NCCL");
  int major = 0, minor = 0, patch = 0;
  plugin_call(nccl_api().version, &major, &minor, &patch);
  return detail::cat(major, ".", minor, ".", patch);
}

namespace {

int op_code(ReduceOp op) {
  switch (op) {
    case ReduceOp::mean:
      return LATENT_DIST_MEAN;
    case ReduceOp::min:
      return LATENT_DIST_MIN;
    case ReduceOp::max:
      return LATENT_DIST_MAX;
    case ReduceOp::sum:
      break;
  }
  return LATENT_DIST_SUM;
}

}  // namespace

// One per group for the process's lifetime (recorded steps keep its address); a Session opens
// and closes the world's.
struct Group::Impl {
  void* comm = nullptr;       // the MPI plugin's communicator (null: none)
  std::mutex nccl_mu;         // guards nccl: the watchdog's thread reads it (nccl_error)
  std::map<int, void*> nccl;  // CUDA device index -> the NCCL plugin's communicator
  // The NCCL calls of this group's that the CUDA graphs of recorded steps (dispatch::Plan) alive
  // hold: NCCL's teardown of a communicator waits until no graph holds it. Shared with the holds,
  // which a plan kept in a static may drop after this group is gone.
  std::shared_ptr<std::atomic<int>> captured = std::make_shared<std::atomic<int>>(0);
  void close() {
    std::lock_guard<std::mutex> lock(nccl_mu);
    if (const int held = captured->load(); held > 0 && !nccl.empty()) {
      // Destroying the communicators would wait for ever: they are left to the process's end.
      std::fprintf(stderr,
                   "latent: recorded steps whose CUDA graphs hold %d NCCL all-reduce(s) outlive "
                   "the dist::Session (a Trainer or CompiledStep made before it, or kept after "
                   "it): their communicators are left to the end of the process; end such steps "
                   "before the Session\n",
                   held);
    } else {
      for (auto& [index, c] : nccl) nccl_api().destroy(c);
    }
    nccl.clear();
    if (comm && g_mpi) g_mpi->comm_free(comm);
    comm = nullptr;
  }
  // Runs among the statics at exit, when NCCL (loaded after this group was made) and the CUDA
  // runtime may have torn their own state down already: communicators a Session did not close
  // (a loopback group used without one) are left to the end of the process, never destroyed then.
  ~Impl() = default;
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
  } else if (const char* t = get("SLURM_STEP_NUM_TASKS"); t && parse_int(t, 1) > 1) {
    // An srun step without an MPI interface: its tasks cannot join one world.
    l.tasks_alone = parse_int(t, 1);
    l.task = parse_int(get("SLURM_PROCID"), 0);
    l.variable = std::string("SLURM_STEP_NUM_TASKS=") + t;
  }
  if (l.size < 1) l.size = 1;
  return l;
}

std::string tasks_alone_note(const Launch& l) {
  if (l.tasks_alone <= 1) return "";
  return detail::cat(
      "srun started ", l.tasks_alone, " tasks (", l.variable,
      ") with no MPI interface to join them, so each runs alone, a world of one; for one job "
      "across them run `srun --mpi=pmix ...` (what Open MPI needs; --mpi=pmi2 for an MPICH "
      "build), or set MpiDefault=pmix in slurm.conf",
      built_with_mpi() ? "" : ", with a latent built with MPI (this one was built without)");
}

Launch detect_launch() {
  return detect_launch([](const char* name) { return std::getenv(name); });
}

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "?";
  return host;
}

namespace {

// This machine: its name and boot id (hosts of one name, cloned or containers, are not one).
std::string machine_id() {
  std::string boot;
  std::getline(std::ifstream("/proc/sys/kernel/random/boot_id"), boot);
  return host_name() + "\n" + boot;
}

}  // namespace

int rank_cpu_threads(int online, int usable, int ranks_here) {
  const int share = std::max(1, online) / std::max(1, ranks_here);
  return std::clamp(share, 1, std::max(1, usable));
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

std::atomic<bool> g_ending{false};  // a thread of a world of several is ending the job

// Claims the end of the job for the calling thread (abort(), the watchdog): a thread that comes
// second waits here for the end the first one makes, instead of making another at the same time
// (a second MPI_Abort, a second record of the failure).
void claim_the_end() {
  if (!g_mpi || !g_mpi->initialized()) return;  // a world of one: no watchdog, nothing to race
  if (!g_ending.exchange(true)) return;
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace

Group::Group(int rank, int size, int local_rank, std::unique_ptr<Impl> impl, bool loopback)
    : rank_(rank),
      size_(size),
      local_rank_(local_rank),
      loopback_(loopback),
      impl_(std::move(impl)) {}

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

Group& loopback() {
  static Group g(0, 1, 0, std::make_unique<Group::Impl>(), /*loopback=*/true);
  return g;
}

namespace {

// The all-reduce as a kernel of both backends (dispatch::call): recorded on the CPU (the MPI call
// is made again at every replay), captured on a GPU (the NCCL call becomes a graph node).
// `comm` is the MPI communicator on the CPU (null in a loopback group: nothing to exchange), the
// device's NCCL communicator on a GPU.
constexpr auto all_reduce_fn = [](const auto& be, auto* p, std::int64_t n, void* comm, ReduceOp op,
                                  int size) {
  using T = std::remove_pointer_t<decltype(p)>;
  static_assert(std::is_floating_point_v<T>);
  if constexpr (std::decay_t<decltype(be)>::is_cuda) {
    (void)size;
    plugin_call(nccl_api().all_reduce, comm, reinterpret_cast<float*>(p),
                static_cast<std::size_t>(n), op_code(op), static_cast<void*>(be.stream));
  } else {
    if (comm == nullptr) return;
    HostWait wait("in an all-reduce", n);
    plugin_call(g_mpi->all_reduce, comm, static_cast<void*>(p), n,
                std::is_same_v<T, double> ? int{LATENT_DIST_F64} : int{LATENT_DIST_F32},
                op_code(op));
    if (op == ReduceOp::mean)
      for (std::int64_t i = 0; i < n; ++i) p[i] /= static_cast<T>(size);
  }
};
constexpr dispatch::Kernel<decltype(all_reduce_fn)> kAllReduce{"all_reduce", 0, all_reduce_fn};

// The device's NCCL communicator, created on first use (collective over the group's ranks: rank
// 0's unique id broadcast over MPI; a loopback group makes a communicator of one).
void* nccl_comm(Group::Impl& impl, Group& g, Device device) {
  const int index = device.index();
  {
    std::lock_guard<std::mutex> lock(impl.nccl_mu);
    auto it = impl.nccl.find(index);
    if (it != impl.nccl.end()) return it->second;
  }
  dispatch::refuse_while_recording("creating a GPU's communicator (the first collective on it)");
  // The plugin loaded and rank 0's unique id made, or why not: told to every rank (none is left
  // waiting in the broadcast for a rank that threw alone), the lowest failing rank's reason the
  // same error everywhere.
  const latent_nccl_api* api = nullptr;
  std::string id, problem;
  std::exception_ptr failure;
  try {
    check(built_with_nccl(), kWhere, "a collective on ", device.str(),
          " needs NCCL, and this latent was built without it");
    api = &nccl_api();
    id.assign(static_cast<std::size_t>(api->id_bytes), '\0');
    if (g.rank() == 0) plugin_call(api->unique_id, static_cast<void*>(id.data()));
  } catch (const Error& e) {
    problem = e.what();
    failure = std::current_exception();
  }
  if (g.size() == 1 && failure) std::rethrow_exception(failure);
  if (const auto first = g.first_problem(problem))
    throw SharedError(kWhere, detail::cat("rank ", first->first, ": ", first->second));
  const latent_nccl_api& nccl = *api;
  id = g.broadcast(id, 0);
#if LATENT_WITH_CUDA
  LATENT_CUDA_CHECK(cudaSetDevice(index));
#endif
  void* c = nullptr;
  {
    HostWait wait("in the creation of a NCCL communicator");
    plugin_call(nccl.init_rank, &c, g.size(), static_cast<const void*>(id.data()), g.rank());
  }
  std::lock_guard<std::mutex> lock(impl.nccl_mu);
  impl.nccl.emplace(index, c);
  return c;
}

}  // namespace

void Group::all_reduce(const Tensor& t, ReduceOp op) {
  dispatch::check_defined("all_reduce", {&t});
  if (size_ == 1 && !(loopback_ && t.device().is_cuda())) return;
  void* comm = impl_->comm;
  if (t.device().is_cuda()) comm = nccl_comm(*impl_, *this, t.device());
  const std::int64_t n = t.numel();
  const int size = size_;
  if (t.device().is_cuda() && dispatch::capturing()) {
    // The plan that captures the call holds the communicator until its graph is gone (the plan
    // drops what it retains after its graph).
    struct Hold {
      explicit Hold(std::shared_ptr<std::atomic<int>> c) : count(std::move(c)) { ++*count; }
      ~Hold() { --*count; }
      Hold(const Hold&) = delete;
      Hold& operator=(const Hold&) = delete;
      std::shared_ptr<std::atomic<int>> count;
    };
    dispatch::detail_retain(std::make_shared<const Hold>(impl_->captured));
  }
  dispatch::run("all_reduce", t, [&](auto z, auto be) {
    using T = decltype(z);
    dispatch::call(be, kAllReduce, t.data<T>(), n, comm, op, size);
  });
  t.bump_version();
}

std::vector<double> Group::all_reduce(std::vector<double> values, ReduceOp op) {
  if (size_ == 1 || values.empty()) return values;
  HostWait wait("in an all-reduce", static_cast<std::int64_t>(values.size()));
  plugin_call(g_mpi->all_reduce, impl_->comm, static_cast<void*>(values.data()),
              static_cast<std::int64_t>(values.size()), int{LATENT_DIST_F64}, op_code(op));
  if (op == ReduceOp::mean)
    for (double& v : values) v /= size_;
  return values;
}

int Group::captured_collectives() const {
  return impl_->captured->load();
}

std::string Group::nccl_error() const {
  std::lock_guard<std::mutex> lock(impl_->nccl_mu);
  for (const auto& [index, c] : impl_->nccl) {
    char err[1024] = {};
    if (nccl_api().async_error(c, err, sizeof err) != 0)
      return detail::cat("cuda:", index, ": ", err);
  }
  return "";
}

void Group::broadcast(const Tensor& t, int root) {
  dispatch::check_defined("broadcast", {&t});
  check(root >= 0 && root < size_, kWhere, "broadcast from rank ", root, " in a world of ", size_);
  if (size_ == 1 && !(loopback_ && t.device().is_cuda())) return;
  dispatch::refuse_while_recording("a broadcast");
  const std::int64_t n = t.numel();
  if (t.device().is_cuda()) {
    void* c = nccl_comm(*impl_, *this, t.device());
    plugin_call(nccl_api().broadcast, c, t.data<float>(), static_cast<std::size_t>(n), root,
                static_cast<void*>(backend::stream(t.device())));
  } else {
    HostWait wait("in a broadcast", n);
    plugin_call(g_mpi->broadcast, impl_->comm, t.raw_data(),
                n * static_cast<std::int64_t>(dtype_size(t.dtype())), root);
  }
  t.bump_version();
}

std::string Group::broadcast(std::string bytes, int root) {
  check(root >= 0 && root < size_, kWhere, "broadcast from rank ", root, " in a world of ", size_);
  if (size_ == 1) return bytes;
  HostWait wait("in a broadcast");
  std::uint64_t len = bytes.size();
  plugin_call(g_mpi->broadcast, impl_->comm, static_cast<void*>(&len),
              static_cast<std::int64_t>(sizeof len), root);
  bytes.resize(len);
  plugin_call(g_mpi->broadcast, impl_->comm, static_cast<void*>(bytes.data()),
              static_cast<std::int64_t>(len), root);
  return bytes;
}

namespace {

// A barrier on an MPI communicator that waits asleep, not spinning: the ranks that arrive first
// leave their cores to the others (a rank 0 still writing its files, on a machine with as many
// cores as ranks). `waiting(seconds so far)` is called between the tests.
void sleep_in_barrier(void* comm, const std::function<void(double)>& waiting = {}) {
  void* request = nullptr;
  plugin_call(g_mpi->barrier_start, comm, &request);
  const auto start = std::chrono::steady_clock::now();
  for (int done = 0;;) {
    plugin_call(g_mpi->barrier_test, request, &done);
    if (done) return;
    if (waiting)
      waiting(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

void Group::barrier(bool watched) {
  if (size_ == 1) return;
  std::optional<HostWait> wait;
  if (watched) wait.emplace("in a barrier");
  sleep_in_barrier(impl_->comm);
}

void Group::check_same(const std::vector<std::pair<std::string, std::string>>& fields) {
  if (size_ == 1) return;
  const double count = static_cast<double>(fields.size());
  const std::vector<double> lo = all_reduce({count}, ReduceOp::min);
  const std::vector<double> hi = all_reduce({count}, ReduceOp::max);
  if (lo[0] != hi[0])
    throw SharedError(kWhere, detail::cat("ranks disagree on their configuration: between ", lo[0],
                                          " and ", hi[0], " fields"));
  const std::size_t k = fields.size();
  std::vector<std::uint64_t> mine(k), all(k * static_cast<std::size_t>(size_));
  for (std::size_t i = 0; i < k; ++i) mine[i] = fingerprint(fields[i].first, fields[i].second);
  {
    HostWait wait("in an all-gather", static_cast<std::int64_t>(k));
    plugin_call(g_mpi->all_gather_u64, impl_->comm, static_cast<const std::uint64_t*>(mine.data()),
                static_cast<int>(k), all.data());
  }
  for (std::size_t i = 0; i < k; ++i) {
    for (int r = 1; r < size_; ++r) {
      if (all[static_cast<std::size_t>(r) * k + i] == all[i]) continue;
      // Every rank found the same (field, rank): both values travel to everyone.
      const std::string name = broadcast(fields[i].first, 0);
      const std::string v0 = broadcast(fields[i].second, 0);
      const std::string vr = broadcast(fields[i].second, r);
      const std::string name_r = broadcast(fields[i].first, r);
      if (name_r != name)
        throw SharedError(
            kWhere, detail::cat("ranks disagree on their configuration: field ", i, " is '", name,
                                "' on rank 0, '", name_r, "' on rank ", r));
      throw SharedError(kWhere, detail::cat("ranks disagree on '", name, "': ", v0, " on rank 0, ",
                                            vr, " on rank ", r));
    }
  }
}

std::optional<std::pair<int, int>> Group::find_same(const std::string& value) {
  if (size_ == 1) return std::nullopt;
  const std::uint64_t mine = fingerprint(std::string_view(value));
  std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
  {
    HostWait wait("in an all-gather", 1);
    plugin_call(g_mpi->all_gather_u64, impl_->comm, &mine, 1, all.data());
  }
  for (int i = 0; i < size_; ++i) {
    for (int j = i + 1; j < size_; ++j) {
      if (all[static_cast<std::size_t>(j)] != all[static_cast<std::size_t>(i)]) continue;
      // Equal hashes: the values themselves decide (every rank makes the same broadcasts, in
      // this order).
      const std::string first = broadcast(value, i);
      const std::string second = broadcast(value, j);
      if (first == second) return std::pair{i, j};
    }
  }
  return std::nullopt;
}

std::optional<std::pair<int, std::string>> Group::first_problem(const std::string& problem) {
  if (size_ == 1) return problem.empty() ? std::nullopt : std::optional{std::pair{0, problem}};
  const double none = size_;
  const double first =
      all_reduce({problem.empty() ? none : static_cast<double>(rank_)}, ReduceOp::min)[0];
  if (first >= none) return std::nullopt;
  const int r = static_cast<int>(first);
  return std::pair{r, broadcast(problem, r)};
}

// ---- the watchdog ------------------------------------------------------------------------------

double seconds_from_environment(const char* name, double fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  check(end != text && *end == '\0' && v >= 0 && std::isfinite(v), kWhere, name, "=", text,
        " is not a number of seconds (0 or more; 0: no limit)");
  return v;
}

void on_watchdog(std::function<void(const std::string& why)> f) {
  Watchdog& w = watchdog();
  std::lock_guard<std::mutex> lock(w.hook_mu);
  w.hook = std::move(f);
}

namespace {

constexpr double kDefaultTimeout = 1800;  // LATENT_DIST_TIMEOUT's default, in seconds
double g_end_timeout = 0;                 // LATENT_DIST_END_TIMEOUT, read when the Session began
constexpr int kLastActSeconds = 60;       // what on_watchdog's function is given

// Says why, runs the program's last act (on_watchdog), and ends the job.
[[noreturn]] void watchdog_ends_job(const std::string& why) {
  claim_the_end();
  const Group& g = world();
  std::fprintf(stderr, "latent [rank %d of %d]: %s\n", g.rank(), g.size(), why.c_str());
  std::fflush(stderr);
  // The job ends even when the last act hangs (a file system that no longer answers).
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(kLastActSeconds));
    std::fprintf(stderr,
                 "latent: the program's last act (dist::on_watchdog) did not end within %d s\n",
                 kLastActSeconds);
    std::fflush(stderr);
    if (g_mpi && g_mpi->initialized()) g_mpi->abort(1);
    std::_Exit(1);
  }).detach();
  Watchdog& w = watchdog();
  {
    std::lock_guard<std::mutex> lock(w.hook_mu);
    if (w.hook) {
      try {
        w.hook(why);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "latent [rank %d of %d]: while ending the job: %s\n", g.rank(),
                     g.size(), e.what());
      }
    }
  }
  std::fflush(stderr);
  data::remove_pending_temporaries();  // the Session's thread's writes under way, if any
  // MPI_Abort from this thread while the Session's thread may be inside another MPI call: the
  // thread level asked for (funneled) does not allow it, but Open MPI ends the job all the same,
  // and nothing else is left to do.
  if (g_mpi && g_mpi->initialized()) g_mpi->abort(1);
  std::_Exit(1);
}

// The watchdog's thread: every tick, the world's NCCL communicators' own errors, and how long
// the Session's thread has waited in its current collective. Halfway to the limit (after 5
// minutes at most, or with no limit) a wait is told once: every rank that waits says so, so the
// rank that does not is the one stuck, told while it can still be looked at.
void watch(Watchdog& w) {
  const double tick = w.limit > 0 ? std::clamp(w.limit / 10, 0.05, 1.0) : 1.0;
  const double notice = w.limit > 0 ? std::min(300.0, w.limit / 2) : 300.0;
  std::uint64_t told = 0;  // the serial of the wait last told
  std::unique_lock<std::mutex> lock(w.mu);
  while (!w.stop) {
    w.wake.wait_for(lock, std::chrono::duration<double>(tick));
    if (w.stop) break;
    if (const std::string err = world().nccl_error(); !err.empty())
      watchdog_ends_job(err + "; ending the job");
    const HostWaitSeen seen = host_wait_seen();
    if (seen.serial == 0) continue;
    const std::string values = seen.count >= 0 ? detail::cat(" of ", seen.count, " values") : "";
    if (seen.serial != told && seen.seconds >= notice) {
      told = seen.serial;
      const Group& g = world();
      std::fprintf(
          stderr, "%s\n",
          detail::cat(
              "latent [rank ", g.rank(), " of ", g.size(), "]: still waiting after ", notice, " s ",
              seen.what, values, seen.collective ? ", which every rank must join" : "",
              ": a rank that does not say the same is stuck or gone",
              w.limit > 0 ? detail::cat(" (the job ends after LATENT_DIST_TIMEOUT=", w.limit, " s)")
                          : std::string(" (LATENT_DIST_TIMEOUT=0: no limit)"))
              .c_str());
      std::fflush(stderr);
    }
    if (w.limit <= 0 || seen.seconds < w.limit) continue;
    watchdog_ends_job(detail::cat(
        "waited ", static_cast<long long>(seen.seconds), " s ", seen.what, values,
        seen.collective ? ", which every rank must join" : "", " (LATENT_DIST_TIMEOUT=", w.limit,
        " s): another rank is stuck, or gone without ending the job; ending the job"));
  }
}

void start_watchdog(double limit) {
  watch_host_waits_of_this_thread();
  Watchdog& w = watchdog();
  std::lock_guard<std::mutex> lock(w.mu);
  if (w.thread) return;
  w.stop = false;
  w.limit = limit;
  w.thread = new std::thread(watch, std::ref(w));
}

void stop_watchdog() {
  Watchdog& w = watchdog();
  std::thread* t = nullptr;
  {
    std::lock_guard<std::mutex> lock(w.mu);
    w.stop = true;
    t = std::exchange(w.thread, nullptr);
  }
  w.wake.notify_all();
  if (t) {
    t->join();
    delete t;
  }
}

}  // namespace

// ---- session -------------------------------------------------------------------------------

namespace {

// How many ranks of `w` run on this machine: each puts 52 bits of its machine's fingerprint at
// its own place (an integer a double holds exactly, never 0), and a sum gathers them all.
int ranks_on_this_machine(Group& w) {
  std::vector<double> ids(static_cast<std::size_t>(w.size()), 0.0);
  const double mine =
      static_cast<double>((dist::fingerprint(std::string_view(machine_id())) >> 12) | 1);
  ids[static_cast<std::size_t>(w.rank())] = mine;
  ids = w.all_reduce(std::move(ids), ReduceOp::sum);
  return static_cast<int>(std::count(ids.begin(), ids.end(), mine));
}

}  // namespace

Session::Session(int* argc, char*** argv) {
  check(!g_session, kWhere, "a Session is already alive: make one per process, in main");
  // Refused before anything else, on every rank alike (the launcher gives each the same).
  const double timeout = seconds_from_environment("LATENT_DIST_TIMEOUT", kDefaultTimeout);
  g_end_timeout = seconds_from_environment("LATENT_DIST_END_TIMEOUT", 0);
  const Launch l = detect_launch();
  if (const std::string why = launch_refusal(l, built_with_mpi()); !why.empty())
    throw Error(kWhere, why);
  if (l.tasks_alone > 1 && l.task == 0)
    std::fprintf(stderr, "latent: note: %s\n", tasks_alone_note(l).c_str());
  if (!l.launched || !built_with_mpi()) {  // a world of one: MPI is never loaded
    g_session = true;
    return;
  }
  // Under a launcher: the MPI plugin joins its world (a launch of one rank runs alone when the
  // plugin cannot be loaded; a launch of several cannot).
  const latent_mpi_api* api = nullptr;
  try {
    api = &mpi_api();
  } catch (const Error& e) {
    std::string why = e.what();
    if (why.rfind("[dist] ", 0) == 0) why.erase(0, 7);
    if (l.size > 1)
      throw Error(kWhere, detail::cat("started as one of ", l.size, " ranks (", l.variable,
                                      "), but ", why));
    g_session = true;
    return;
  }
  plugin_call(api->init, argc, argv);
  g_mpi = api;
  int rank = 0, size = 1, local = 0;
  Group& w = world();
  try {
    plugin_call(api->world, &w.impl_->comm, &rank, &size, &local);
  } catch (const Error& e) {
    // MPI is initialized and the other ranks wait in the same calls: end the whole job.
    dist::abort(1, e.what());
  }
  w.rank_ = rank;
  w.size_ = size;
  w.local_rank_ = local;
  ++w.revision_;
  g_session = true;
  if (size > 1) {
    try {
      w.local_size_ = ranks_on_this_machine(w);
    } catch (const Error& e) {
      dist::abort(1, e.what());
    }
    if (!std::getenv("OMP_NUM_THREADS"))
      kernels::cpu::set_cpu_threads(rank_cpu_threads(
          kernels::cpu::online_processors(), kernels::cpu::usable_processors(), w.local_size_));
    start_watchdog(timeout);
  }
}

namespace {

// Registered when an exception leaves a Session of several ranks: the job ends at exit.
void abort_at_exit() {
  const Group& w = world();
  std::fprintf(stderr,
               "latent [rank %d of %d]: an exception left dist::Session on this rank; ending the "
               "job (catch it inside and call dist::abort to end it at once)\n",
               w.rank(), w.size());
  std::fflush(stderr);
  if (g_mpi && g_mpi->initialized()) g_mpi->abort(1);
}

// The ranks of a world of several meet here before the teardown. A rank that failed and returned
// normally (instead of through abort()) leaves the others in a collective, and this rank would
// wait in MPI_Finalize for ever without a word: it waits here instead, says so after 30 seconds
// and ends the job after LATENT_DIST_END_TIMEOUT seconds when that is set.
void meet_at_end(Group& w, void* comm) {
  const double limit = g_end_timeout;  // 0: for ever
  const double notice = limit > 0 ? std::min(30.0, limit) : 30.0;
  bool told = false;
  try {
    sleep_in_barrier(comm, [&](double waited) {
      if (!told && waited >= notice) {
        std::fprintf(
            stderr,
            "latent [rank %d of %d]: waiting at the end for the other ranks (%.0f s so "
            "far): one may be waiting in a collective for this one; a rank that fails "
            "must end the job (dist::abort), not return. LATENT_DIST_END_TIMEOUT=<seconds> "
            "ends the job after such a wait\n",
            w.rank(), w.size(), waited);
        std::fflush(stderr);
        told = true;
      }
      if (limit > 0 && waited >= limit)
        dist::abort(1, detail::cat("the other ranks did not reach the end within "
                                   "LATENT_DIST_END_TIMEOUT=",
                                   limit, " s: ending the job"));
    });
  } catch (const Error& e) {  // MPI_Finalize is still called
    std::fprintf(stderr, "latent [rank %d of %d]: %s\n", w.rank(), w.size(), e.what());
  }
}

}  // namespace

Session::~Session() {
  stop_watchdog();  // the waits from here on are the end's own
  Group& w = world();
  if (std::uncaught_exceptions() > 0 && w.size() > 1) {
    // The other ranks may wait for this one in a collective, and MPI_Finalize and NCCL's
    // teardown with them: neither is called; the job ends as the process exits, after whatever
    // catches the exception has reported it.
    g_session = false;
    std::atexit(abort_at_exit);
    return;
  }
  if (w.size() > 1) meet_at_end(w, w.impl_->comm);
  // The NCCL communicators go before MPI and the CUDA pools; the world is this process again.
  w.impl_->close();
  loopback().impl_->close();
  ++loopback().revision_;  // a recorded step that held its communicator records anew
  w.rank_ = 0;
  w.size_ = 1;
  w.local_rank_ = 0;
  w.local_size_ = 1;
  ++w.revision_;
  if (g_mpi) g_mpi->finalize();
  g_session = false;
}

[[noreturn]] void abort(int code, const std::string& message) {
  claim_the_end();
  const Group& w = world();
  std::fprintf(stderr, "latent [rank %d of %d]: %s\n", w.rank(), w.size(), message.c_str());
  std::fflush(stderr);
  if (g_mpi && g_mpi->initialized()) g_mpi->abort(code);
  std::exit(code);
}

bool mpi_loaded() {
  return g_mpi != nullptr;
}

const RowShard* shared_batch() {
  const RowShard* s = current_row_shard();
  return s != nullptr && s->group != nullptr && s->count < s->total && s->group->exchanges()
             ? s
             : nullptr;
}

Tensor whole_batch_mean(const Tensor& share_mean) {
  const RowShard* s = shared_batch();
  if (s == nullptr) return share_mean;
  Tensor delta;  // the whole batch's mean minus the share's, a constant for autograd
  {
    NoGradGuard no_grad;
    Tensor whole =
        mul(share_mean.detach(), static_cast<double>(s->count) / static_cast<double>(s->total));
    s->group->all_reduce(whole, ReduceOp::sum);
    delta = sub(whole, share_mean.detach());
  }
  return add(share_mean, delta);
}

std::uint64_t fingerprint(const std::vector<Tensor>& tensors) {
  std::uint64_t h = kFnvBasis;
  constexpr std::int64_t kChunk = 4096;  // rows read at a time
  for (const Tensor& t : tensors) {
    dispatch::check_defined("fingerprint", {&t});
    const std::int64_t rows = t.ndim() >= 2 ? t.dim(0) : 1;
    for (std::int64_t start = 0; start < rows; start += kChunk) {
      const std::vector<float> v =
          (t.ndim() >= 2 ? t.rows(start, std::min(kChunk, rows - start)) : t).to_vector<float>();
      fnv_mix(h, reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(float));
    }
  }
  return h;
}

Device rank_device(const std::string& value, const std::string& who, const std::string& flag) {
  Group& w = world();
  if (w.size() == 1) return value == "auto" ? Device::best() : Device::parse(value);
  const std::string given = (flag.empty() ? "device " : flag + " ") + value;  // for messages
  // This rank's device, or why it cannot have it (a GPU it does not see, a cuda:N it lacks): told
  // to every rank (none is left waiting in the checks below for a rank that threw alone), the
  // lowest such rank's reason the same refusal everywhere.
  Device d = Device::cpu();
  std::string problem, mine;
  try {
    const int gpus = value == "cuda" || value == "auto" ? cuda_device_count() : 0;
    if (value == "cuda" || (value == "auto" && gpus > 0)) {
      if (gpus == 0)
        problem = detail::cat("rank ", w.rank(), " sees no CUDA GPU",
                              cuda_compiled() ? "" : " (this latent was built without CUDA)");
      else
        d = Device::cuda(w.local_rank() % gpus);
    } else {
      d = Device::parse(value == "auto" ? "cpu" : value);
    }
    // The physical GPU and its machine; a CPU rank a value of its own.
    mine = d.is_cuda() ? cuda_bus_id(d.index()) + " of " + machine_id()
                       : "none (CPU rank " + std::to_string(w.rank()) + ")";
  } catch (const Error& e) {
    problem = detail::cat("rank ", w.rank(), ": ", e.what());
  }
  if (const auto first = w.first_problem(problem))
    throw SharedError(who, detail::cat(given, ": ", first->second));
  // GPU ranks reduce through NCCL, CPU ranks through MPI: one kind for all, refused at start.
  w.check_same({{flag.empty() ? std::string("the device") : detail::cat("the device (", flag, ")"),
                 d.is_cuda() ? "cuda" : "cpu"}});
  // Two ranks on one GPU: every rank takes part.
  if (const auto two = w.find_same(mine)) {
    const std::string shared = w.broadcast(mine.substr(0, mine.find('\n')), two->first);
    throw SharedError(who, detail::cat("ranks ", two->first, " and ", two->second,
                                       " would both use the GPU ", shared, " (", given,
                                       "): every rank needs a GPU of its own; start at most one "
                                       "process per GPU"));
  }
  return d;
}

std::uint64_t fingerprint(std::string_view bytes) {
  std::uint64_t h = kFnvBasis;
  fnv_mix(h, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return h;
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
