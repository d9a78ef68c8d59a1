// Data parallelism across processes: who this process is among the ranks a launcher started
// (mpirun, srun), and the collectives on tensors that make N processes train as one.
//
//   int main(int argc, char** argv) {
//     latent::dist::Session session(&argc, &argv);   // MPI_Init under a launcher, else nothing
//     latent::dist::Group& world = latent::dist::world();
//     world.all_reduce(grads, latent::dist::ReduceOp::mean);   // in place, on every rank
//   }
//
// A process started without a launcher is a world of one: it never loads MPI, and every
// collective returns at once without a kernel. Under a launcher, a build with MPI (LATENT_MPI)
// joins the launcher's world: the CPU reduces through MPI, a GPU through NCCL (one communicator
// per device, created on its first collective: rank 0's unique id broadcast over MPI). Debian's
// Open MPI is not CUDA-aware, so device memory never reaches MPI. A build without MPI started by a
// launcher with more than one rank refuses to run (each process would train alone and write the
// same files).
//
// MPI and NCCL live in two plugins, liblatent_mpi.so and liblatent_nccl.so, loaded when needed
// (the first by a Session under a launcher, the second by the first collective on a GPU): a
// latent program links neither library, so a process alone needs neither installed. A plugin is
// looked for at the path LATENT_MPI_PLUGIN (LATENT_NCCL_PLUGIN) names, else beside the program and
// in its ../lib, in the build's and the installation's library folders, then on LD_LIBRARY_PATH;
// a launch of several ranks that cannot load it is refused, naming every place tried.
//
// all_reduce on a tensor is recordable: a CPU plan makes the MPI call again at every replay, and
// a GPU capture puts the NCCL call in the CUDA graph. Every rank must make the same collectives
// in the same order; a rank that fails must end the job (abort()), never return normally while
// others wait in a collective.
//
// Errors (latent::Error "[dist] ..."): a collective on a tensor of another device kind than the
// communicators support (a GPU tensor in a build without NCCL), an MPI or NCCL call that fails
// (its message named), ranks that disagree in check_same (the field and both values named; a
// SharedError, raised by every rank alike).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/random.h"
#include "core/tensor.h"

namespace latent::dist {

// What the environment says about the launch. Variables read: OMPI_COMM_WORLD_SIZE / _RANK /
// _LOCAL_RANK (Open MPI), PMI_SIZE / PMI_RANK (MPICH, srun --mpi=pmi2), PMIX_RANK with
// SLURM_STEP_NUM_TASKS or SLURM_NTASKS (srun --mpi=pmix), SLURM_LOCALID. An srun step of several
// tasks with none of the MPI variables (srun without --mpi=pmix where slurm.conf's MpiDefault is
// none) has no MPI interface to join its tasks: each runs alone, a world of one (they may be
// independent runs on purpose), and `tasks_alone` says how many there are.
struct Launch {
  bool launched = false;  // a launcher started this process (even as a world of one)
  int size = 1;
  int rank = 0;
  int local_rank = 0;
  std::string variable;  // the variable that said so ("OMPI_COMM_WORLD_SIZE=2"), for messages
  int tasks_alone = 0;   // > 1: the tasks of an srun step no MPI interface joins
                         // (SLURM_STEP_NUM_TASKS, also in `variable`); 0 otherwise
  int task = 0;          // then this task's index among them (SLURM_PROCID)
};
// The note for a launch whose tasks run alone (tasks_alone > 1), "" otherwise: each task is a
// world of one, and `srun --mpi=pmix` makes them one job. Session prints it on the first task.
std::string tasks_alone_note(const Launch& l);
Launch detect_launch(const std::function<const char*(const char*)>& getenv);
Launch detect_launch();  // from the process's environment

// The device of this rank, from a --device value: "auto" (the best one), "cpu", "cuda" or
// "cuda:N". In a world of one, the value as given ("auto": Device::best()). Across processes,
// "auto" (on machines with GPUs) and "cuda" mean the GPU of the rank on its machine: cuda:<local
// rank>, modulo the GPUs the process sees (so cuda:0 where a launcher gives every rank its own
// through CUDA_VISIBLE_DEVICES: srun --gpus-per-task=1). Collective over world(): the ranks must
// all be on GPUs or all on CPUs, and two ranks on one GPU (its PCI bus id on one machine, told
// apart by host name and boot id; MIG instances of one GPU count as one) are refused on every rank
// alike (SharedError), naming both ranks and the GPU, before any data is read: NCCL would refuse
// them only at its first collective, or share the GPU. `who` and `flag` name the command and its
// flag in messages ("train", "--device"; "" for none). A GPU asked of a rank that sees none is
// refused on every rank alike too (SharedError, naming the lowest such rank).
Device rank_device(const std::string& value, const std::string& who, const std::string& flag);

// This machine's name (gethostname; "?" when it has none): what tells the ranks' machines apart
// in messages and records.
std::string host_name();

// The CPU threads (OpenMP's) of a rank that shares its machine with others, `ranks_here` ranks
// in all: its share of the machine's `online` processors, at least 1 and at most the `usable`
// ones its launcher's binding leaves it. A Session of several ranks sets it on each rank unless
// OMP_NUM_THREADS is set: unbound (mpirun --bind-to none, srun without binding), every rank would
// otherwise start a thread per processor of the machine, and N ranks oversubscribe it N times.
int rank_cpu_threads(int online, int usable, int ranks_here);

// How this library was built.
bool built_with_mpi();
bool built_with_nccl();
// The NCCL library's version ("2.28.9"), loading the NCCL plugin (no GPU needed). Throws
// latent::Error in a build without NCCL, or when the plugin or its libnccl cannot be loaded.
std::string nccl_version();
// Why Session refuses launch `l` in a build with or without MPI ("" when it joins or runs alone):
// more than one rank without MPI.
std::string launch_refusal(const Launch& l, bool with_mpi);

enum class ReduceOp { sum, mean, min, max };

// An error every rank of a group raises alike, at the same point (check_same's refusal): no rank
// is left waiting in a collective, so a program may end every rank normally, rank 0 reporting it,
// instead of through abort().
class SharedError : public Error {
 public:
  using Error::Error;
};

// A communicator: the ranks of a launch (world()), or this process alone (self()).
class Group {
 public:
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  ~Group();

  int rank() const { return rank_; }
  int size() const { return size_; }
  // The rank among the processes of this machine: the GPU a rank uses.
  int local_rank() const { return local_rank_; }
  // How many of the group's ranks run on this machine (this one included).
  int local_size() const { return local_size_; }
  bool is_root() const { return rank_ == 0; }
  // Whether its collectives reach a communicator: more than one rank, or loopback().
  bool exchanges() const { return size_ > 1 || loopback_; }
  // Changes whenever the group's ranks change (a Session starts or ends): a recorded step that
  // made collectives in it is recorded again.
  std::uint64_t revision() const { return revision_; }

  // t = op over the ranks of t, in place (float32 or float64 on the CPU, float32 on a GPU).
  // Recordable (see the top of this file); counted as one kernel call. Nothing in a world of one.
  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum);
  // Host values: every rank gets op over the ranks, element by element.
  std::vector<double> all_reduce(std::vector<double> values, ReduceOp op);
  // t = rank root's t on every rank, in place. Refused while recording.
  void broadcast(const Tensor& t, int root = 0);
  // Bytes from rank root (its `bytes` are kept; the others' are replaced).
  std::string broadcast(std::string bytes, int root = 0);
  // Every rank waits here for the others (asleep, not spinning on a core). `watched`: the wait
  // counts against the Session's watchdog (LATENT_DIST_TIMEOUT); false where the ranks wait on
  // purpose for one rank's long work of its own (rank 0 writing a run's files).
  void barrier(bool watched = true);
  // An error NCCL found on its own on one of this group's GPU communicators (a rank gone, the
  // network failing: ncclCommGetAsyncError), naming the device; "" when there is none or no
  // communicator. Any thread may ask (the Session's watchdog does, every second).
  std::string nccl_error() const;
  // The NCCL calls of this group's that the CUDA graphs of recorded steps alive hold (each keeps
  // its communicator: a Session that ends while any is held leaves them to the process's end).
  int captured_collectives() const;
  // Collective: throws the same latent::Error on every rank unless every rank passed the same
  // fields (names and values), naming the first field that differs and two of its values:
  //   [dist] ranks disagree on 'batch': 128 on rank 0, 64 on rank 1
  void check_same(const std::vector<std::pair<std::string, std::string>>& fields);
  // Collective: the first two ranks (in order: lowest, then the next that matches it) that passed
  // the same value, the same answer on every rank; nullopt when every rank's value is its own
  // (always in a world of one). What finds two ranks about to share one GPU.
  std::optional<std::pair<int, int>> find_same(const std::string& value);
  // Collective: the lowest rank that passed a non-empty `problem` (why it cannot go on), with
  // that problem, the same answer on every rank; nullopt when every rank passed "". What lets a
  // rank that failed alone make every rank throw, rather than leave them in the next collective.
  std::optional<std::pair<int, std::string>> first_problem(const std::string& problem);

  struct Impl;  // the MPI and NCCL handles (core/dist/dist.cpp)

 private:
  friend Group& world();
  friend Group& self();
  friend Group& loopback();
  friend class Session;
  Group(int rank, int size, int local_rank, std::unique_ptr<Impl> impl, bool loopback = false);
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  bool loopback_ = false;
  std::uint64_t revision_ = 0;
  std::unique_ptr<Impl> impl_;
};

// The ranks of this launch (a world of one without a launcher or without a Session). The same
// object for the whole process: a Session makes it the launch's world while it lives.
Group& world();
// This process alone (size 1), for single-process references beside a world.
Group& self();
// This process alone, but making its collectives on GPU tensors through a NCCL communicator of
// one rank (its CPU tensors have nothing to exchange): the GPU collective path, checkable on a
// machine with one GPU. The NCCL plugin is loaded at its first collective.
Group& loopback();
// Whether a Session loaded the MPI plugin (a launch joined).
bool mpi_loaded();

// Seconds from an environment variable (LATENT_DIST_TIMEOUT, LATENT_DIST_END_TIMEOUT): `fallback`
// when it is unset or empty, 0 for "no limit" ("0"). Throws latent::Error naming the variable and
// its value when it is not a number of seconds (0 or more).
double seconds_from_environment(const char* name, double fallback);

// What a program records on its way out when the watchdog of a Session of several ranks ends the
// job (below): `f(why)` runs on the watchdog's thread just before the job ends (the CLI writes
// run.json "failed" with it), given 60 seconds. The program's own thread is then usually waiting
// in a collective, but not always (after a NCCL error it may be failing too, and recording its
// own failure): what f writes, it must guard against that thread. An empty function removes it;
// replacing or removing it waits for a call under way.
void on_watchdog(std::function<void(const std::string& why)> f);

// Joins the launcher's world for the lifetime of the object (one per process, in main): under a
// launcher with MPI built, loads the MPI plugin and MPI_Init; otherwise nothing. Throws
// latent::Error when started by a launcher with more than one rank in a build without MPI or
// without a loadable MPI plugin (a launch of one rank then runs alone). The destructor waits for
// every rank to get there, then tears the communicators down (the NCCL ones of world() and
// loopback() too) and calls MPI_Finalize. On an error use abort(): a rank that fails and returns
// normally leaves the others waiting in a collective, and itself at the end; a rank waiting there
// says so after 30 seconds, and ends the job once LATENT_DIST_END_TIMEOUT seconds (an environment
// variable; unset or 0: no limit) have passed. An exception leaving the
// Session's scope in a world of more than one (the other ranks may wait in a collective for this
// one) skips both and ends the whole job when the process exits (MPI_Abort, status 1, once a
// handler outside has had its say): no rank hangs. What recorded a collective on
// a GPU (a CompiledStep, a Trainer) should be destroyed before the Session: NCCL waits for the
// CUDA graphs that hold its calls before it lets their communicator go, so a Session that ends
// while one is alive leaves those communicators to the end of the process (and says so) rather
// than wait. A communicator NCCL found an error on is aborted, not destroyed. Communicators no
// Session closes are left to the end of the process.
//
// In a world of several, a watchdog thread ends the job (like abort(), after on_watchdog's
// function) when this rank has waited LATENT_DIST_TIMEOUT seconds (default 1800; 0: no limit) in
// one collective, or for a GPU's queued work (whose collectives wait for every rank): another rank
// is stuck, or gone without ending the job. Halfway (after 300 s at most, or with no limit) it
// says once that the rank still waits, so that the rank that does not say it is found. It also ends
// the job at once when NCCL reports an error of its own on a communicator of the world (a rank
// gone, the network failing), which would otherwise leave the GPU waiting. The waits it sees are
// those of the thread that made the Session. A value of either variable that is not a number of
// seconds is refused here, before anything else.
class Session {
 public:
  Session(int* argc, char*** argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

// Ends the whole job: prints "latent [rank r of N]: message" on stderr and, in a world of more
// than one, MPI_Abort (every rank exits with `code` at once, none is left waiting in a
// collective); in a world of one, std::exit(code).
[[noreturn]] void abort(int code, const std::string& message);

// The live RowShardScope's share when it is part of a batch shared with other ranks (a step or an
// evaluation of a group that exchanges): statistics of the whole batch must then be reduced over
// the group. Null otherwise (one process, or the whole batch).
const RowShard* shared_batch();

// Inside a RowShardScope whose share belongs to a group (a step or an evaluation shared by the
// ranks): the whole batch's mean of a per-row quantity, from `share_mean`, its mean over this
// rank's rows (any shape, e.g. [Z] from mean(h, 0)): the shares' means weighted by their rows and
// all-reduced over the group (recordable: a recorded step reduces again at every replay). Its
// gradient is the share's own mean's, so that the step's weighted average of the ranks' gradients
// is the whole batch's. Elsewhere (one process, the whole batch): share_mean itself. What lets a
// loss that needs the whole batch's statistics (the sparse AE's KL penalty, free bits) be shared.
Tensor whole_batch_mean(const Tensor& share_mean);

// A 64-bit FNV-1a hash of the tensors' values in order (read to the host a few thousand rows at a
// time): what ranks compare (check_same) to see that they hold the same data or parameters.
std::uint64_t fingerprint(const std::vector<Tensor>& tensors);
// The same hash of bytes (a text ranks compare without sending it).
std::uint64_t fingerprint(std::string_view bytes);

// Rank `rank`'s rows of n rows shared by `size` ranks: [floor(rank n / size), floor((rank + 1) n
// / size)), so the shares are contiguous, in rank order, and differ by at most one row.
struct Share {
  std::int64_t first = 0;
  std::int64_t count = 0;
};
Share share(std::int64_t n, int rank, int size);

}  // namespace latent::dist
