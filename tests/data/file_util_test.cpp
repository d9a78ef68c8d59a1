// Atomic writes and the clean-up of temporary files a killed run left behind.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "core/data/file_util.h"
#include "core/error.h"
#include "core/latent.h"
#include "models/vae.h"

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

// A real full disk: a 64 KiB tmpfs, mounted in a private mount namespace of a child process (so it
// vanishes with the child whatever happens). Where mounting is not allowed (not root, no
// CAP_SYS_ADMIN in a container) the test skips; the file size limit above injects the same failure
// everywhere. In the child: a picture larger than the disk, a checkpoint larger than the disk, and
// a file that fills the last free bytes mid-write each fail with an error naming the file and "No
// space left", the old file stays whole, and no temporary file is left.
TEST(FileUtil, AFullTmpfsKeepsTheOldFilesAndLeavesNoTemporary) {
  const fs::path dir = scratch("tmpfs");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string out;
    auto finish = [&](const std::string& line) {
      out += line;
      (void)!::write(pipe_fds[1], out.data(), out.size());
      ::_exit(0);
    };
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k") != 0)
      finish(std::string("skip: cannot mount a tmpfs here: ") + std::strerror(errno));
    auto entries = [&] {
      int n = 0;
      for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
      return n;
    };
    auto expect_refused = [&](const std::string& what, const std::string& target,
                              const std::function<void()>& write, const std::string& old) {
      std::string message;
      try {
        write();
      } catch (const Error& e) {
        message = e.what();
      }
      if (message.find(target) == std::string::npos ||
          message.find("No space left") == std::string::npos)
        out += "fail: " + what + ": the error does not name the file and the full disk: '" +
               message + "'\n";
      if (slurp(target) != old) out += "fail: " + what + ": the old file changed\n";
    };

    const std::string picture = (dir / "loss.png").string();
    write_file_atomic(picture, "old picture", "test");
    expect_refused(
        "picture", picture,
        [&] { write_file_atomic(picture, std::string(256 << 10, 'p'), "picture"); }, "old picture");

    const std::string model = (dir / "model.safetensors").string();
    write_file_atomic(model, "old model", "test");
    models::VAE vae(models::VAEConfig{.input = 784, .hidden = {64}, .latent = 8});
    expect_refused(
        "checkpoint", model, [&] { save(vae, model); }, "old model");

    // Fill the disk up to a few KiB, then write more than what is left: write() fails midway.
    {
      std::ofstream filler(dir / "filler", std::ios::binary);
      const std::string block(1024, 'f');
      for (int i = 0; i < 52 && filler; ++i) filler << block;
    }
    const std::string metrics = (dir / "metrics.csv").string();
    expect_refused(
        "metrics", metrics,
        [&] { write_file_atomic(metrics, std::string(32 << 10, 'm'), "metrics"); }, "");
    if (fs::exists(metrics)) out += "fail: metrics: a file appeared\n";
    if (entries() != 3) out += "fail: " + std::to_string(entries()) + " files, expected 3\n";
    finish(out.empty() ? "ok" : "");
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    report.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  fs::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child crashed: " << report;
  if (report.rfind("skip: ", 0) == 0) GTEST_SKIP() << report.substr(6);
  EXPECT_EQ(report, "ok");
}

// What a signal handler removes before the process ends: the temporary file of a write under way
// (whose commit then fails, leaving the target as it was), not a committed file.
TEST(FileUtil, PendingTemporariesAreRemovedOnRequest) {
  const fs::path dir = scratch("pending");
  const std::string kept = (dir / "metrics.csv").string(), target = (dir / "model.bin").string();
  write_file_atomic(kept, "epoch\n", "test");
  {
    AtomicWriter out(target, "test");
    out.write("partial");
    ASSERT_TRUE(fs::exists(out.temp_path()));
    remove_pending_temporaries();
    EXPECT_FALSE(fs::exists(out.temp_path()));
    EXPECT_THROW(out.commit(), Error);
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(slurp(kept), "epoch\n");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 1);
  fs::remove_all(dir);
}

// A write that starts while a signal handler ends the process (on another thread: the handler
// removed the temporaries already) creates no file until the process is gone; when it lives on
// (a program's own handler returned), the write goes on a second later.
TEST(FileUtil, AWriteStartedWhileTheProcessEndsWaits) {
  const fs::path dir = scratch("ending");
  const std::string target = (dir / "metrics.csv").string();
  remove_pending_temporaries();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread writer([&] { write_file_atomic(target, "epoch\n", "test"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 0) << "a file was created while the process was ending";
  writer.join();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(900));
  EXPECT_EQ(slurp(target), "epoch\n");
  write_file_atomic(target, "epoch 2\n", "test");  // no wait any more
  EXPECT_EQ(slurp(target), "epoch 2\n");
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

// Every kind of file a run writes (a checkpoint raw and compressed, .npy, a picture, JSON), killed
// at random moments while a child process rewrites them in a loop: each file reads back whole and
// equal to one of the two versions written, and the killed writer's temporaries go at the next
// clean-up.
TEST(FileUtil, AKillDuringAnyKindOfWriteLeavesWholeFiles) {
  const fs::path dir = scratch("kill_kinds");
  const models::VAEConfig config_a{.input = 784, .hidden = {256}, .latent = 8, .seed = 1};
  models::VAEConfig config_b = config_a;
  config_b.seed = 2;
  const models::VAE a(config_a), b(config_b);
  Generator g(5);
  const Tensor na = Tensor::rand({300, 100}, g), nb = Tensor::rand({300, 100}, g);
  const std::string pa(300 << 10, 'a'), pb(300 << 10, 'b');
  const std::string ckpt = (dir / "model.safetensors").string();
  const std::string ckpt_gz = (dir / "model.safetensors.gz").string();
  const std::string npy = (dir / "codes.npy").string();
  const std::string png = (dir / "samples.png").string();
  const std::string json = (dir / "summary.json").string();
  auto write_all = [&](bool first) {
    save(first ? a : b, ckpt);
    save(first ? a : b, ckpt_gz);
    write_npy(npy, first ? na : nb);
    write_file_atomic(png, first ? pa : pb, "picture");
    write_file_atomic(json, first ? "{\"v\": 1}" : "{\"v\": 2}", "train");
  };
  write_all(true);
  const std::vector<float> wa = a.parameters()[0].to_vector<float>();
  const std::vector<float> wb = b.parameters()[0].to_vector<float>();
  int interrupted = 0;  // kills that landed inside a write
  for (int round = 0; round < 10; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (int i = 0;; ++i) write_all(i % 2 == 0);
    }
    ::usleep(static_cast<useconds_t>(5000 + 9000 * round));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    for (const std::string& path : {ckpt, ckpt_gz}) {
      models::VAE back(config_a);
      ASSERT_NO_THROW(load(back, path)) << "round " << round << ": " << path;
      const std::vector<float> w = back.parameters()[0].to_vector<float>();
      EXPECT_TRUE(w == wa || w == wb) << "round " << round << ": " << path;
    }
    Tensor codes;
    ASSERT_NO_THROW(codes = read_npy(npy)) << "round " << round;
    const std::vector<float> c = codes.to_vector<float>();
    EXPECT_TRUE(c == na.to_vector<float>() || c == nb.to_vector<float>()) << "round " << round;
    const std::string picture = slurp(png);
    EXPECT_TRUE(picture == pa || picture == pb) << "round " << round;
    const std::string summary = slurp(json);
    EXPECT_TRUE(summary == "{\"v\": 1}" || summary == "{\"v\": 2}") << "round " << round;
    interrupted += remove_stale_temporaries(dir.string());
    int entries = 0;
    for (const auto& e : fs::directory_iterator(dir)) entries += e.is_regular_file() ? 1 : 0;
    EXPECT_EQ(entries, 5) << "round " << round;
  }
  EXPECT_GT(interrupted, 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace latent::data
