#include "apps/run_owner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <regex>
#include <sstream>

#include "core/dist.h"

namespace latent::app {
namespace {

// The first string (or number, `quoted` false) value of `key` in a JSON text of ours.
std::string field(const std::string& text, const std::string& key, bool quoted) {
  const std::regex re(quoted ? "\"" + key + "\": \"([^\"\\\\]*)\"" : "\"" + key + "\": ([0-9]+)");
  std::smatch m;
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

// When process `pid` began (seconds since the epoch), from /proc; -1 when it cannot be read.
long long process_start(long long pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const std::size_t close = stat.rfind(')');  // the name, in parentheses, may hold spaces
  if (close == std::string::npos) return -1;
  // Fields 3 to 21 after the name, then field 22: the start, in clock ticks after the boot.
  std::istringstream fields(stat.substr(close + 1));
  std::string skipped;
  for (int i = 3; i < 22; ++i) fields >> skipped;
  long long ticks_after_boot = -1;
  if (!(fields >> ticks_after_boot) || ticks_after_boot < 0) return -1;
  std::ifstream boot("/proc/stat");  // "btime <the boot, in seconds since the epoch>"
  std::string word;
  while (boot >> word && word != "btime") {
  }
  long long btime = 0;
  const long ticks = sysconf(_SC_CLK_TCK);
  if (!(boot >> btime) || ticks <= 0) return -1;
  return btime + ticks_after_boot / ticks;
}

// "YYYY-MM-DDTHH:MM:SSZ" as seconds since the epoch; -1 when it is not that.
long long utc_seconds(const std::string& text) {
  std::tm t{};
  std::istringstream in(text);
  in >> std::get_time(&t, "%Y-%m-%dT%H:%M:%SZ");
  if (in.fail()) return -1;
  return static_cast<long long>(timegm(&t));
}

}  // namespace

RunRecord read_run_record(const std::string& path) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RunRecord r;
  r.status = field(text, "status", true);
  r.host = field(text, "host", true);
  r.started = field(text, "started", true);
  const std::string pid = field(text, "pid", false);
  r.pid = pid.empty() || pid.size() > 12 ? 0 : std::stoll(pid);
  const std::string processes = field(text, "processes", false);
  r.processes = processes.empty() || processes.size() > 9 ? 1 : std::stoi(processes);
  return r;
}

RunOwner run_owner(const RunRecord& r) {
  if (r.pid <= 0 || r.host.empty() || r.host != dist::host_name()) return RunOwner::unknown;
  const long long started = utc_seconds(r.started);
  if (started < 0) return RunOwner::unknown;
  // This very process (a container restarted with the same name and pid) is not that run.
  if (r.pid == static_cast<long long>(::getpid())) return RunOwner::gone;
  const auto exists = [&] { return ::kill(static_cast<pid_t>(r.pid), 0) == 0 || errno != ESRCH; };
  if (!exists()) return RunOwner::gone;
  const long long began = process_start(r.pid);
  // Unreadable: ended while we looked, or hidden (/proc mounted with hidepid).
  if (began < 0) return exists() ? RunOwner::unknown : RunOwner::gone;
  // The run wrote "started" after its process began; a process that began later has the pid of
  // one that ended. A minute's margin for the clock, read in whole seconds on both sides and
  // stepped now and then.
  return began <= started + 60 ? RunOwner::alive : RunOwner::gone;
}

FolderLock::FolderLock(const std::string& folder) : path_(folder + "/.latent-lock") {
  // Writable by all the umask lets write to: a group sharing the folder shares its lock.
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd_ < 0) return;  // unsupported: a folder that cannot take the file fails at its writes
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    state_ = State::taken;
    return;
  }
  state_ = errno == EWOULDBLOCK ? State::held_elsewhere : State::unsupported;
  ::close(fd_);
  fd_ = -1;
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace latent::app
