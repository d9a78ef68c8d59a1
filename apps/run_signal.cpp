#include "apps/run_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <memory>

#include "core/data/file_util.h"
#include "core/latent.h"

namespace latent::app {
namespace {

struct Handled {
  int signal;
  const char* name;
  const char* cause;
};
constexpr Handled kHandled[] = {
    {SIGTERM, "SIGTERM",
     "a kill, Slurm's scancel or time limit, or mpirun ending the job when another rank failed, "
     "whose message says why"},
    {SIGINT, "SIGINT", "Ctrl-C"},
    {SIGHUP, "SIGHUP", "its terminal closed"},
    {SIGPIPE, "SIGPIPE", "the pipe its output went to closed"},
    {SIGQUIT, "SIGQUIT", "Ctrl-\\"},
    {SIGUSR1, "SIGUSR1",
     "a batch system's notice that it will end the job, such as Slurm's --signal, or kill -USR1"},
    {SIGUSR2, "SIGUSR2", "a batch system's notice that it will end the job, or kill -USR2"},
    {SIGXCPU, "SIGXCPU", "its CPU time limit, set by ulimit -t or a batch system"},
};
constexpr int kCount = static_cast<int>(sizeof kHandled / sizeof kHandled[0]);

// Everything the handler touches, made when arming: it allocates nothing.
struct Record {
  std::string path;  // empty: nothing to write, the end is only put off by `delay`
  timespec delay{};
  std::string temp;
  std::string text[kCount];
  std::size_t ended_at[kCount] = {};
  struct sigaction previous[kCount] = {};
  bool installed[kCount] = {};
};

// Arming and disarming are made by one thread (the program's main one); the handler may run on
// any. The record the handler reads. Records are never freed while a handler might read one: the
// one before the last arming is freed at the next unless a handler is running (g_handlers; it is
// then left alone), never at exit. A handler counts itself before it reads g_record, so one that
// starts after an arming saw no handler reads that arming's record or a later one.
std::atomic<Record*> g_record{nullptr};
Record* g_kept[2] = {nullptr, nullptr};
std::atomic<int> g_handlers{0};
// The first signal writes the record (g_fired); one arriving meanwhile on another thread waits
// for it (g_done) before it ends the process.
std::atomic<bool> g_fired{false};
std::atomic<bool> g_done{false};
// The moment a delayed end comes (CLOCK_MONOTONIC, in ns; 0: no signal yet).
constexpr std::int64_t kNsPerS = 1000 * 1000 * 1000;
std::atomic<std::int64_t> g_end_at_ns{0};
static_assert(std::atomic<Record*>::is_always_lock_free && std::atomic<bool>::is_always_lock_free &&
              std::atomic<int>::is_always_lock_free &&
              std::atomic<std::int64_t>::is_always_lock_free);

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

extern "C" void on_signal(int sig) {
  const int saved_errno = errno;
  int i = 0;
  while (i < kCount && kHandled[i].signal != sig) ++i;
  g_handlers.fetch_add(1);
  Record* r = g_record.load();
  if (i == kCount || r == nullptr) {
    // Disarmed while this signal was on its way: its earlier action is back; end as it says.
    g_handlers.fetch_sub(1);
    errno = saved_errno;
    ::raise(sig);
    return;
  }
  if (r->path.empty()) {
    // A rank but 0: its end waits, so that rank 0 (signalled alike) records the run's first; the
    // first signal sets the moment, and another one on its way waits for the same.
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t at =
        (now.tv_sec + r->delay.tv_sec) * kNsPerS + now.tv_nsec + r->delay.tv_nsec;
    std::int64_t end = 0;
    if (g_end_at_ns.compare_exchange_strong(end, at)) end = at;
    const timespec until{static_cast<time_t>(end / kNsPerS), static_cast<long>(end % kNsPerS)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {
    }
    g_fired.store(true);
    g_done.store(true);
  } else if (!g_fired.exchange(true)) {
    // A checkpoint, picture or metrics file being written now will never be committed.
    data::remove_pending_temporaries();
    std::string& text = r->text[i];
    char ended[21];
    utc_text(std::time(nullptr), ended);
    for (std::size_t k = 0; k < kEndedPlaceholder.size(); ++k) text[r->ended_at[i] + k] = ended[k];
    // No fsync: the record must be in place before the SIGKILL that follows a SIGTERM (Open MPI
    // sends it a second later, Slurm after KillWait), and once renamed it survives the process.
    // The temporary name is this process's own: a file or link planted there is removed first.
    ::unlink(r->temp.c_str());
    const int fd =
        ::open(r->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      const bool written = write_all(fd, text.data(), text.size());
      if (!(::close(fd) == 0 && written && ::rename(r->temp.c_str(), r->path.c_str()) == 0))
        ::unlink(r->temp.c_str());
    }
    // Again: the files that were still being created the first time.
    data::remove_pending_temporaries();
    g_done.store(true);
  } else {
    // Another thread is writing the record: let it finish (two seconds at most).
    for (int k = 0; k < 200 && !g_done.load(); ++k) {
      const timespec tick{0, 10 * 1000 * 1000};
      ::nanosleep(&tick, nullptr);
    }
  }
  // End as the signal would have: its earlier action, raised again (pending until this returns).
  ::sigaction(sig, &r->previous[i], nullptr);
  g_handlers.fetch_sub(1);
  errno = saved_errno;
  ::raise(sig);
}

void restore(Record& r) {
  for (int i = 0; i < kCount; ++i)
    if (r.installed[i]) {
      ::sigaction(kHandled[i].signal, &r.previous[i], nullptr);
      r.installed[i] = false;
    }
}

// Puts `r` in place of the armed record (the handlers stay), or installs the handlers.
void arm(std::unique_ptr<Record> r);

}  // namespace

void utc_text(std::time_t t, char out[21]) {
  long long s = static_cast<long long>(t);
  long long days = s / 86400, secs = s % 86400;
  if (secs < 0) secs += 86400, days -= 1;
  // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar), in 400-year eras.
  days += 719468;
  const long long era = (days >= 0 ? days : days - 146096) / 146097;
  const long long doe = days - era * 146097;                                    // [0, 146096]
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const long long mp = (5 * doy + 2) / 153;  // [0, 11], from March
  const long long day = doy - (153 * mp + 2) / 5 + 1;
  const long long month = mp < 10 ? mp + 3 : mp - 9;
  long long year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0) year = 0;
  if (year > 9999) year = 9999;
  auto put = [&](int at, long long v, int digits) {
    for (int k = digits - 1; k >= 0; --k, v /= 10) out[at + k] = static_cast<char>('0' + v % 10);
  };
  put(0, year, 4);
  out[4] = '-';
  put(5, month, 2);
  out[7] = '-';
  put(8, day, 2);
  out[10] = 'T';
  put(11, secs / 3600, 2);
  out[13] = ':';
  put(14, secs / 60 % 60, 2);
  out[16] = ':';
  put(17, secs % 60, 2);
  out[19] = 'Z';
  out[20] = '\0';
}

void arm_signal_record(
    const std::string& path,
    const std::function<std::string(const char* signal, const char* cause)>& text) {
  auto r = std::make_unique<Record>();
  r->path = path;
  // A name remove_stale_temporaries() knows ("<file>.tmp.<pid>.<n>", n of 9 digits at most), with
  // an <n> no AtomicWriter of this process reaches.
  r->temp = path + ".tmp." + std::to_string(::getpid()) + ".999999999";
  for (int i = 0; i < kCount; ++i) {
    r->text[i] = text(kHandled[i].name, kHandled[i].cause);
    // The first placeholder (the text may quote the arguments, which could hold another).
    const std::size_t at = r->text[i].find(kEndedPlaceholder);
    check(at != std::string::npos, "run", "the record for ", kHandled[i].name,
          " must hold the end-time placeholder");
    r->ended_at[i] = at;
  }
  arm(std::move(r));
}

void arm_delayed_end(double seconds) {
  auto r = std::make_unique<Record>();
  const double s = seconds > 0 ? seconds : 0;
  r->delay.tv_sec = static_cast<time_t>(s);
  r->delay.tv_nsec = static_cast<long>((s - static_cast<double>(r->delay.tv_sec)) * 1e9);
  arm(std::move(r));
}

namespace {

void arm(std::unique_ptr<Record> r) {
  Record* raw = r.release();
  if (g_handlers.load() == 0) delete g_kept[1];  // else left to the end of the process
  g_kept[1] = g_kept[0];
  g_kept[0] = raw;
  Record* armed = g_record.load();
  if (armed != nullptr && g_done.load() && g_handlers.load() == 0) {
    // A signal was handled and the process lived on (its earlier action, a program's handler,
    // returned): that signal's handler is gone and the record was written. Armed afresh.
    disarm_signal_record();
    armed = nullptr;
  }
  if (armed != nullptr) {
    // Armed already: the handlers stay (no moment without them), the new texts take the earlier
    // ones' place, and the actions they restore are still those from before the first arming.
    for (int i = 0; i < kCount; ++i) {
      raw->previous[i] = armed->previous[i];
      raw->installed[i] = armed->installed[i];
      armed->installed[i] = false;
    }
    g_record.store(raw);
    return;
  }
  g_fired.store(false);
  g_done.store(false);
  g_end_at_ns.store(0);
  g_record.store(raw);
  for (int i = 0; i < kCount; ++i) {
    struct sigaction now = {};
    if (::sigaction(kHandled[i].signal, nullptr, &now) != 0) continue;
    if (!(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_IGN) continue;  // nohup: stays so
    // The earlier action is known before the handler can run and restore it.
    raw->previous[i] = now;
    struct sigaction act = {};
    act.sa_handler = on_signal;
    sigemptyset(&act.sa_mask);
    for (const Handled& h : kHandled) sigaddset(&act.sa_mask, h.signal);
    act.sa_flags = SA_RESTART;
    if (::sigaction(kHandled[i].signal, &act, nullptr) == 0) raw->installed[i] = true;
  }
}

}  // namespace

void disarm_signal_record() {
  if (Record* r = g_record.load()) restore(*r);
  g_record.store(nullptr);
}

}  // namespace latent::app
