// Whether the run a run.json says is "running" still runs: its process alive on this machine and
// begun before the run, gone (ended, or its pid now another's), or not to be told (another
// machine, a record that does not say).
#include "apps/run_owner.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
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

}  // namespace
}  // namespace latent::app
