# A simulated cluster for the shell tests, sourced after tests/lib.sh: N
# hosts as network namespaces joined by a Linux bridge over real TCP. mpirun
# runs in the root namespace, which holds the bridge's address (a head node:
# losing a host never kills mpirun), and reaches the hosts through an rsh
# agent that runs each command inside the host's namespace with a hostname
# of its own. With --blob, every host has its own pubfs mount (tests/pubfs:
# a blob-storage mount that publishes a file on close) over one shared
# backing folder, seen by its processes at one common path.
#
#   cluster_up N [--blob BACKING COMMON_PATH]   (skips with 77 when it cannot)
#   cluster_mpirun [--via CMD] [--no-params] [--no-tuning] MPIRUN_ARGS...
#   host_kill I; host_remount I; host_link_down I; host_link_up I; host_pids I
#   cluster_down                                 (idempotent; trapped on exit)
#   cluster_leaks                                (prints what is left; empty when clean)
#
# Hosts are numbered from 0. After cluster_up: CLUSTER_ID, CLUSTER_SUBNET,
# CLUSTER_HEAD (mpirun's address), CLUSTER_ADDRS and CLUSTER_NAMES (per host),
# CLUSTER_DIR (agent, hostfile, logs). Every process the cluster starts
# carries BS_CLUSTER=$CLUSTER_TAG (unique to the run) in its environment:
# that is how cluster_down and cluster_leaks find them. cluster_up sets the
# EXIT, INT and TERM traps to cluster_down; a caller with cleanup of its own
# sets its traps after cluster_up and calls cluster_down from them.

CLUSTER_NET=${CLUSTER_NET:-10.213}
CLUSTER_ID= CLUSTER_TAG= CLUSTER_LIVE=

cluster_skip() {
  echo "SKIP: $*"
  exit 77
}

# The processes of this cluster, found by their environment.
cluster_pids() {
  [ -n "$CLUSTER_TAG" ] || return 0
  grep -lzsx "BS_CLUSTER=$CLUSTER_TAG" /proc/[0-9]*/environ 2>/dev/null |
    cut -d/ -f3 | grep -vx "$$"
}

# Claims a free cluster number by creating its bridge (atomic: a second
# claimant gets "File exists"), so that tests running at once never share
# names or a subnet.
cluster_claim() {
  local k n err
  for k in $(seq 0 249); do
    n=$((($$ + k) % 250 + 1))
    if err=$(ip link add "bsf$n" type bridge 2>&1); then
      CLUSTER_ID=bsf$n
      CLUSTER_TAG=$CLUSTER_ID.$$.$(date +%s%N)
      CLUSTER_LIVE=1
      CLUSTER_SUBNET=$CLUSTER_NET.$n.0/24
      CLUSTER_HEAD=$CLUSTER_NET.$n.1
      return 0
    fi
    case $err in
    *"File exists"*) ;;
    *) cluster_skip "cannot create a bridge: $err" ;;
    esac
  done
  cluster_skip "no free bridge name bsf1..bsf250"
}

# cluster_up N [--blob BACKING COMMON_PATH]: BACKING is the blob container
# (a folder that must exist); COMMON_PATH, made if missing, is where every
# process on the hosts sees its own host's mount of it.
cluster_up() {
  local n=$1 i ns
  shift
  CLUSTER_BACKING= CLUSTER_COMMON=
  if [ "${1:-}" = --blob ]; then
    CLUSTER_BACKING=$(cd "$2" && pwd) && CLUSTER_COMMON=$3 || return 1
    mkdir -p "$CLUSTER_COMMON" || return 1
    CLUSTER_COMMON=$(cd "$CLUSTER_COMMON" && pwd)
  fi
  [ "$(id -u)" = 0 ] || cluster_skip "not root"
  command -v ip >/dev/null && command -v unshare >/dev/null || cluster_skip "no ip/unshare"
  [ -n "${MPIRUN:-}" ] || cluster_skip "no mpirun"
  if [ -n "$CLUSTER_BACKING" ]; then
    [ -c /dev/fuse ] || cluster_skip "no /dev/fuse"
    [ -x "$top_builddir/tests/pubfs" ] || cluster_skip "tests/pubfs not built (no libfuse3)"
    command -v fusermount3 >/dev/null || cluster_skip "no fusermount3"
  fi
  cluster_claim
  trap cluster_down EXIT
  trap 'cluster_down; exit 130' INT
  trap 'cluster_down; exit 143' TERM
  CLUSTER_DIR=$WORK/cluster
  CLUSTER_TMP=/tmp/$CLUSTER_ID # node-local disks; short for Open MPI's sockets
  CLUSTER_N=$n
  CLUSTER_ADDRS=() CLUSTER_NAMES=()
  cluster_unmount
  rm -rf "$CLUSTER_DIR" "$CLUSTER_TMP"
  mkdir -p "$CLUSTER_DIR" "$CLUSTER_TMP"
  ip addr add "$CLUSTER_HEAD/24" dev "$CLUSTER_ID" && ip link set "$CLUSTER_ID" up ||
    cluster_skip "cannot configure bridge $CLUSTER_ID"
  for i in $(seq 0 $((n - 1))); do
    ns=$CLUSTER_ID-h$i
    CLUSTER_ADDRS[i]=$CLUSTER_NET.${CLUSTER_ID#bsf}.$((i + 2))
    CLUSTER_NAMES[i]=$CLUSTER_ID-node$i
    ip netns del "$ns" 2>/dev/null # a leftover of a killed run
    ip netns add "$ns" && ip netns exec "$ns" unshare --uts --mount true ||
      cluster_skip "cannot make a host: ip netns add, or unshare in it, failed"
    ip link add "${CLUSTER_ID}v$i" type veth peer name eth0 netns "$ns" ||
      cluster_skip "cannot create a veth pair"
    ip link set "${CLUSTER_ID}v$i" master "$CLUSTER_ID" up &&
      ip -n "$ns" addr add "${CLUSTER_ADDRS[i]}/24" dev eth0 &&
      ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || return 1
    mkdir -p "$CLUSTER_TMP/h$i/tmp"
    if [ -n "$CLUSTER_BACKING" ] && ! host_mount "$i"; then
      [ "$i" = 0 ] && cluster_skip "cannot mount a FUSE file system here"
      return 1
    fi
    echo "${CLUSTER_ADDRS[i]} slots=${CLUSTER_SLOTS:-1}" >>"$CLUSTER_DIR/hostfile"
  done
  cluster_agent >"$CLUSTER_DIR/agent" && chmod +x "$CLUSTER_DIR/agent"
}

# The rsh agent, called by mpirun as AGENT HOST COMMAND...: runs COMMAND in
# HOST's namespace, with HOST's hostname, node-local TMPDIR and (with
# --blob) HOST's own mount at the common path. CLUSTER_RSH says what
# mpirun's launch child (ssh, on a real head node) sees when the host dies:
#   close (default): it ends with the host (it is the remote command), as
#     when a dying host closes the connection;
#   hang: it waits in the root namespace and, when the remote side was
#     killed, hangs like ssh to a host that vanished without a word.
cluster_agent() {
  local i
  echo '#!/bin/sh'
  echo '# rsh agent of a simulated cluster (tests/cluster.sh): AGENT HOST COMMAND...'
  echo 'host=$1'
  echo 'shift'
  echo 'case $host in'
  for i in $(seq 0 $((CLUSTER_N - 1))); do
    echo "${CLUSTER_ADDRS[i]} | ${CLUSTER_NAMES[i]}) i=$i ;;"
  done
  echo '*) echo "cluster agent: unknown host $host" >&2; exit 255 ;;'
  echo 'esac'
  echo "mnt= common=$CLUSTER_COMMON"
  [ -n "$CLUSTER_BACKING" ] && echo "mnt=$CLUSTER_TMP/h\$i/mnt"
  [ "${CLUSTER_RSH:-close}" = close ] && printf 'exec '
  echo "env BS_CLUSTER=$CLUSTER_TAG TMPDIR=$CLUSTER_TMP/h\$i/tmp \\"
  echo "  ip netns exec $CLUSTER_ID-h\$i unshare --uts --mount sh -c '"
  echo '    hostname "$1" || exit 255'
  echo '    if [ -n "$2" ]; then mount --bind "$2" "$3" || exit 255; fi'
  echo '    shift 3'
  printf '%s' "    exec sh -c \"\$*\"' agent $CLUSTER_ID-node\$i \"\$mnt\" \"\$common\" \"\$@\""
  if [ "${CLUSTER_RSH:-close}" = close ]; then
    echo
  else
    echo ' <&0 &' # no /dev/null for stdin
    echo '{ wait $!; } 2>/dev/null'
    echo 'rc=$?'
    echo '[ $rc -lt 128 ] || exec sleep 1000000 2>/dev/null'
    echo 'exit $rc'
  fi
}

# host_mount I: a fresh pubfs daemon for host I (a new node: empty cache).
host_mount() {
  local i=$1 m=$CLUSTER_TMP/h$1/mnt k
  mkdir -p "$m" "$CLUSTER_TMP/h$i/cache"
  env BS_CLUSTER="$CLUSTER_TAG" "$top_builddir/tests/pubfs" "$CLUSTER_BACKING" "$m" -f \
    --cache="$CLUSTER_TMP/h$i/cache" ${CLUSTER_PUBFS_OPTS:-} \
    2>>"$CLUSTER_DIR/pubfs$i.log" &
  echo $! >"$CLUSTER_DIR/pubfs$i.pid"
  disown $! # its death is host_kill's point, not worth a shell message
  for k in $(seq 50); do
    grep -q " $m fuse.pubfs " /proc/mounts && return 0
    sleep 0.1
  done
  echo "cluster: pubfs did not mount for host $i: $(cat "$CLUSTER_DIR/pubfs$i.log")" >&2
  return 1
}

# cluster_mpirun [--via CMD] [--no-params] [--no-tuning] ARGS...: mpirun
# across the hosts, pinned to the bridge's subnet. --via CMD launches
# through CMD (a wrapper that takes mpirun's arguments and sets the
# parameters of scripts/mpi-params itself); without it those parameters are
# passed here unless --no-params. --no-tuning leaves out what only a
# simulation on few cores needs (mpi_yield_when_idle 1, --bind-to none):
# every namespace looks like an idle machine to Open MPI. mpirun and its
# wrapper are ended after CLUSTER_TIMEOUT seconds (default 120).
cluster_mpirun() {
  local launcher=$MPIRUN params=1 tuning=1 name value pid
  while :; do
    case ${1:-} in
    --via) launcher=$2 params=0 && shift 2 ;;
    --no-params) params=0 && shift ;;
    --no-tuning) tuning=0 && shift ;;
    *) break ;;
    esac
  done
  local mca=(--hostfile "$CLUSTER_DIR/hostfile" --mca plm_rsh_agent "$CLUSTER_DIR/agent"
    --mca btl tcp,self --mca btl_tcp_if_include "$CLUSTER_SUBNET"
    --mca oob_tcp_if_include "$CLUSTER_SUBNET" --oversubscribe)
  [ "$tuning" = 1 ] && mca+=(--mca mpi_yield_when_idle 1 --bind-to none)
  if [ "$params" = 1 ]; then
    while read -r name value; do
      case $name in '' | \#*) continue ;; esac
      mca+=(--mca "$name" "$value")
    done <"$top_srcdir/scripts/mpi-params"
  fi
  # shellcheck disable=SC2086 # CMD may carry its own arguments
  env BS_CLUSTER="$CLUSTER_TAG" timeout -k 5 "${CLUSTER_TIMEOUT:-120}" $launcher \
    "${mca[@]}" "$@" &
  pid=$!
  wait "$pid"
}

# host_kill I: node I is lost: every process in its namespace, and its
# pubfs daemon with the cache (what was not closed is gone).
host_kill() {
  local k pids
  for k in $(seq 20); do
    pids=$(host_pids "$1")
    [ -n "$pids" ] || break
    kill -9 $pids 2>/dev/null
    sleep 0.02
  done
  [ -f "$CLUSTER_DIR/pubfs$1.pid" ] && kill -9 "$(cat "$CLUSTER_DIR/pubfs$1.pid")" 2>/dev/null
  return 0
}

# host_remount I: the replacement node's mount (after host_kill).
host_remount() {
  [ -f "$CLUSTER_DIR/pubfs$1.pid" ] && kill -9 "$(cat "$CLUSTER_DIR/pubfs$1.pid")" 2>/dev/null
  fusermount3 -u -z "$CLUSTER_TMP/h$1/mnt" 2>/dev/null
  host_mount "$1"
}

# host_pids I: the processes of host I (its namespace).
host_pids() { ip netns pids "$CLUSTER_ID-h$1" 2>/dev/null; }

# host_link_down I: node I stays up, but its packets are dropped silently.
host_link_down() { ip link set "${CLUSTER_ID}v$1" down; }
host_link_up() { ip link set "${CLUSTER_ID}v$1" up; }

# Unmounts this cluster's pubfs mounts (also a dead one).
cluster_unmount() {
  local m
  for m in $(awk -v t="/tmp/$CLUSTER_ID/" '$3 == "fuse.pubfs" && index($2, t) == 1 {print $2}' /proc/mounts); do
    fusermount3 -u -z "$m" 2>/dev/null
  done
}

cluster_down() {
  local k pids i
  # Once only: the number may be claimed by another test right after.
  [ "$CLUSTER_LIVE" = 1 ] || return 0
  for k in $(seq 20); do
    pids="$(cluster_pids) $(for i in $(seq 0 $((${CLUSTER_N:-0} - 1))); do host_pids "$i"; done)"
    [ -n "${pids// /}" ] || break
    kill -9 $pids 2>/dev/null
    sleep 0.05
  done
  cluster_unmount
  for i in $(seq 0 $((${CLUSTER_N:-0} - 1))); do
    ip link del "${CLUSTER_ID}v$i" 2>/dev/null # now; a namespace dies lazily
    ip netns del "$CLUSTER_ID-h$i" 2>/dev/null
  done
  ip link del "$CLUSTER_ID" 2>/dev/null
  rm -rf "/tmp/$CLUSTER_ID"
  CLUSTER_LIVE=0
  return 0
}

# What this cluster left behind, one line each; nothing when clean.
cluster_leaks() {
  local p
  [ -n "$CLUSTER_ID" ] || return 0
  ip netns list 2>/dev/null | grep "^$CLUSTER_ID-h" | sed 's/^/namespace: /'
  ip -o link show 2>/dev/null | awk -v id="$CLUSTER_ID" '
    { name = $2; sub(/[:@].*/, "", name) }
    name == id || index(name, id "v") == 1 { print "link: " name }'
  awk -v t="/tmp/$CLUSTER_ID/" 'index($2, t) == 1 {print "mount: " $2}' /proc/mounts
  for p in $(cluster_pids); do
    echo "process: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-100)"
  done
  [ -e "/tmp/$CLUSTER_ID" ] && echo "directory: /tmp/$CLUSTER_ID"
  return 0
}

# field_reference: what the field tests start from: the launcher ($LAUNCH),
# the example model and input ($MODEL, $IN), and their scores from one
# rank in $WORK/ref.h5 (a failure there ends the test).
field_reference() {
  LAUNCH=$top_srcdir/scripts/batchscore-mpirun
  MODEL=$DATA/example/model.json
  IN=$DATA/example/features.h5
  run_bs 1 --quiet --model "$MODEL" --input "$IN" --output "$WORK/ref.h5" --threads 1 ||
    { fail "reference run: $(cat "$WORK/err")"; finish; }
}
