// The record a run leaves when a signal ends it (apps/run_signal.h): the file replaced with the
// signal's text and its end time, the writes under way removed, the process then ended by that
// signal; an ignored signal stays ignored; arming again replaces the texts; nothing written once
// disarmed; the end time as the C library formats it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "apps/run_signal.h"
#include "core/data/file_util.h"
#include "core/latent.h"
#include "support/test_util.h"

namespace latent::app {
namespace {

namespace fs = std::filesystem;

// The signals that leave a record, and their names.
constexpr int kSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGXCPU};
const char* name_of(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGQUIT:
      return "SIGQUIT";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGXCPU:
      return "SIGXCPU";
  }
  return "?";
}

class RunSignalTest : public latent::testing::ScratchDirTest {
 protected:
  void SetUp() override {
    ScratchDirTest::SetUp();
    path_ = path("run.json");
    std::ofstream(path_) << "running\n";
  }

  std::string contents() const { return data::read_file(path_, "test"); }
  // Runs `body` in a child process; returns its wait status.
  template <class F>
  int in_child(F body) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      // The signals as a process started plainly has them (ctest may run under nohup or in the
      // background, where some are ignored or blocked).
      sigset_t all;
      sigemptyset(&all);
      for (int sig : kSignals) {
        ::signal(sig, SIG_DFL);
        sigaddset(&all, sig);
      }
      ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
      const rlimit no_core{0, 0};  // SIGQUIT ends the process without a core file
      ::setrlimit(RLIMIT_CORE, &no_core);
      try {
        body();
      } catch (...) {
        ::_exit(99);  // never back into the test runner
      }
      ::_exit(0);
    }
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    return status;
  }
  static std::string text(const char* signal, const char* cause) {
    return std::string("{\"status\": \"interrupted\", \"signal\": \"") + signal +
           "\", \"ended\": \"" + std::string(kEndedPlaceholder) + "\", \"cause\": \"" + cause +
           "\"}\n";
  }

  std::string path_;
};

TEST_F(RunSignalTest, SignalWritesItsRecordThenEndsTheProcess) {
  for (int sig : kSignals) {
    std::ofstream(path_) << "running\n";
    const std::time_t before = std::time(nullptr);
    const int status = in_child([&] {
      arm_signal_record(path_, text);
      data::AtomicWriter pending(path("model.safetensors"), "test");  // never committed
      pending.write("partial");
      ::raise(sig);
      ::_exit(7);  // not reached: the signal ends the process
    });
    const std::time_t after = std::time(nullptr);
    ASSERT_TRUE(WIFSIGNALED(status)) << "signal " << sig << ", status " << status;
    EXPECT_EQ(WTERMSIG(status), sig);
    const std::string got = contents();
    const char* name = name_of(sig);
    EXPECT_NE(got.find(std::string("\"signal\": \"") + name + "\""), std::string::npos) << got;
    EXPECT_EQ(got.find(kEndedPlaceholder), std::string::npos) << got;
    // The end time lies between the fork and the wait.
    char lo[21], hi[21];
    utc_text(before, lo);
    utc_text(after, hi);
    const std::size_t at = got.find("\"ended\": \"");
    ASSERT_NE(at, std::string::npos) << got;
    const std::string ended = got.substr(at + 10, 20);
    EXPECT_LE(std::string(lo), ended);
    EXPECT_GE(std::string(hi), ended);
    // Only run.json in the folder: its temporary file was renamed over it, and the write under way
    // was removed.
    int files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
    EXPECT_EQ(files, 1);
  }
}

TEST_F(RunSignalTest, IgnoredSignalStaysIgnored) {
  const int status = in_child([&] {
    ::signal(SIGHUP, SIG_IGN);
    arm_signal_record(path_, text);
    ::raise(SIGHUP);
    ::_exit(3);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(contents(), "running\n");
}

// Disarmed after one arming or two (the second replacing the first's texts): the default action
// is back and nothing is written.
TEST_F(RunSignalTest, DisarmedWritesNothing) {
  for (const int armings : {1, 2}) {
    const int status = in_child([&] {
      for (int k = 0; k < armings; ++k) arm_signal_record(path_, text);
      disarm_signal_record();
      ::raise(SIGTERM);
      ::_exit(3);
    });
    ASSERT_TRUE(WIFSIGNALED(status)) << armings;
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
    EXPECT_EQ(contents(), "running\n");
  }
}

TEST_F(RunSignalTest, EarlierHandlerRunsAfterTheRecord) {
  static volatile sig_atomic_t seen = 0;
  const int status = in_child([&] {
    ::signal(SIGTERM, [](int) { seen = 1; });
    arm_signal_record(path_, text);
    ::raise(SIGTERM);
    ::_exit(seen == 1 ? 5 : 6);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5);
  EXPECT_NE(contents().find("SIGTERM"), std::string::npos);
}

// Armed again while armed (a run's last record, armed before it is written): the new text is the
// record, the handlers never left, and the action restored is still the one before the first
// arming (here a handler of the program's, which then runs); disarmed, the program's own again.
TEST_F(RunSignalTest, ArmingAgainReplacesTheTextAndKeepsTheEarlierAction) {
  static volatile sig_atomic_t seen = 0;
  const int status = in_child([&] {
    ::signal(SIGTERM, [](int) { seen = seen + 1; });
    arm_signal_record(path_, text);
    arm_signal_record(path_, [](const char*, const char*) {
      return std::string("{\"status\": \"finished\", \"ended\": \"") +
             std::string(kEndedPlaceholder) + "\"}\n";
    });
    ::raise(SIGTERM);  // the record, then the program's handler
    if (seen != 1) ::_exit(6);
    ::raise(SIGTERM);  // the program's handler alone
    ::_exit(seen == 2 ? 5 : 7);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5);
  const std::string got = contents();
  EXPECT_NE(got.find("\"status\": \"finished\""), std::string::npos) << got;
  EXPECT_EQ(got.find("interrupted"), std::string::npos) << got;
  EXPECT_EQ(got.find(kEndedPlaceholder), std::string::npos) << got;
}

// A signal the process lived through (a program's handler ran after the record and returned):
// arming again catches the next one, with the new text.
TEST_F(RunSignalTest, ArmingAgainAfterASignalTheProcessLivedThroughArmsAfresh) {
  static volatile sig_atomic_t seen = 0;
  const int status = in_child([&] {
    ::signal(SIGUSR1, [](int) { seen = seen + 1; });
    arm_signal_record(path_, text);
    ::raise(SIGUSR1);
    if (seen != 1 || contents().find("SIGUSR1") == std::string::npos) ::_exit(6);
    arm_signal_record(path_, [](const char*, const char*) {
      return std::string("{\"again\": \"") + std::string(kEndedPlaceholder) + "\"}\n";
    });
    ::raise(SIGUSR1);
    ::_exit(seen == 2 ? 5 : 7);
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 5);
  const std::string got = contents();
  EXPECT_NE(got.find("\"again\""), std::string::npos) << got;
}

// A text that quotes the placeholder again (an argument) gets the end time at the first only.
TEST_F(RunSignalTest, OnlyTheFirstPlaceholderIsFilled) {
  const int status = in_child([&] {
    arm_signal_record(path_, [](const char*, const char*) {
      return std::string("{\"ended\": \"") + std::string(kEndedPlaceholder) + "\", \"arg\": \"" +
             std::string(kEndedPlaceholder) + "\"}\n";
    });
    ::raise(SIGTERM);
  });
  ASSERT_TRUE(WIFSIGNALED(status));
  const std::string got = contents();
  EXPECT_EQ(got.find(kEndedPlaceholder), got.find("\"arg\"") + 8) << got;
}

TEST_F(RunSignalTest, TextWithoutThePlaceholderIsRefused) {
  EXPECT_THROW(arm_signal_record(path_, [](const char*, const char*) { return std::string("{}"); }),
               Error);
  disarm_signal_record();
}

TEST(UtcText, MatchesTheCLibrary) {
  for (std::time_t t :
       {std::time_t{0}, std::time_t{951782400} /* 2000-02-29 */, std::time_t{951868799},
        std::time_t{1709251199} /* 2024-02-29 23:59:59 */, std::time_t{4107542400} /* 2100-03-01 */,
        std::time_t{253402300799}, std::time(nullptr)}) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char want[32];
    std::strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char got[21];
    utc_text(t, got);
    EXPECT_STREQ(got, want) << t;
  }
}

}  // namespace
}  // namespace latent::app
