// Atomic writes and the clean-up of temporary files a killed run left behind.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/data/file_util.h"
#include "core/error.h"

namespace latent::data {
namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("latent_files_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void touch(const fs::path& p, const std::string& text = "x") {
  std::ofstream(p) << text;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// A process id that no process has any more: a child that exited and was reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(FileUtil, StaleTemporariesOfGoneProcessesAreRemovedAndNothingElse) {
  const fs::path dir = scratch("stale");
  const std::string dead = std::to_string(dead_pid());
  touch(dir / ("metrics.csv.tmp." + dead + ".3"));
  touch(dir / ("model.safetensors.tmp." + dead + ".0"));
  touch(dir / ("summary.json.tmp." + std::to_string(::getpid()) + ".1"));  // a live writer's
  touch(dir / "notes.tmp");
  touch(dir / "x.tmp.abc.1");
  touch(dir / "model.safetensors");
  EXPECT_EQ(remove_stale_temporaries(dir.string()), 2);
  EXPECT_FALSE(fs::exists(dir / ("metrics.csv.tmp." + dead + ".3")));
  EXPECT_TRUE(fs::exists(dir / ("summary.json.tmp." + std::to_string(::getpid()) + ".1")));
  EXPECT_TRUE(fs::exists(dir / "notes.tmp"));
  EXPECT_TRUE(fs::exists(dir / "x.tmp.abc.1"));
  EXPECT_TRUE(fs::exists(dir / "model.safetensors"));
  EXPECT_EQ(remove_stale_temporaries((dir / "missing").string()), 0);
  fs::remove_all(dir);
}

// A link planted where a fixed temporary name would be is never followed: the victim stays.
TEST(FileUtil, AtomicWritesDoNotFollowPlantedLinks) {
  const fs::path dir = scratch("links");
  touch(dir / "victim", "precious");
  fs::create_symlink(dir / "victim", dir / "summary.json.tmp");
  write_file_atomic((dir / "summary.json").string(), "{}", "test");
  EXPECT_EQ(slurp(dir / "victim"), "precious");
  EXPECT_EQ(slurp(dir / "summary.json"), "{}");
  // A link at the target itself is replaced by the new file, not written through.
  fs::create_symlink(dir / "victim", dir / "out.png");
  write_file_atomic((dir / "out.png").string(), "png", "test");
  EXPECT_EQ(slurp(dir / "victim"), "precious");
  EXPECT_FALSE(fs::is_symlink(dir / "out.png"));
  fs::remove_all(dir);
}

// A full disk (the file size limit makes write() fail with EFBIG): an error naming the file, the
// old file kept whole, no temporary file left.
TEST(FileUtil, AFullDiskKeepsTheOldFile) {
  const fs::path dir = scratch("full");
  const std::string target = (dir / "loss.png").string();
  write_file_atomic(target, "old picture", "test");
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 100;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_file_atomic(target, std::string(5000, 'x'), "picture");
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find("[picture]"), std::string::npos) << message;
  EXPECT_NE(message.find(target), std::string::npos) << message;
  EXPECT_EQ(slurp(target), "old picture");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 1);  // no temporary file left
  fs::remove_all(dir);
}

// Killed at any moment while writing: the target holds the old or the new content, whole; the
// temporary file of the killed writer goes at the next clean-up.
TEST(FileUtil, AKillDuringAWriteLeavesAWholeFile) {
  const fs::path dir = scratch("kill");
  const std::string target = (dir / "summary.json").string();
  const std::string first(1 << 20, 'a'), second(1 << 20, 'b');
  write_file_atomic(target, first, "test");
  for (int round = 0; round < 12; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int i = 0;; ++i) write_file_atomic(target, i % 2 ? first : second, "test");
    }
    ::usleep(static_cast<useconds_t>(2000 + 3000 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    const std::string now = slurp(target);
    EXPECT_TRUE(now == first || now == second)
        << "round " << round << ": " << now.size() << " bytes";
    remove_stale_temporaries(dir.string());
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file() ? 1 : 0;
    EXPECT_EQ(entries, 1) << "round " << round;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace latent::data
