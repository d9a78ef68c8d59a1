#!/bin/sh
# Starts a command, waits until the run folder's run.json exists, sends the command SIGTERM, and
# prints run.json once it no longer says "running" (a launcher such as mpirun may return before
# its processes have handled the signal). Exits 1 when run.json never appears or never changes.
#   interrupt.sh <run folder> <command> [arguments...]
set -u
out=$1
shift
"$@" > "$out.log" 2>&1 &
pid=$!
i=0
until [ -f "$out/run.json" ]; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $pid 2> /dev/null; then
    echo "no run.json in $out (the command: $*)"
    cat "$out.log"
    kill -KILL $pid 2> /dev/null
    exit 1
  fi
  sleep 0.1
done
sleep 1
kill -TERM $pid
wait $pid
i=0
while grep -q '"status": "running"' "$out/run.json"; do
  i=$((i + 1))
  if [ $i -gt 300 ]; then
    echo "run.json in $out still says running 30 s after SIGTERM"
    exit 1
  fi
  sleep 0.1
done
cat "$out/run.json"
