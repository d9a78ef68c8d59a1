#!/bin/sh
# A run's folder while its run still writes it, and after that run's process was killed without a
# record: starts `<latent> <arguments> --out <folder>`, waits for its first training state, runs
# the same command with --overwrite (which must be refused: the folder is in use), kills the first
# with SIGKILL (run.json keeps "running"), runs the command once more (refused, saying that the
# run's process is gone), and prints both refusals. Exits 1 when a step does not happen as it
# should; the first command never outlives the script. With LATENT_IN_USE_LAUNCH set (e.g.
# "mpirun -np 2"), the two refused commands are started through it.
#   in_use.sh <folder> <latent> <arguments...>
set -u
out=$1
cli=$2
shift 2
"$cli" "$@" --out "$out" > "$out.log" 2>&1 &
pid=$!
trap 'kill -KILL $pid 2> /dev/null' EXIT
fail() {
  echo "$1"
  cat "$out.log"
  exit 1
}
i=0
until ls "$out"/state-*.safetensors > /dev/null 2>&1; do  # the run keeps its last two
  i=$((i + 1))
  [ $i -gt 600 ] && fail "no training state in $out after 60 s"
  kill -0 $pid 2> /dev/null || fail "the run ended before writing a training state"
  sleep 0.1
done
echo "--- with --overwrite while the run runs"
# shellcheck disable=SC2086 # the launcher's words
timeout 60 ${LATENT_IN_USE_LAUNCH:-} "$cli" "$@" --out "$out" --overwrite 2>&1 &&
  fail "a second run took the folder of a run that runs"
kill -0 $pid 2> /dev/null || fail "the first run ended while the second was refused"
kill -KILL $pid
wait $pid 2> /dev/null
pid= # gone: not to be killed again at the end
echo "--- again, once its process was killed"
# shellcheck disable=SC2086
timeout 60 ${LATENT_IN_USE_LAUNCH:-} "$cli" "$@" --out "$out" 2>&1 &&
  fail "a run took the folder of a killed one without --overwrite"
exit 0
