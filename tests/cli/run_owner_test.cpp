// Whether the run a run.json says is "running" still runs: its process alive on this machine and
// begun before the run, gone (ended, or its pid now another's), or not to be told (another
// machine, a record that does not say).
#include "apps/run_owner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "apps/run_signal.h"
#include "support/test_util.h"

namespace latent::app {
namespace {

class RunOwnerTest : public testing::ScratchDirTest {};

std::string now_utc() {
  char text[21];
  utc_text(std::time(nullptr), text);
  return text;
}

TEST_F(RunOwnerTest, ReadsTheFieldsOfARunRecord) {
  const std::string p = path("run.json");
  std::ofstream(p) << "{\n  \"status\": \"running\",\n  \"started\": \"2026-12-03T12:34:41Z\",\n"
                      "  \"pid\": 15871,\n  \"host\": \"node7\",\n  \"processes\": 2,\n"
                      "  \"arguments\": [\"latent\", \"train\", \"--pid\", \"3\"]\n}\n";
  const RunRecord r = read_run_record(p);
  EXPECT_EQ(r.status, "running");
  EXPECT_EQ(r.started, "2026-12-03T12:34:41Z");
  EXPECT_EQ(r.pid, 15871);
  EXPECT_EQ(r.host, "node7");
  const RunRecord none = read_run_record(path("absent.json"));
  EXPECT_EQ(none.status, "");
  EXPECT_EQ(none.pid, 0);
}

TEST_F(RunOwnerTest, ThisProcessIsAliveAndAnEndedOneIsGone) {
  const std::string host = host_name();
  EXPECT_EQ(run_owner({.status = "running", .pid = ::getpid(), .host = host, .started = now_utc()}),
            RunOwner::alive);
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(run_owner({.status = "running", .pid = child, .host = host, .started = now_utc()}),
            RunOwner::gone);
}

// A process that began after the run started holds the pid of one that ended.
TEST_F(RunOwnerTest, APidReusedSinceIsGone) {
  EXPECT_EQ(run_owner({.status = "running",
                       .pid = ::getpid(),
                       .host = host_name(),
                       .started = "2000-01-01T00:00:00Z"}),
            RunOwner::gone);
}

TEST_F(RunOwnerTest, AnotherMachineOrARecordThatDoesNotSayIsUnknown) {
  const std::string now = now_utc();
  EXPECT_EQ(
      run_owner({.status = "running", .pid = ::getpid(), .host = "elsewhere", .started = now}),
      RunOwner::unknown);
  EXPECT_EQ(run_owner({.status = "running", .pid = ::getpid(), .host = "", .started = now}),
            RunOwner::unknown);
  EXPECT_EQ(run_owner({.status = "running", .pid = 0, .host = host_name(), .started = now}),
            RunOwner::unknown);
  EXPECT_EQ(
      run_owner({.status = "running", .pid = ::getpid(), .host = host_name(), .started = "soon"}),
      RunOwner::unknown);
}

// One holder at a time (a second open of the lock file, even in this process, is refused), and
// the lock goes with its holder.
TEST_F(RunOwnerTest, AFolderHasOneLockHolderAtATime) {
  {
    FolderLock first(dir_);
    ASSERT_EQ(first.state(), FolderLock::State::taken);
    EXPECT_EQ(first.path(), path(".latent-lock"));
    FolderLock second(dir_);
    EXPECT_EQ(second.state(), FolderLock::State::held_elsewhere);
  }
  FolderLock again(dir_);
  EXPECT_EQ(again.state(), FolderLock::State::taken);
  // A process that ends, however it ends, lets it go: a child that takes it and is killed.
  std::filesystem::create_directories(path("sub"));
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    FolderLock mine(path("sub"));  // another folder: the parent's lock is not this one
    const char c = mine.state() == FolderLock::State::taken ? 'y' : 'n';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(FolderLock(path("sub")).state(), FolderLock::State::held_elsewhere);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(FolderLock(path("sub")).state(), FolderLock::State::taken);
  ::close(ready[0]);
  ::close(ready[1]);
}

// A folder that cannot take the lock file: no lock to be had, which the caller is told.
TEST_F(RunOwnerTest, AFolderWithoutTheLockFileSaysSo) {
  EXPECT_EQ(FolderLock(path("absent/deeper")).state(), FolderLock::State::unsupported);
}

}  // namespace
}  // namespace latent::app
