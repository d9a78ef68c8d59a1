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
  std::string host;     // the machine it ran on (host_name())
  std::string started;  // "YYYY-MM-DDTHH:MM:SSZ"
};
RunRecord read_run_record(const std::string& path);

enum class RunOwner {
  alive,    // the process runs on this machine and began before the run (within a minute): not a
            // pid reused since
  gone,     // this machine has no such process (or only a newer one with its pid)
  unknown,  // another machine's process, or a record that does not say
};
RunOwner run_owner(const RunRecord& r);

// This machine's name (gethostname; "?" when it has none).
std::string host_name();

}  // namespace latent::app
