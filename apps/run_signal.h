// What a run's folder says when the run is ended by a signal: while armed, a SIGTERM (a kill,
// Slurm's scancel or time limit, mpirun ending the job when another rank failed), SIGINT (Ctrl-C),
// SIGHUP (the terminal closed), SIGPIPE (the pipe its output went to closed), SIGQUIT (Ctrl-\),
// SIGUSR1 or SIGUSR2 (a batch system's notice before it ends a job: Slurm's --signal, LSF) or
// SIGXCPU (a CPU time limit) first replaces a file (run.json) with the text made for that signal,
// its end time filled in, then ends the process as the signal would have (the action it had
// before, re-raised), with the temporary files of the writes under way removed
// (data::remove_pending_temporaries). The file is replaced atomically
// (a temporary file in the same folder, renamed over it), from the signal handler with
// async-signal-safe calls only: the texts are made when arming. A signal that was ignored when
// arming (nohup) stays ignored; SIGKILL cannot be caught (the file then keeps what it had).
//
//   app::arm_signal_record(out / "run.json", [&](const char* signal, const char* cause) {
//     return json_with(signal, cause, app::kEndedPlaceholder);
//   });
//   ... train ...
//   app::arm_signal_record(out / "run.json", finished_text);  // the last record, armed first
//   write "finished"; app::disarm_signal_record();
#pragma once

#include <ctime>
#include <functional>
#include <string>
#include <string_view>

namespace latent::app {

// Where a text puts its end time: its first occurrence is replaced by utc_text() of the moment of
// the signal (put it before anything that quotes user input).
inline constexpr std::string_view kEndedPlaceholder = "0000-00-00T00:00:00Z";

// `text(signal, cause)` gives the file's text for each signal handled ("SIGTERM" and what usually
// sends it, in words); each text holds kEndedPlaceholder. Replaces an earlier arming. Throws
// latent::Error when a text lacks the placeholder. Armed already, the new texts replace the earlier
// ones with the handlers left in place (no moment in between without them): how a run's last
// record ("finished") is armed before it is written, so that a signal while it is written leaves
// that record too.
void arm_signal_record(
    const std::string& path,
    const std::function<std::string(const char* signal, const char* cause)>& text);
// For the ranks but 0 of a job across processes, which write no record: while armed, the same
// signals end the process as they would have, but `seconds` later. A launcher signals every rank
// alike (mpirun, srun, scancel), and Slurm kills the whole job with SIGKILL as soon as one rank is
// gone: rank 0 thus writes its record first. Replaces an earlier arming.
void arm_delayed_end(double seconds);
// The signals' actions as they were before arming; nothing is written any more.
void disarm_signal_record();

// t as "YYYY-MM-DDTHH:MM:SSZ" (UTC), 20 characters and a terminating zero, without the C library
// (async-signal-safe). Years 0 to 9999.
void utc_text(std::time_t t, char out[21]);

}  // namespace latent::app
