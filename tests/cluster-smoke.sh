#!/bin/bash
# The simulated field (tests/cluster.sh) works: batchscore runs across 4
# network-namespace hosts bitwise as on one rank, each host under its own
# name; a killed host and a host whose link goes down both end the job (the
# test prints mpirun's status, what it said and how long it took); nothing
# is left behind, also when a test using the cluster fails or is killed.
#
# CLUSTER_FACTS=N adds N trials of each lost-node case (both CLUSTER_RSH
# modes, a killed rank, a signalled mpirun) and prints a tally of mpirun's
# statuses and stderr lines, then what a signalled mpirun sends the ranks
# and what the simulation's tuning is worth (CLUSTER_FACTS_PARTS picks
# among "lost signals tuning"); CLUSTER_FACTS_SLOW=1 also times a lost link
# without the keepalive parameters (minutes). None of it runs by default.
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster.sh"
CLUSTER_TIMEOUT=60 # a hang is a failure
MODEL=$DATA/example/model.json
IN=$DATA/example/features.h5

now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}

# What mpirun and the ranks said, one line per kind of message.
key_lines() {
  grep -hoE "ORTE was unable to reliably start one or more daemons|ORTE has lost \
communication with a remote daemon|An MPI communication peer process has unexpectedly \
disconnected|mpirun noticed that process rank [0-9]+ with PID [0-9]+ on node [^ ]+ exited \
on signal [0-9]+ \([A-Za-z ]+\)|Primary job  terminated normally, but [0-9]+ process \
returned|WARNING: Open MPI failed to TCP connect to a peer MPI process|Signal: [A-Za-z ]+ \
\([0-9]+\)|^batchscore:.*|mpirun: Forwarding signal [0-9]+ to job|mpirun detected that one \
or more processes exited with non-zero status.*|mpirun has exited due to process rank [0-9]+" \
    "$1" | sed -E 's/PID [0-9]+/PID N/; s/node [0-9.]+/node HOST/; s/rank [0-9]+/rank R/' |
    sort -u
}

# start_job [DELAY_MS]: a 4-host job slowed down to about 1.5 s (50 chunks),
# in the background (job = its PID), returning once it is under way.
start_job() {
  rm -rf "$WORK/slow.h5" "$WORK/slow.h5.partial"
  BATCHSCORE_TEST_DELAY=${1:-100} cluster_mpirun "${JOB_OPTS[@]}" -np 4 "$BS" --quiet \
    --model "$MODEL" --input "$IN" --output "$WORK/slow.h5" --threads 1 --chunk-rows 1000 \
    >"$WORK/job.out" 2>"$WORK/job.err" &
  job=$!
  for _ in $(seq 100); do
    [ -e "$WORK/slow.h5.partial" ] && break
    sleep 0.05
  done
  sleep 0.3
}
JOB_OPTS=()

# end_job WHAT: waits for the job; sets rc and ms (since $t0); a job cut
# off by CLUSTER_TIMEOUT is a failure.
end_job() {
  wait "$job"
  rc=$?
  ms=$(($(now_ms) - t0))
  [ "$ms" -lt $((CLUSTER_TIMEOUT * 1000)) ] || fail "$1: mpirun did not end by itself"
}

# host_lost ACTION I: ACTION (host_kill, host_link_down, ...) on host I
# during a slow job; prints what mpirun did.
host_lost() {
  start_job
  t0=$(now_ms)
  "$1" "$2"
  end_job "$1"
  [ "$rc" -ne 0 ] || fail "$1: mpirun exited 0"
  echo "$1 $2: mpirun exited $rc, $ms ms later; stderr:"
  key_lines "$WORK/job.err" | sed 's/^/    /'
}

# --- bitwise, across hosts ---------------------------------------------------
cluster_up 4
run_bs 1 --quiet --model "$MODEL" --input "$IN" --output "$WORK/base.h5" --threads 1 ||
  fail "1-rank run: $(cat "$WORK/err")"
for sched in dynamic static; do
  out=$WORK/c4-$sched.h5
  if ! cluster_mpirun -np 4 "$BS" --quiet --model "$MODEL" --input "$IN" --output "$out" \
    --threads 1 --chunk-rows 4096 --schedule "$sched" --stats "$WORK/stats-$sched.json" \
    >"$WORK/out" 2>"$WORK/err"; then
    fail "4 hosts, $sched: $(cat "$WORK/err")"
  elif ! res=$("$CMP" --exact "$out" "$WORK/base.h5"); then
    fail "4 hosts, $sched: $res"
  fi
done
hosts=$(grep -o '"host": *"[^"]*"' "$WORK/stats-dynamic.json" | cut -d'"' -f4 | sort -u)
[ "$hosts" = "$(printf '%s\n' "${CLUSTER_NAMES[@]}" | sort)" ] ||
  fail "--stats hosts are not the 4 hosts: $(echo $hosts)"
ok "4 hosts, both schedules, bitwise equal to 1 rank; hosts: $(echo $hosts)"

# --- lost hosts --------------------------------------------------------------
host_lost host_kill 2
host_lost host_link_down 3
host_link_up 3
ok "a killed host and a lost link end the job by themselves"

# --- facts (CLUSTER_FACTS=N; not in make check) ------------------------------
# tally TRIALS WHAT COMMAND...: runs COMMAND TRIALS times and counts the
# outcomes: mpirun's status with the set of stderr lines.
tally() {
  local n=$1 what=$2 k
  shift 2
  : >"$WORK/tally"
  : >"$WORK/times"
  for k in $(seq "$n"); do
    "$@"
    echo "status $rc: $(key_lines "$WORK/job.err" | paste -sd'|')" >>"$WORK/tally"
    echo "$ms" >>"$WORK/times"
  done
  echo "FACT $what, $n trials, mpirun ended $(sort -n "$WORK/times" | sed -n '1p;$p' |
    paste -sd-) ms after:"
  sort "$WORK/tally" | uniq -c | sed 's/^/    /'
}
quiet_lost() {
  local i
  start_job
  t0=$(now_ms)
  "$@"
  end_job "$1"
  for i in 0 1 2 3; do host_link_up "$i"; done
}
rank_signal() { # SIG I: the batchscore rank on host I, only it
  local p
  for p in $(host_pids "$2"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = batchscore ] && kill -"$1" "$p"
  done
}
mpirun_signal() { # SIG: mpirun itself
  local p
  for p in $(cluster_pids); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mpirun ] && kill -"$1" "$p"
  done
}

facts_lost() {
  local n=$1
  tally "$n" "host_kill, CLUSTER_RSH=close" quiet_lost host_kill 2
  CLUSTER_RSH=hang cluster_agent >"$CLUSTER_DIR/agent"
  tally "$n" "host_kill, CLUSTER_RSH=hang" quiet_lost host_kill 2
  cluster_agent >"$CLUSTER_DIR/agent"
  tally "$n" "rank SIGKILL" quiet_lost rank_signal KILL 2
  tally "$n" "rank SIGSEGV" quiet_lost rank_signal SEGV 2
  tally "$n" "mpirun SIGTERM" quiet_lost mpirun_signal TERM
  tally "$n" "mpirun SIGINT" quiet_lost mpirun_signal INT
  tally "$n" "host_link_down" quiet_lost host_link_down 3
  if [ "${CLUSTER_FACTS_SLOW:-0}" = 1 ]; then
    JOB_OPTS=(--no-params)
    CLUSTER_TIMEOUT=900 quiet_lost host_link_down 3
    JOB_OPTS=()
    echo "FACT host_link_down without the keepalive parameters: status $rc after $ms ms"
  fi
}

# What a signalled mpirun does to ranks that ignore SIGTERM: a probe rank
# logs each signal it gets, and when.
facts_signals() {
  local sig
  cat >"$WORK/probe.sh" <<'EOF'
#!/bin/sh
for s in TERM INT HUP USR1 USR2 CONT; do
  trap "echo $s \$(date +%s%N) >>$1" "$s"
done
while :; do sleep 0.05; done
EOF
  chmod +x "$WORK/probe.sh"
  for sig in TERM INT; do
    rm -f "$WORK/probe.log"
    cluster_mpirun -np 4 "$WORK/probe.sh" "$WORK/probe.log" >"$WORK/job.out" 2>"$WORK/job.err" &
    job=$!
    sleep 1
    t0=$(now_ms)
    mpirun_signal $sig
    end_job "probe"
    echo "FACT mpirun SIG$sig, ranks that ignore it: mpirun ended $ms ms later, status $rc;" \
      "the ranks got: $(awk -v t0="$t0" '{ n[$1]++; d = int($2 / 1000000) - t0
          if (!($1 in m) || d < m[$1]) m[$1] = d }
        END { for (s in n) printf "%s x%d at %d ms; ", s, n[s], m[s] }' "$WORK/probe.log")"
    key_lines "$WORK/job.err" | sed 's/^/    /'
  done
}

# What the tuning for a simulation on few cores is worth: the best of n
# 4-host runs, in wall seconds and the ranks' CPU seconds (busy-polling
# ranks burn CPU); and where Open MPI binds a 2-rank job without it.
facts_tuning() {
  local n=$1 tune k t0
  for tune in "" "--no-tuning" "--no-tuning --mca mpi_yield_when_idle 1" \
    "--no-tuning --bind-to none"; do
    : >"$WORK/times"
    for k in $(seq "$n"); do
      t0=$(now_ms)
      # shellcheck disable=SC2016,SC2086
      cluster_mpirun $tune -np 4 bash -c 'TIMEFORMAT="cpu %U %S"; time "$0" "$@"' "$BS" \
        --model "$MODEL" --input "$IN" --output "$WORK/tune.h5" --force \
        --threads 1 >"$WORK/tune.out" 2>"$WORK/tune.err" || fail "tuning '$tune': run failed"
      echo "$(($(now_ms) - t0)) $(awk '$1 == "cpu" { c += $2 + $3 } END { print c }' \
        "$WORK/tune.err") $(grep -o ' in [0-9.]* s' "$WORK/tune.out" | cut -d' ' -f3)" \
        >>"$WORK/times"
    done
    echo "FACT 4-host run (50000 rows), cluster_mpirun ${tune:-(default)}: best of $n:" \
      "$(awk 'NR == 1 || $1 < w { w = $1 } NR == 1 || $2 < c { c = $2 }
          NR == 1 || $3 < j { j = $3 }
        END { printf "mpirun %d ms, batchscore %.3f s, CPU of the ranks %.2f s", w, j, c }' \
        "$WORK/times")"
  done
  for tune in "" "--no-tuning"; do
    # shellcheck disable=SC2086
    cluster_mpirun $tune -np 2 sh -c 'grep Cpus_allowed_list /proc/self/status' \
      >"$WORK/tune.out" 2>/dev/null
    echo "FACT a 2-rank job, cluster_mpirun ${tune:-(default)}: ranks on CPUs" \
      "$(awk '/^Cpus_allowed_list/ {print $2}' "$WORK/tune.out" | paste -sd' ')"
  done
}

if [ "${CLUSTER_FACTS:-0}" -gt 0 ]; then
  for part in ${CLUSTER_FACTS_PARTS:-lost signals tuning}; do
    "facts_$part" "$CLUSTER_FACTS"
  done
fi

# --- nothing left behind -----------------------------------------------------
cluster_down
leaks=$(cluster_leaks)
[ -z "$leaks" ] || fail "left after cluster_down: $leaks"
# A test that fails, or is killed, with a job running and blob mounts.
for how in exit kill; do
  rm -f "$WORK/child.id"
  (
    trap - EXIT INT TERM
    CLUSTER_ID= CLUSTER_TAG= CLUSTER_LIVE=
    mkdir -p "$WORK/backing"
    cluster_up 2 --blob "$WORK/backing" "$WORK/common"
    echo "$CLUSTER_ID $CLUSTER_TAG" >"$WORK/child.id"
    cluster_mpirun -np 2 sh -c 'echo x >'"$WORK/common"'/f; exec sleep 60' &
    sleep 1
    [ "$how" = exit ] && exit 1
    kill -TERM $BASHPID
    sleep 60
  ) >"$WORK/child.log" 2>&1
  read -r id tag <"$WORK/child.id"
  leaks=$(CLUSTER_ID=$id CLUSTER_TAG=$tag cluster_leaks)
  [ -n "$id" ] && [ -z "$leaks" ] || fail "a test that ended by $how left: $leaks"
done
[ -s "$WORK/backing/f" ] || fail "the failing test's job did not write through its mount"
ok "nothing left after cluster_down, nor after a test that fails or is killed"
finish
