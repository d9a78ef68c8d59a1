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
#include <functional>
#include <memory>
#include <string>

#include "apps/run_signal.h"
#include "core/dist.h"
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

// A child process that waits until it is told (or its parent ends), ended and reaped when the
// object goes.
class Child {
 public:
  explicit Child(const std::function<void()>& first = {}) {
    int ready[2];
    if (::pipe(ready) != 0 || ::pipe(hold_) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(hold_[1]);
      if (first) first();
      const char c = 'y';
      if (::write(ready[1], &c, 1) != 1) ::_exit(3);
      char x;
      while (::read(hold_[0], &x, 1) > 0) {
      }
      ::_exit(0);
    }
    ::close(hold_[0]);
    ::close(ready[1]);
    char c = 0;
    ok_ = pid_ > 0 && ::read(ready[0], &c, 1) == 1 && c == 'y';
    ::close(ready[0]);
  }
  ~Child() { end(); }
  void end() {
    if (pid_ <= 0) return;
    ::close(hold_[1]);
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }
  bool ok() const { return ok_; }

 private:
  pid_t pid_ = -1;
  int hold_[2] = {-1, -1};
  bool ok_ = false;
};

TEST_F(RunOwnerTest, ALiveProcessIsAliveAndAnEndedOneIsGone) {
  const std::string host = dist::host_name();
  Child child;
  ASSERT_TRUE(child.ok());
  const long long pid = child.pid();
  EXPECT_EQ(run_owner({.status = "running", .pid = pid, .host = host, .started = now_utc()}),
            RunOwner::alive);
  // A process that began after the run started holds the pid of one that ended.
  EXPECT_EQ(
      run_owner({.status = "running", .pid = pid, .host = host, .started = "2000-01-01T00:00:00Z"}),
      RunOwner::gone);
  child.end();
  EXPECT_EQ(run_owner({.status = "running", .pid = pid, .host = host, .started = now_utc()}),
            RunOwner::gone);
  // This very process is not the run (a container restarted with the same name and pid).
  EXPECT_EQ(run_owner({.status = "running", .pid = ::getpid(), .host = host, .started = now_utc()}),
            RunOwner::gone);
}

TEST_F(RunOwnerTest, AnotherMachineOrARecordThatDoesNotSayIsUnknown) {
  const std::string now = now_utc();
  const long long parent = ::getppid();
  EXPECT_EQ(run_owner({.status = "running", .pid = parent, .host = "elsewhere", .started = now}),
            RunOwner::unknown);
  EXPECT_EQ(run_owner({.status = "running", .pid = parent, .host = "", .started = now}),
            RunOwner::unknown);
  EXPECT_EQ(run_owner({.status = "running", .pid = 0, .host = dist::host_name(), .started = now}),
            RunOwner::unknown);
  EXPECT_EQ(
      run_owner({.status = "running", .pid = parent, .host = dist::host_name(), .started = "soon"}),
      RunOwner::unknown);
}

// One holder at a time (a second open of the lock file, even in this process, is refused, on a
// local file system), and the lock goes with its holder.
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
  std::unique_ptr<FolderLock> held;
  Child child([&] { held = std::make_unique<FolderLock>(path("sub")); });
  ASSERT_TRUE(child.ok());
  EXPECT_EQ(FolderLock(path("sub")).state(), FolderLock::State::held_elsewhere);
  child.end();  // SIGKILL
  EXPECT_EQ(FolderLock(path("sub")).state(), FolderLock::State::taken);
}

// A folder that cannot take the lock file: no lock to be had, which the caller is told.
TEST_F(RunOwnerTest, AFolderWithoutTheLockFileSaysSo) {
  EXPECT_EQ(FolderLock(path("absent/deeper")).state(), FolderLock::State::unsupported);
}

}  // namespace
}  // namespace latent::app
