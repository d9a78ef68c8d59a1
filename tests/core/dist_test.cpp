// core/dist in a world of one (no launcher, no MPI call): launch detection from the environment,
// the refusal of a build without MPI under a launcher, the shares of a batch, and collectives
// that do nothing. The collectives across processes: tests/dist (run under mpirun).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/dispatch.h"
#include "core/host_wait.h"
#include "core/latent.h"

namespace latent::dist {
namespace {

Launch launch_with(const std::map<std::string, std::string>& env) {
  return detect_launch([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Dist, DetectsTheLauncherFromTheEnvironment) {
  const Launch none = launch_with({});
  EXPECT_FALSE(none.launched);
  EXPECT_EQ(none.size, 1);
  EXPECT_EQ(none.rank, 0);

  const Launch ompi = launch_with({{"OMPI_COMM_WORLD_SIZE", "4"},
                                   {"OMPI_COMM_WORLD_RANK", "3"},
                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  EXPECT_TRUE(ompi.launched);
  EXPECT_EQ(ompi.size, 4);
  EXPECT_EQ(ompi.rank, 3);
  EXPECT_EQ(ompi.local_rank, 1);
  EXPECT_EQ(ompi.variable, "OMPI_COMM_WORLD_SIZE=4");

  const Launch pmi = launch_with({{"PMI_SIZE", "2"}, {"PMI_RANK", "1"}, {"SLURM_LOCALID", "1"}});
  EXPECT_TRUE(pmi.launched);
  EXPECT_EQ(pmi.size, 2);
  EXPECT_EQ(pmi.rank, 1);
  EXPECT_EQ(pmi.local_rank, 1);

  const Launch pmix = launch_with({{"PMIX_RANK", "5"}, {"SLURM_STEP_NUM_TASKS", "8"}});
  EXPECT_TRUE(pmix.launched);
  EXPECT_EQ(pmix.size, 8);
  EXPECT_EQ(pmix.rank, 5);

  // srun without an MPI interface: each task runs alone, a world of one, told so.
  const Launch alone =
      launch_with({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "4"}});
  EXPECT_FALSE(alone.launched);
  EXPECT_EQ(alone.size, 1);
  EXPECT_EQ(alone.rank, 0);
  EXPECT_EQ(alone.tasks_alone, 4);
  EXPECT_EQ(alone.task, 2);
  const std::string note = tasks_alone_note(alone);
  EXPECT_NE(note.find("SLURM_STEP_NUM_TASKS=4"), std::string::npos) << note;
  EXPECT_NE(note.find("srun --mpi=pmix"), std::string::npos) << note;
  EXPECT_EQ(launch_refusal(alone, false), "");  // each runs alone: nothing to refuse
  // A batch script's own step (SLURM_NTASKS, no step count) and a step of one task are a process
  // alone with nothing to say; with PMIx the tasks join.
  EXPECT_EQ(launch_with({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}}).tasks_alone, 0);
  EXPECT_EQ(launch_with({{"SLURM_STEP_NUM_TASKS", "1"}}).tasks_alone, 0);
  EXPECT_EQ(tasks_alone_note(none), "");
  const Launch joined = launch_with({{"PMIX_RANK", "1"}, {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_TRUE(joined.launched);
  EXPECT_EQ(joined.tasks_alone, 0);

  // Garbage reads as a world of one, launched (so a build without MPI still runs it alone).
  const Launch bad = launch_with({{"OMPI_COMM_WORLD_SIZE", "two"}});
  EXPECT_TRUE(bad.launched);
  EXPECT_EQ(bad.size, 1);
}

TEST(Dist, ABuildWithoutMpiRefusesMoreThanOneRank) {
  const Launch two = launch_with({{"OMPI_COMM_WORLD_SIZE", "2"}, {"OMPI_COMM_WORLD_RANK", "0"}});
  const std::string why = launch_refusal(two, false);
  EXPECT_NE(why.find("built without MPI"), std::string::npos) << why;
  EXPECT_NE(why.find("OMPI_COMM_WORLD_SIZE=2"), std::string::npos) << why;
  EXPECT_EQ(launch_refusal(two, true), "");
  EXPECT_EQ(launch_refusal(launch_with({{"OMPI_COMM_WORLD_SIZE", "1"}}), false), "");
  EXPECT_EQ(launch_refusal(launch_with({}), false), "");
}

// Without a launcher a Session loads no MPI: the program links none (its plugin is loaded only
// under a launcher), so a process alone needs no MPI installed.
TEST(Dist, AProcessAloneLoadsNoMpi) {
  if (detect_launch().launched) GTEST_SKIP() << "started by a launcher";
  int argc = 0;
  char** argv = nullptr;
  {
    Session session(&argc, &argv);
    EXPECT_FALSE(mpi_loaded());
    EXPECT_EQ(world().size(), 1);
    std::ifstream maps("/proc/self/maps");
    const std::string text((std::istreambuf_iterator<char>(maps)),
                           std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("libmpi"), std::string::npos);
    EXPECT_EQ(text.find("libnccl"), std::string::npos);
    EXPECT_EQ(text.find("liblatent_mpi"), std::string::npos);
  }
  // A loopback group's CPU tensors have nothing to exchange: untouched, without a plugin.
  const Tensor t = Tensor::from_data(std::vector<float>{1, 2, 3}, {3});
  loopback().all_reduce(t, ReduceOp::mean);
  loopback().broadcast(t);
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(loopback().size(), 1);
}

// The NCCL library's version is read through its plugin without a GPU; a build with NCCL needs
// 2.10 or later (ncclAvg, graph capture), and one without says so.
TEST(Dist, NcclVersionIsReadWithoutAGpu) {
  if (!built_with_nccl()) {
    EXPECT_THROW(nccl_version(), Error);
    return;
  }
  const std::string v = nccl_version();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(v, m, std::regex("([0-9]+)\\.([0-9]+)\\.([0-9]+)"))) << v;
  const int major = std::stoi(m[1]), minor = std::stoi(m[2]);
  EXPECT_TRUE(major > 2 || (major == 2 && minor >= 10)) << v;
}

TEST(Dist, SharesAreContiguousAndCoverTheBatch) {
  for (const int size : {1, 2, 3, 7}) {
    for (const std::int64_t n : {0, 1, 5, 128, 97}) {
      std::int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const Share s = share(n, r, size);
        EXPECT_EQ(s.first, next) << n << " " << r << "/" << size;
        EXPECT_GE(s.count, n / size);
        EXPECT_LE(s.count, n / size + 1);
        next += s.count;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_EQ(share(128, 1, 2).first, 64);
  EXPECT_EQ(share(128, 1, 2).count, 64);
  EXPECT_THROW(share(10, 2, 2), Error);
  EXPECT_THROW(share(-1, 0, 2), Error);
}

// The hash ranks compare is 64-bit FNV-1a (its published values), the same on every machine.
TEST(Dist, FingerprintOfBytesIsFnv1a) {
  EXPECT_EQ(fingerprint(std::string_view("")), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fingerprint(std::string_view("a")), 0xaf63dc4c8601ec8cULL);
  EXPECT_NE(fingerprint(std::string_view("ab")), fingerprint(std::string_view("ba")));
}

// A rank's CPU threads: its share of the machine's processors, at least 1, at most what its
// binding leaves it.
TEST(Dist, RankCpuThreadsShareTheMachine) {
  EXPECT_EQ(rank_cpu_threads(16, 16, 2), 8);  // unbound: half each
  EXPECT_EQ(rank_cpu_threads(16, 16, 3), 5);
  EXPECT_EQ(rank_cpu_threads(16, 1, 2), 1);  // bound to a core
  EXPECT_EQ(rank_cpu_threads(16, 8, 8), 2);  // bound to a socket of 8, 8 ranks on the machine
  EXPECT_EQ(rank_cpu_threads(2, 2, 3), 1);   // more ranks than processors
  EXPECT_EQ(rank_cpu_threads(0, 0, 0), 1);   // nonsense counts: one thread
}

// Without a launcher the world is this process: every collective returns at once, no kernel runs.
TEST(Dist, AWorldOfOneDoesNothing) {
  Group& w = world();
  EXPECT_EQ(w.size(), 1);
  EXPECT_EQ(w.rank(), 0);
  EXPECT_TRUE(w.is_root());
  Tensor t = Tensor::full({5}, 3.0);
  const dispatch::KernelCounts before = dispatch::kernel_counts();
  w.all_reduce(t, ReduceOp::mean);
  w.broadcast(t);
  w.barrier();
  EXPECT_EQ(dispatch::kernel_counts().calls, before.calls);
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(5, 3.0f));
  EXPECT_EQ(w.all_reduce({1.0, 2.0}, ReduceOp::sum), (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(w.broadcast(std::string("abc")), "abc");
  w.check_same({{"batch", "128"}});
  EXPECT_EQ(w.find_same("cuda:0"), std::nullopt);
  EXPECT_EQ(self().size(), 1);
  EXPECT_EQ(w.local_size(), 1);
}

// The watchdog's timeouts: a number of seconds, 0 for no limit, the fallback when unset or empty;
// anything else refused, naming the variable and its value.
TEST(Dist, SecondsFromTheEnvironment) {
  constexpr const char* kName = "LATENT_TEST_SECONDS";
  ::unsetenv(kName);
  EXPECT_EQ(seconds_from_environment(kName, 1800), 1800);
  for (const auto& [text, seconds] : std::vector<std::pair<std::string, double>>{
           {"", 1800}, {"0", 0}, {"2.5", 2.5}, {"60", 60}}) {
    ::setenv(kName, text.c_str(), 1);
    EXPECT_EQ(seconds_from_environment(kName, 1800), seconds) << text;
  }
  for (const std::string bad : {"soon", "-1", "inf", "nan", "3s", " "}) {
    ::setenv(kName, bad.c_str(), 1);
    try {
      seconds_from_environment(kName, 1800);
      ADD_FAILURE() << bad << " was taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(kName) + "=" + bad +
                                           " is not a number of seconds"),
                std::string::npos)
          << e.what();
    }
  }
  ::unsetenv(kName);
}

// What the watchdog sees: the watched thread's wait under way (what, how many values, since
// when), nothing once it ends, and nothing of another thread's waits.
TEST(Dist, HostWaitsOfTheWatchedThreadAreSeen) {
  watch_host_waits_of_this_thread();
  EXPECT_EQ(host_wait_seen().serial, 0u);
  std::uint64_t first = 0;
  {
    HostWait wait("in an all-reduce", 3000);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const HostWaitSeen seen = host_wait_seen();
    ASSERT_NE(seen.serial, 0u);
    EXPECT_STREQ(seen.what, "in an all-reduce");
    EXPECT_EQ(seen.count, 3000);
    EXPECT_TRUE(seen.collective);
    EXPECT_GE(seen.seconds, 0.019);
    EXPECT_LT(seen.seconds, 60);
    first = seen.serial;
  }
  EXPECT_EQ(host_wait_seen().serial, 0u);
  {
    HostWait wait("for the GPU's queued work", -1, /*collective=*/false);
    const HostWaitSeen seen = host_wait_seen();
    EXPECT_NE(seen.serial, first);  // another wait
    EXPECT_EQ(seen.count, -1);
    EXPECT_FALSE(seen.collective);
    EXPECT_LT(seen.seconds, 60);
  }
  std::thread([] {
    HostWait wait("in a broadcast", 1);
    EXPECT_EQ(host_wait_seen().serial, 0u);
  }).join();
}

}  // namespace
}  // namespace latent::dist
