#!/bin/sh
# Starts a command, waits until the run folder's run.json exists (and a file in the folder that
# matches the pattern LATENT_INTERRUPT_AFTER, when set), sends the command SIGTERM, and
# prints run.json once it no longer says "running" (a launcher such as mpirun may return before
# its processes have handled the signal). Exits 1 when run.json never appears or never changes;
# the command never outlives the script (SIGKILL at the end when it is still there).
# LATENT_INTERRUPT_SIGNAL names another signal (STOP), and LATENT_INTERRUPT_RANK=<r> sends it to
# the process of rank r of a command that runs mpirun (Open MPI) or srun instead of the command;
# LATENT_INTERRUPT_WITH is a shell command that signals it instead (scancel for srun's tasks).
# LATENT_INTERRUPT_UNRECORDED=1: the end leaves no record (SIGKILL): run.json is printed as it is.
#   interrupt.sh <run folder> <command> [arguments...]
set -u
out=$1
shift
command="$*"
signal=${LATENT_INTERRUPT_SIGNAL:-TERM}
export LATENT_INTERRUPT_MARK=$$ # tells this command's processes from any other's
"$@" > "$out.log" 2>&1 &
pid=$!
target=
trap 'kill -KILL $pid $target 2> /dev/null' EXIT
fail() {
  echo "$1 (the command: $command)"
  cat "$out.log"
  exit 1
}
i=0
until [ -f "$out/run.json" ]; do
  i=$((i + 1))
  [ $i -gt 600 ] && fail "no run.json in $out after 60 s"
  kill -0 $pid 2> /dev/null || fail "the command ended before writing $out/run.json"
  sleep 0.1
done
if [ -n "${LATENT_INTERRUPT_AFTER:-}" ]; then
  i=0
  # shellcheck disable=SC2086 # a pattern, expanded on purpose
  until ls "$out"/$LATENT_INTERRUPT_AFTER > /dev/null 2>&1; do
    i=$((i + 1))
    [ $i -gt 600 ] && fail "no $out/$LATENT_INTERRUPT_AFTER after 60 s"
    kill -0 $pid 2> /dev/null || fail "the command ended before writing $out/$LATENT_INTERRUPT_AFTER"
    sleep 0.1
  done
fi
# The process of rank $1 of this command's mpirun or srun, by its environment.
rank_pid() {
  for e in /proc/[0-9]*/environ; do
    tr '\0' '\n' 2> /dev/null < "$e" | grep -qx "LATENT_INTERRUPT_MARK=$$" || continue
    tr '\0' '\n' 2> /dev/null < "$e" | grep -qx -e "OMPI_COMM_WORLD_RANK=$1" -e "SLURM_PROCID=$1" ||
      continue
    p=${e#/proc/}
    echo "${p%/environ}"
    return 0
  done
  return 1
}
sleep 1
target=$pid
if [ -n "${LATENT_INTERRUPT_RANK:-}" ]; then
  target=$(rank_pid "$LATENT_INTERRUPT_RANK") || fail "no process of rank $LATENT_INTERRUPT_RANK"
fi
if [ -n "${LATENT_INTERRUPT_WITH:-}" ]; then
  sh -c "$LATENT_INTERRUPT_WITH" || fail "$LATENT_INTERRUPT_WITH failed"
else
  kill -"$signal" "$target"
fi
i=0
while kill -0 $pid 2> /dev/null; do
  i=$((i + 1))
  [ $i -gt 300 ] && fail "the command still runs 30 s after SIG$signal"
  sleep 0.1
done
wait $pid
i=0
while [ -z "${LATENT_INTERRUPT_UNRECORDED:-}" ] && grep -q '"status": "running"' "$out/run.json"; do
  i=$((i + 1))
  [ $i -gt 300 ] && fail "run.json in $out still says running 30 s after SIG$signal"
  sleep 0.1
done
cat "$out/run.json"
