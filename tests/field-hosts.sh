#!/bin/bash
# The field, hosts: 4 hosts as network namespaces over real TCP (a bridge,
# veths, an rsh agent; tests/cluster.sh), the output on storage they all
# share (the local file system, like a cluster file system).
# - Both schedules: every process of one random host is killed at a random
#   moment; the launcher exits 75; --resume on the 3 hosts left finishes the
#   job bitwise equal to an uninterrupted run.
# - One host's link goes down: the job ends within 60 s with status 75 (the
#   keepalive parameters of scripts/mpi-params, set by the launcher), and
#   the resume on the others finishes it.
# - Nothing is left behind: namespaces, links, mounts, processes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster.sh"
CLUSTER_TIMEOUT=100
field_reference
OUT=$WORK/out.h5
ARGS=(--model "$MODEL" --input "$IN" --output "$OUT" --chunk-rows 500 --threads 1
  --checkpoint 1 --quiet)
cluster_up 4

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# on HOSTS NP [ARGS...]: the job on the hosts listed (indices), through the
# launcher; rc is its status.
on() {
  local list=() i
  for i in $1; do list+=("${CLUSTER_ADDRS[i]}"); done
  local hosts
  hosts=$(IFS=,; echo "${list[*]}")
  local np=$2
  shift 2
  cluster_mpirun --via "$LAUNCH" --host "$hosts" -np "$np" -x BATCHSCORE_TEST_DELAY "$BS" \
    "${ARGS[@]}" "$@" >"$WORK/out" 2>"$WORK/err"
}

trial=0
for sched in dynamic static dynamic static; do
  trial=$((trial + 1))
  rm -rf "$OUT" "$OUT.partial"
  export BATCHSCORE_TEST_DELAY=$((30 + RANDOM % 30))
  on "0 1 2 3" 4 --schedule "$sched" &
  pid=$!
  # A random moment of the work itself (25 chunks a rank, >= 0.75 s): after
  # the job made its partial folder, whatever mpirun's start-up took.
  for k in $(seq 200); do [ -e "$OUT.partial/manifest" ] && break; sleep 0.05; done
  sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.05 + rand() * 0.6 }')"
  victim=$((RANDOM % 4))
  host_kill "$victim"
  wait "$pid"
  rc=$?
  mv "$WORK/err" "$WORK/err.kill" # the resume's own err follows
  unset BATCHSCORE_TEST_DELAY
  others=$(for i in 0 1 2 3; do [ "$i" = "$victim" ] || echo "$i"; done)
  on "$others" 3 --schedule "$sched" --resume
  rc2=$?
  if [ "$rc" != 75 ]; then
    fail "trial $trial ($sched): host $victim killed: exit $rc, not 75: $(grep -v '^ *$' "$WORK/err.kill" | tail -n 15)"
  elif [ "$rc2" != 0 ]; then
    fail "trial $trial ($sched): resume on the others exited $rc2: $(cat "$WORK/err")"
  elif ! res=$("$CMP" --exact "$OUT" "$WORK/ref.h5"); then
    fail "trial $trial ($sched): $res"
  else
    ok "trial $trial ($sched): host $victim killed, exit 75; resumed on the other 3: bitwise equal"
  fi
done

# A lost link: the job must end by itself, soon, with the retryable status.
rm -rf "$OUT" "$OUT.partial"
export BATCHSCORE_TEST_DELAY=100
on "0 1 2 3" 4 &
pid=$!
for k in $(seq 100); do [ -e "$OUT.partial/manifest" ] && break; sleep 0.05; done
sleep 0.5
victim=$((RANDOM % 4))
t0=$(now_ms)
host_link_down "$victim"
wait "$pid"
rc=$?
ms=$(($(now_ms) - t0))
unset BATCHSCORE_TEST_DELAY
if [ "$rc" = 75 ] && [ "$ms" -le 60000 ]; then
  ok "host $victim's link down: the job ended after $ms ms with status 75"
else
  fail "host $victim's link down: status $rc after $ms ms: $(grep -v '^ *$' "$WORK/err" | head -5)"
fi
host_kill "$victim" # its processes never heard; the node is gone
others=$(for i in 0 1 2 3; do [ "$i" = "$victim" ] || echo "$i"; done)
if on "$others" 3 --resume && "$CMP" --exact "$OUT" "$WORK/ref.h5" >/dev/null; then
  ok "resumed on the other 3 hosts after the lost link: bitwise equal"
else
  fail "resume after the lost link: $(cat "$WORK/err")"
fi

cluster_down
leaks=$(cluster_leaks)
[ -z "$leaks" ] && ok "nothing left behind" || fail "left behind: $leaks"
finish
