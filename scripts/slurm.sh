#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the SLURM executor's tests (issue 16) and CI:
# Debian's slurm-wlm + munge, slurmctld + slurmd run as root without containers
# (ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, no cgroups), one partition `ceg`
# of this machine's cores. No slurmdbd: job completion records go to a text file
# (JobCompType=jobcomp/filetxt), which `sacct --completion` reads.
#
# Usage:  bash scripts/slurm.sh start     install (apt-get, once) and start; idempotent
#         bash scripts/slurm.sh stop      stop slurmd, slurmctld and munged started here
#         bash scripts/slurm.sh status    sinfo, or exit 1 when the cluster is not up
# Options (environment): CEG_SLURM_DIR    state folder (default: /tmp/ceg-slurm)
#                       CEG_SLURM_CPUS   CPUs of the partition (default: nproc)
# Needs root (it starts daemons and installs packages). Everything it writes lives in
# $CEG_SLURM_DIR except /etc/slurm/slurm.conf (where the client tools look for it), which it
# writes only when absent or written by this script before.
set -euo pipefail
dir="${CEG_SLURM_DIR:-/tmp/ceg-slurm}"
cpus="${CEG_SLURM_CPUS:-$(nproc)}"
host="$(hostname -s)"
conf=/etc/slurm/slurm.conf
marker="# written by ceg-lab scripts/slurm.sh"

die() { echo "slurm.sh: $*" >&2; exit 1; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && command -v sbatch >/dev/null && return 0
  [[ $(id -u) == 0 ]] || die "slurm-wlm and munge are not installed; run as root to install them"
  echo "slurm.sh: installing slurm-wlm and munge (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
  if [[ -e $conf ]] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; not touching a real cluster's configuration"
  fi
  mkdir -p /etc/slurm "$dir/state" "$dir/spool" "$dir/log"
  cat >"$conf.tmp" <<EOF
$marker
ClusterName=ceg
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MaxArraySize=10001
SchedulerParameters=defer_batch=0
MessageTimeout=30
KillWait=10
MinJobAge=3600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=ceg Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  mv "$conf.tmp" "$conf"
}

up() { timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc'; }

start() {
  [[ $(id -u) == 0 ]] || die "start needs root (daemons)"
  install
  write_conf
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true; chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  if ! munge -n >/dev/null 2>&1; then
    if id munge >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; else /usr/sbin/munged --force; fi
  fi
  pgrep -F "$dir/slurmctld.pid" slurmctld >/dev/null 2>&1 || slurmctld
  pgrep -F "$dir/slurmd.pid" slurmd >/dev/null 2>&1 || slurmd
  for _ in $(seq 1 60); do
    if up; then
      scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
      echo "slurm.sh: cluster up: partition ceg, $cpus CPUs on $host (state in $dir)" >&2
      sinfo
      return 0
    fi
    sleep 1
  done
  sinfo >&2 || true
  tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  die "the cluster did not come up within 60 s (logs above)"
}

stop() {
  local f
  for f in slurmd slurmctld; do
    local pid
    pid="$(cat "$dir/$f.pid" 2>/dev/null || true)"
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  done
  echo "slurm.sh: stopped slurmd and slurmctld (munged left running: other tools may use it)" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) up && sinfo || { echo "slurm.sh: the cluster is not up" >&2; exit 1; } ;;
  *) die "usage: bash scripts/slurm.sh start|stop|status" ;;
esac
