// Whether the run a folder's run.json says is "running" still runs: the process it names (its pid,
// its machine, its start) alive, or gone without a record (ended by SIGKILL, the out-of-memory
// killer or a crash). What keeps a second `latent train` out of a folder a run still writes, and
// tells the user what happened to one that did not finish.
#pragma once

#include <string>

namespace latent::app {

// The fields of a run.json that say who wrote it ("" and 0 where the file or the field is absent).
struct RunRecord {
  std::string status;   // "running", "finished", "failed", "interrupted"
  long long pid = 0;    // the process of rank 0
  std::string host;     // the machine it ran on (dist::host_name())
  std::string started;  // "YYYY-MM-DDTHH:MM:SSZ"
  int processes = 1;    // the ranks of the run
};
RunRecord read_run_record(const std::string& path);

enum class RunOwner {
  alive,    // the process runs on this machine and began before the run (within a minute): not a
            // pid reused since
  gone,     // this machine has no such process (or only a newer one with its pid)
  unknown,  // another machine's process, or a record that does not say
};
RunOwner run_owner(const RunRecord& r);

// One run at a time in a folder: an exclusive lock (flock) on <folder>/.latent-lock, held while
// the object lives and released however the process ends (SIGKILL and crashes included), on any
// machine that shares the folder's file system and its locks. Where the file system has no locks
// (or the lock file cannot be made), state() says so and the caller falls back on run_owner().
class FolderLock {
 public:
  enum class State { taken, held_elsewhere, unsupported };
  explicit FolderLock(const std::string& folder);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;
  State state() const { return state_; }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  State state_ = State::unsupported;
  std::string path_;
};

}  // namespace latent::app
