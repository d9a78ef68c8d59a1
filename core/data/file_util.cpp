#include "core/data/file_util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iterator>
#include <vector>

#include "core/error.h"

namespace latent::data {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// The temporary files of the AtomicWriters alive: an entry is free (0), being filled (1), holds
// the path of a file about to be created (4) or created (2), or was taken by
// remove_pending_temporaries() (3, for good: its path is never rewritten under a signal handler
// reading it).
enum : int { kFree = 0, kFilling = 1, kCreated = 2, kTaken = 3, kCreating = 4 };
struct Pending {
  std::atomic<int> state{kFree};
  char path[4096];
};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);
Pending g_pending[16];
// Set by remove_pending_temporaries(): the process is ending, and no writer creates a file now.
std::atomic<bool> g_ending{false};

void pause_ms(long ms) {
  const timespec tick{0, ms * 1000 * 1000};
  ::nanosleep(&tick, nullptr);
}

int add_pending(const std::string& path) {
  if (path.size() >= sizeof g_pending[0].path) return -1;
  for (int i = 0; i < static_cast<int>(std::size(g_pending)); ++i) {
    int free = kFree;
    if (!g_pending[i].state.compare_exchange_strong(free, kFilling)) continue;
    std::memcpy(g_pending[i].path, path.c_str(), path.size() + 1);
    g_pending[i].state.store(kCreating);
    return i;
  }
  return -1;
}

// The file of entry i exists: false when remove_pending_temporaries() took the entry meanwhile.
bool created_pending(int i) {
  int creating = kCreating;
  return i < 0 || g_pending[i].state.compare_exchange_strong(creating, kCreated);
}

void drop_pending(int& i) {
  if (i >= 0) {
    int created = kCreated, creating = kCreating;
    if (!g_pending[i].state.compare_exchange_strong(created, kFree))
      g_pending[i].state.compare_exchange_strong(creating, kFree);
  }
  i = -1;
}

// A writer about to create its file while the process ends on a signal waits for the end (a
// second at most: past that, the process lived on, and writes go on).
void wait_while_ending() {
  for (int k = 0; k < 100 && g_ending.load(); ++k) pause_ms(10);
  if (g_ending.load()) g_ending.store(false);
}

gzFile as_gz(void* p) {
  return static_cast<gzFile>(p);
}

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

bool is_gzip_path(std::string_view path) {
  return path.size() >= 3 && path.substr(path.size() - 3) == ".gz";
}

// ---- InputFile -------------------------------------------------------------------------------

InputFile::InputFile(const std::string& path, std::string_view component)
    : path_(path), component_(component) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail("cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail("cannot stat: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    fail("is a directory, not a file");
  }
  if (!is_gzip_path(path)) {
    if (S_ISREG(st.st_mode)) size_ = static_cast<std::int64_t>(st.st_size);
    return;
  }
  gz_ = gzdopen(fd_, "rb");
  if (gz_ == nullptr) {
    ::close(fd_);
    fd_ = -1;
    fail("cannot open for gzip decompression (out of memory)");
  }
  fd_ = -1;  // owned by the gzFile now
  // The default 8 KiB buffer makes many small reads; data files are tens of megabytes.
  gzbuffer(as_gz(gz_), 1 << 18);
}

InputFile::~InputFile() {
  if (gz_ != nullptr) gzclose(as_gz(gz_));
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::fail(const std::string& what) const {
  throw Error(component_, path_ + ": " + what);
}

std::size_t InputFile::read(void* dst, std::size_t n) {
  auto* out = static_cast<unsigned char*>(dst);
  std::size_t got = 0;
  while (got < n) {
    // gzread and read take int / ssize_t counts: go in chunks well below either limit.
    const std::size_t want = std::min<std::size_t>(n - got, std::size_t{1} << 30);
    if (gz_ != nullptr) {
      const int r = gzread(as_gz(gz_), out + got, static_cast<unsigned>(want));
      int errnum = Z_OK;
      const char* msg = gzerror(as_gz(gz_), &errnum);
      // zlib reports a stream cut short as a short read with Z_BUF_ERROR, not as r < 0.
      if (errnum == Z_ERRNO) fail("read error: " + errno_text(errno));
      if (errnum == Z_BUF_ERROR) fail("truncated gzip data (the compressed stream ends early)");
      if (r < 0 || errnum != Z_OK) {
        // A gzFile opened from a descriptor prefixes its messages with "<fd:N>: ".
        std::string text = msg;
        if (text.rfind("<fd:", 0) == 0 && text.find(": ") != std::string::npos)
          text = text.substr(text.find(": ") + 2);
        fail("corrupt gzip data: " + text);
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    } else {
      const ssize_t r = ::read(fd_, out + got, want);
      if (r < 0) {
        if (errno == EINTR) continue;
        fail("read error: " + errno_text(errno));
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
  }
  return got;
}

std::uint64_t InputFile::skip_rest() {
  std::vector<unsigned char> buf(1 << 16);
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t r = read(buf.data(), buf.size());
    total += r;
    if (r < buf.size()) return total;
  }
}

std::string read_file(const std::string& path, std::string_view component) {
  InputFile in(path, component);
  std::string out;
  if (in.size() >= 0) {
    out.resize(static_cast<std::size_t>(in.size()));
    out.resize(in.read(out.data(), out.size()));
  }
  // Compressed files (size unknown), and a file that grew since it was opened.
  char buf[1 << 16];
  for (;;) {
    const std::size_t r = in.read(buf, sizeof buf);
    out.append(buf, r);
    if (r < sizeof buf) return out;
  }
}

// ---- AtomicWriter ----------------------------------------------------------------------------

AtomicWriter::AtomicWriter(const std::string& path, std::string_view component)
    : path_(path), component_(component) {
  // Same folder as the target, so that rename() is atomic (never across file systems).
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0;; ++attempt) {
    temp_path_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    // Known before the file exists, so that a signal handler on another thread, ending the
    // process, removes it whenever it comes (remove_pending_temporaries).
    pending_ = add_pending(temp_path_);
    wait_while_ending();
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int err = errno;
      drop_pending(pending_);
      throw Error(component_, path_ + ": cannot create a temporary file in " + parent_dir(path_) +
                                  ": " + errno_text(err));
    }
    if (created_pending(pending_)) return;
    // Taken by a signal handler ending the process while the file was being created: removed, and
    // once the process has lived past its end (a program's own handler returned), made again
    // under a new name (the taken entry, which discard() leaves alone, is the handler's for good).
    discard();
    if (attempt > 0)
      throw Error(component_, path_ + ": not written: the process is ending on a signal");
    pause_ms(1000);
  }
}

AtomicWriter::~AtomicWriter() {
  if (!committed_) discard();
}

void AtomicWriter::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());
  drop_pending(pending_);
}

void AtomicWriter::fail(const std::string& what, int err) {
  discard();
  committed_ = true;  // nothing left to clean up
  throw Error(component_, path_ + ": " + what + ": " + errno_text(err));
}

void AtomicWriter::write(const void* data, std::size_t n) {
  if (fd_ < 0) throw Error(component_, path_ + ": write after commit or failure");
  const auto* p = static_cast<const unsigned char*>(data);
  while (n > 0) {
    const ssize_t r = ::write(fd_, p, std::min<std::size_t>(n, std::size_t{1} << 30));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

void AtomicWriter::commit() {
  if (fd_ < 0) throw Error(component_, path_ + ": commit after commit or failure");
  // Data on disk before the rename makes it visible; otherwise a crash could leave the new name
  // pointing at an empty or partial file.
  if (::fsync(fd_) != 0) fail("fsync failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed", errno);
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("rename failed", errno);
  committed_ = true;
  drop_pending(pending_);
  // Persist the rename itself; best effort (some file systems refuse fsync on directories).
  const int dir = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void remove_pending_temporaries() noexcept {
  // Before the entries are read (both sequentially consistent): a writer that registers after
  // this sees it, and waits.
  g_ending.store(true);
  int waited_ms = 0;  // 0.1 s in all for the files about to be created
  for (Pending& p : g_pending) {
    // A file about to be created: given a moment to be (its writer may be the thread this
    // handler interrupted, or one waiting for the end), then removed all the same.
    while (waited_ms < 100 && p.state.load() == kCreating) {
      pause_ms(1);
      ++waited_ms;
    }
    int s = p.state.load();
    while ((s == kCreated || s == kCreating) && !p.state.compare_exchange_weak(s, kTaken)) {
    }
    // Taken now or by an earlier call (whose writer may have created its file since): a taken
    // path is never a new file's, so removing it again is safe.
    if (s == kCreated || s == kCreating || s == kTaken) ::unlink(p.path);
  }
}

int remove_stale_temporaries(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) return 0;
  int removed = 0;
  for (const fs::directory_entry& entry : it) {
    const std::string name = entry.path().filename().string();
    // "<file>.tmp.<pid>.<n>": the last two dot-separated fields are digits, ".tmp" before them.
    const std::size_t last = name.rfind('.');
    if (last == std::string::npos || last == 0) continue;
    const std::size_t mid = name.rfind('.', last - 1);
    if (mid == std::string::npos || mid < 4 || name.compare(mid - 4, 4, ".tmp") != 0) continue;
    const std::string pid_text = name.substr(mid + 1, last - mid - 1);
    const std::string n_text = name.substr(last + 1);
    auto digits = [](const std::string& s) {
      return !s.empty() && s.size() < 10 &&
             std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(pid_text) || !digits(n_text) || !entry.is_regular_file(ec) || ec) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // still running
    if (fs::remove(entry.path(), ec) && !ec) ++removed;
  }
  return removed;
}

void write_file_atomic(const std::string& path, std::string_view bytes,
                       std::string_view component) {
  AtomicWriter out(path, component);
  out.write(bytes);
  out.commit();
}

}  // namespace latent::data
