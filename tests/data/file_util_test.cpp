// Atomic writes and the clean-up of temporary files a killed run left behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
}  // namespace latent::data
