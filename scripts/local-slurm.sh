#!/usr/bin/env bash
# A one-node Slurm cluster with accounting on this machine, for trying the HPC path
# (config/profiles/slurm, parallel.backend: slurm) on a workstation and in CI.
#
#   sudo scripts/local-slurm.sh            # install (first time), configure, start, check
#   sudo scripts/local-slurm.sh --status   # what runs; exit 0 when sbatch/sacct work
#   sudo scripts/local-slurm.sh --stop     # stop the daemons this script starts
#   scripts/local-slurm.sh --no-install    # start only if the packages are installed (the
#                                          # test fixture of tests/test_slurm.py uses this)
#
# Debian/Ubuntu, as root, no systemd needed: Debian's packages (slurm-wlm = slurmctld + slurmd +
# client, slurmdbd, munge, mariadb-server) are installed by name with apt-get, and the daemons
# are started directly. Idempotent: a second run installs nothing, rewrites a config file only
# when its content changes (then restarts the daemons) and starts only what is not running.
#
# Sizing: one node named $(hostname -s) with CPUs=$(nproc) and RealMemory = MemTotal of
# /proc/meminfo minus XCLUSTERS_SLURM_RESERVED_MB (default 512 MB for the OS and the daemons).
# Each core may be given to XCLUSTERS_SLURM_OVERSUBSCRIBE jobs at once (default 4,
# OverSubscribe=FORCE): a build_shard job that only runs the Dask scheduler holds its cores
# while the dask-jobqueue worker jobs it submits need cores too; without sharing, a 2-core
# machine could deadlock with the shard job waiting for workers that can never start.
#
# Accounting (slurmdbd + MariaDB) is required: Snakemake's Slurm executor plugin polls sacct,
# and without accounting it waits forever after the job has ended. Cluster "xclusters",
# account "xclusters" (the default account of root and of the invoking user) and partition
# "debug" (the default) are created. Slurm jobs may run as root here (Slurm's default,
# DisableRootJobs=NO) and get the submitting shell's environment (sbatch --export=ALL).
#
# Every step prints its duration ("[local-slurm] <step>: N s").
set -euo pipefail

CLUSTER=xclusters
ACCOUNT=xclusters
PARTITION=debug
ETC=/etc/slurm
LOGDIR=/var/log/slurm
SPOOL=/var/spool
STATE=/var/lib/xclusters-slurm         # mariadb pid/log of this script
RESERVED_MB="${XCLUSTERS_SLURM_RESERVED_MB:-512}"
OVERSUBSCRIBE="${XCLUSTERS_SLURM_OVERSUBSCRIBE:-4}"
PACKAGES=(slurm-wlm slurm-client slurmdbd munge mariadb-server)
WAIT_S="${XCLUSTERS_SLURM_WAIT_S:-120}"

say() { echo "[local-slurm] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
now() { date +%s%N; }              # nanoseconds
secs() { local ms=$(( ($2 - $1) / 1000000 )); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
T0=$(now)
step_start=$T0
step() {  # step NAME: report the previous step's time, start the next
  local t; t=$(now)
  [ -n "${STEP_NAME:-}" ] && say "$STEP_NAME: $(secs "$step_start" "$t") s"
  STEP_NAME="$1"; step_start=$t
}
done_steps() { step ""; say "total: $(secs "$T0" "$(now)") s"; }

# Each daemon is found through its pid file (never by name: other instances are not ours).
pidfile() {
  case "$1" in
    munged) echo /run/munge/munged.pid ;;
    mariadbd) echo /run/mysqld/mysqld.pid ;;
    *) echo "/run/$1.pid" ;;
  esac
}
daemon_pid() {  # the pid of daemon NAME if it runs, else nothing (exit 1)
  local f pid
  f="$(pidfile "$1")"
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] || return 1
  echo "$pid"
}
running() { daemon_pid "$1" >/dev/null; }
wait_for() {  # wait_for DESCRIPTION COMMAND...: retry COMMAND for up to WAIT_S seconds
  local what="$1"; shift
  local deadline=$(( $(date +%s) + WAIT_S ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      die "$what: not ready after ${WAIT_S} s (logs: $LOGDIR, $STATE)"
    fi
    sleep 1
  done
}

stop_daemon() {  # stop_daemon NAME: TERM to the pid of its pid file, then wait up to 30 s
  local name="$1" pid i
  pid="$(daemon_pid "$name")" || return 0
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  die "$name (pid $pid) did not stop; see $LOGDIR"
}

do_stop() {
  # slurmd first (it kills the jobs' steps), then the controller, accounting, database, munge.
  if command -v scancel >/dev/null 2>&1 && running slurmctld; then
    scancel --state=PENDING,RUNNING --full 2>/dev/null || true
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon slurmdbd
  stop_daemon mariadbd
  stop_daemon munged
}

# The node takes jobs: idle on a fresh start, mix/alloc when jobs of an earlier start run.
node_up() { sinfo -h -n "$(hostname -s)" -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)$'; }

do_status() {
  local rc=0 d
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$d"; then say "$d: running"; else say "$d: not running"; rc=1; fi
  done
  if [ $rc -eq 0 ]; then
    sinfo || rc=1
    sacct -n -X -S now-1hours -o JobID,JobName,State >/dev/null || rc=1
    sinfo -V >&2 || true
  fi
  return $rc
}

write_if_changed() {  # write_if_changed PATH MODE: stdin -> PATH; return 0 when it changed
  local path="$1" mode="$2" tmp
  tmp="$(mktemp)"
  cat > "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then rm -f "$tmp"; return 1; fi
  install -m "$mode" -o root -g root "$tmp" "$path"
  rm -f "$tmp"
  say "wrote $path"
  return 0
}

do_start() {
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): it installs packages and starts daemons"

  step "install packages (${PACKAGES[*]})"
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$NO_INSTALL" -eq 0 ] || die "not installed: ${missing[*]} (run $0 without --no-install)"
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    # No service may start from the packages' maintainer scripts: this script starts them,
    # with its own configuration (a policy-rc.d that denies, only if none exists).
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e $policy ]; then
      printf '#!/bin/sh\nexit 101\n' > $policy; chmod 755 $policy; own_policy=1
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || say "apt-get update failed; trying the install with the cached lists"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      [ $own_policy -eq 1 ] && rm -f $policy
      die "apt-get install ${missing[*]} failed"
    fi
    [ $own_policy -eq 1 ] && rm -f $policy
  fi

  step "configure"
  local host cpus mem_kb real_mb changed=0
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  real_mb=$(( mem_kb / 1024 - RESERVED_MB ))
  [ "$real_mb" -gt 0 ] || die "MemTotal ${mem_kb} kB leaves no memory after ${RESERVED_MB} MB reserved"
  mkdir -p "$ETC" "$LOGDIR" "$SPOOL/slurmctld" "$SPOOL/slurmd" "$STATE"
  write_if_changed "$ETC/slurm.conf" 644 <<EOF && changed=1
# Written by xclusters scripts/local-slurm.sh: a one-node cluster on $host.
ClusterName=$CLUSTER
# Loopback addresses: no DNS entry for the host name is needed (containers).
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# No cgroups needed (containers, no systemd): processes tracked through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
# sacct shows the --comment of a job (Snakemake's Slurm plugin writes the rule name there).
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
# Fast turnaround for tests: time-limited jobs get SIGKILL 5 s after SIGTERM (default 30),
# finished jobs leave slurmctld's memory after 60 s (sacct keeps them).
KillWait=5
MinJobAge=60
ReturnToService=2
SchedulerParameters=defer_batch=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:$OVERSUBSCRIBE
EOF
  write_if_changed "$ETC/cgroup.conf" 644 <<EOF && changed=1
# Written by xclusters scripts/local-slurm.sh. Not used (ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none); present so that slurmd does not look for cgroup settings.
CgroupPlugin=autodetect
EOF
  # slurmdbd runs as root and reaches MariaDB's root account through its Unix socket
  # (MariaDB authenticates root@localhost by unix_socket), so no password is stored.
  write_if_changed "$ETC/slurmdbd.conf" 600 <<EOF && changed=1
# Written by xclusters scripts/local-slurm.sh.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$LOGDIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
  if [ $changed -eq 1 ] && { running slurmctld || running slurmd || running slurmdbd; }; then
    say "configuration changed: restarting the Slurm daemons"
    stop_daemon slurmd; stop_daemon slurmctld; stop_daemon slurmdbd
  fi

  step "start munged"
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge; chown munge:munge /run/munge; chmod 755 /run/munge
  if ! running munged; then
    runuser -u munge -- /usr/sbin/munged
  fi
  wait_for "munge" bash -c 'munge -n | unmunge'

  step "start mariadbd"
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  if ! running mariadbd; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    nohup /usr/sbin/mariadbd --user=mysql --skip-networking=0 --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid >"$STATE/mariadb.log" 2>&1 &
  fi
  wait_for "mariadbd" mariadb-admin ping

  step "start slurmdbd"
  running slurmdbd || /usr/sbin/slurmdbd
  wait_for "slurmdbd" sacctmgr -n list cluster

  step "accounting: cluster, account, users"
  sacctmgr -n list cluster format=cluster%40 | grep -qw "$CLUSTER" \
    || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  sacctmgr -n list account format=account%40 | grep -qw "$ACCOUNT" \
    || sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" \
         Description="xclusters workflow tests" Organization=xclusters >/dev/null
  local u
  for u in root ${SUDO_USER:-}; do
    sacctmgr -n list assoc user="$u" account="$ACCOUNT" format=user%40 | grep -qw "$u" \
      || sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
  done

  step "start slurmctld + slurmd"
  running slurmctld || /usr/sbin/slurmctld
  wait_for "slurmctld" scontrol ping
  running slurmd || /usr/sbin/slurmd
  # A node left DOWN/DRAIN by an earlier run (e.g. killed slurmd) is put back.
  local state
  state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
  case "$state" in
    down*|drain*|drng*|fail*) scontrol update NodeName="$host" State=RESUME || true ;;
  esac
  wait_for "node $host up (sinfo: idle, mix or alloc)" node_up

  step "check: sbatch --wrap hostname, sacct"
  local jobid out
  jobid="$(sbatch --parsable -J local-slurm-check -o /dev/null --wrap hostname)"
  wait_for "job $jobid completed (sacct)" bash -c \
    "sacct -n -X -j $jobid -o State%20 | grep -qw COMPLETED"
  out="$(sacct -n -X -j "$jobid" -o JobID,State,ExitCode)"
  say "sacct: $out"
  done_steps
  say "ready: $(sinfo -V), node $host CPUs=$cpus RealMemory=${real_mb}MB, partition $PARTITION, account $ACCOUNT"
}

NO_INSTALL=0
ACTION=--start
for arg in "$@"; do
  case "$arg" in
    --no-install) NO_INSTALL=1 ;;
    *) ACTION="$arg" ;;
  esac
done
case "$ACTION" in
  --start|start) do_start ;;
  --stop|stop) [ "$(id -u)" -eq 0 ] || die "run as root"; do_stop ;;
  --status|status) do_status ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown option $1 (use --start, --stop, --status)" ;;
esac
