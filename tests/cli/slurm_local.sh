#!/bin/sh
# A private one-machine Slurm cluster for the srun test, in a folder of its own: its munge key and
# socket, its slurm.conf (ports of its own, so that it runs beside a Slurm of the machine), its
# state and logs; nothing of the machine's is read or changed. Clients reach it with
# SLURM_CONF=<folder>/slurm.conf.
#   slurm_local.sh start <folder>   starts munged, slurmctld and slurmd; exits 0 once a node takes
#                                   work, else prints why and exits 0 all the same, with no
#                                   cluster (the srun test then says so and is skipped)
#   slurm_local.sh stop <folder>    ends them
set -u
action=$1
dir=$2
stop() {
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2> /dev/null
  done
  sleep 1
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.pid" ] && kill -KILL "$(cat "$dir/$d.pid")" 2> /dev/null
    rm -f "$dir/$d.pid"
  done
  return 0
}
give_up() {
  echo "slurm_local: no private Slurm cluster: $1"
  stop
  exit 0
}
case "$action" in
  stop)
    stop
    exit 0
    ;;
  start) ;;
  *)
    echo "usage: $0 start|stop FOLDER" >&2
    exit 2
    ;;
esac
for p in munged slurmctld slurmd; do
  command -v "$p" > /dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || give_up "$p is not installed"
done
[ "$(id -u)" -eq 0 ] || give_up "its daemons run as root here, and this is not root"
PATH=$PATH:/usr/sbin
stop
rm -rf "$dir"
mkdir -p "$dir/state" "$dir/spool" 2> /dev/null || give_up "cannot create $dir"
chmod 700 "$dir"
dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 2> /dev/null
chmod 400 "$dir/munge.key"
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge.seed" \
  > "$dir/munged.out" 2>&1 || give_up "munged did not start: $(cat "$dir/munged.out")"
host=$(hostname -s)
# The machine's processors (nproc would say OMP_NUM_THREADS, which the tests set to 1).
cpus=$(getconf _NPROCESSORS_ONLN)
# Ports from the folder's path, so that two build folders' clusters do not meet.
port=$((20000 + $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 20000))
cat > "$dir/slurm.conf" << EOF
ClusterName=latent-test
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ReturnToService=2
MpiDefault=none
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF" > "$dir/slurmctld.out" 2>&1 ||
  give_up "slurmctld did not start: $(tail -3 "$dir/slurmctld.log" 2> /dev/null)"
slurmd -f "$SLURM_CONF" > "$dir/slurmd.out" 2>&1 ||
  give_up "slurmd did not start: $(tail -3 "$dir/slurmd.log" 2> /dev/null)"
i=0
until sinfo -h -o %t 2> /dev/null | grep -qx -e idle -e mix; do
  i=$((i + 1))
  [ $i -gt 100 ] && give_up "its node does not take work after 20 s: $(sinfo 2>&1 | tail -2)"
  sleep 0.2
done
echo "slurm_local: a private Slurm cluster runs (SLURM_CONF=$SLURM_CONF)"
