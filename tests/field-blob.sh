#!/bin/bash
# The field, with blob storage: 3 hosts (network namespaces) whose output
# folder is a blob-storage mount of their own (tests/pubfs: a file reaches
# the shared backing folder only when it is closed, and a killed daemon
# takes every unpublished byte with it).
# - 5 trials: a job is started, one random host is lost at a random moment
#   (its ranks, its daemon and its mount's cache), the replacement node
#   mounts afresh, and --resume finishes the job. Each output is bitwise
#   equal to an uninterrupted run; no file ever stands at the output path
#   before the job is complete; no chunk finished more than the documented
#   window (--checkpoint, plus 2 s for a publication on a loaded machine)
#   before the loss is scored again.
# - Two jobs on two different nodes' mounts, where locks do not reach: the
#   later job (--force) takes the output over; the earlier one notices,
#   fails and never renames anything into place; the output is right.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster.sh"
CLUSTER_TIMEOUT=90
field_reference
BLOB=$WORK/blob     # the storage account's container
COMMON=$WORK/common # where every node sees its own mount of it
CHECKPOINT=1
SLACK=2
ARGS=(--model "$MODEL" --input "$IN" --output "$COMMON/out.h5" --chunk-rows 500 --threads 1
  --checkpoint "$CHECKPOINT" --quiet)
mkdir -p "$BLOB"
cluster_up 3 --blob "$BLOB" "$COMMON"

now() { date +%s.%N; }

# job NP [ARGS...]: a job on the cluster through the launcher; rc is its status.
job() {
  local np=$1
  shift
  cluster_mpirun --via "$LAUNCH" -np "$np" -x BATCHSCORE_TEST_DELAY -x BATCHSCORE_TEST_TRACE \
    "$BS" "${ARGS[@]}" "$@" >"$WORK/out" 2>"$WORK/err"
}

# Chunks scored by attempt 2 that attempt 1 finished more than the window
# before the loss at time $1 (trace lines: job rank chunk time).
rescored_too_old() {
  awk -v kill="$1" -v window=$((CHECKPOINT + SLACK)) '
    NR == 1 { first = $1 }
    $1 == first { done[$3] = $4; next }
    ($3 in done) && done[$3] < kill - window { printf "%s(%.1fs) ", $3, kill - done[$3] }' \
    "$WORK/trace"
}

for trial in 1 2 3 4 5; do
  rm -rf "${BLOB:?}"/* "$WORK/trace"
  for i in 0 1 2; do host_remount "$i"; done
  export BATCHSCORE_TEST_DELAY=$((60 + RANDOM % 40)) BATCHSCORE_TEST_TRACE=$WORK/trace
  job 3 &
  pid=$!
  # Once the work has begun, a random moment of its 2-3.3 s.
  for k in $(seq 200); do [ -s "$WORK/trace" ] && break; sleep 0.02; done
  sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.6 }')"
  # A file at the output path is complete, whenever it appears (a loaded
  # machine may finish the job before the loss).
  early=$([ -e "$BLOB/out.h5" ] && ! "$CMP" --exact "$BLOB/out.h5" "$WORK/ref.h5" >/dev/null &&
    echo "an incomplete output at the output path while the job ran")
  victim=$((RANDOM % 3))
  lost=$(now)
  host_kill "$victim"
  wait "$pid"
  rc=$?
  # The loss may come after the job committed its output (while mpirun
  # winds down): then the output must be the complete one already.
  if [ -z "$early" ] && [ -e "$BLOB/out.h5" ] &&
    ! "$CMP" --exact "$BLOB/out.h5" "$WORK/ref.h5" >/dev/null; then
    early="an incomplete output at the output path after the loss"
  fi
  host_remount "$victim"
  unset BATCHSCORE_TEST_DELAY
  job 3 --resume
  rc2=$?
  unset BATCHSCORE_TEST_TRACE
  old=$(rescored_too_old "$lost")
  if [ "$rc" != 75 ] && ! { [ "$rc" = 0 ] && [ -e "$BLOB/out.h5" ]; }; then
    fail "trial $trial: the lost host's job exited $rc, not 75: $(grep -v '^ *$' "$WORK/err" | head -5)"
  elif [ "$rc2" != 0 ]; then
    fail "trial $trial: the resume exited $rc2: $(cat "$WORK/err")"
  elif [ -n "$early" ]; then
    fail "trial $trial: $early"
  elif ! res=$("$CMP" --exact "$BLOB/out.h5" "$WORK/ref.h5"); then
    fail "trial $trial: $res"
  elif [ -e "$BLOB/out.h5.partial" ]; then
    fail "trial $trial: the partial folder was left behind: $(ls -A "$BLOB/out.h5.partial" | head -5 | tr '\n' ' ')$(grep -v '^ *$' "$WORK/err" | head -3)"
  elif [ -n "$old" ]; then
    fail "trial $trial: scored again although finished long before the loss: $old"
  else
    n1=$(awk 'NR == 1 { f = $1 } $1 == f' "$WORK/trace" | wc -l)
    n2=$(($(wc -l <"$WORK/trace") - n1))
    ok "trial $trial: host $victim lost after $n1 chunks finished; $((100 - n2)) were kept," \
      "$n2 scored again: bitwise equal"
  fi
done

# Two jobs from two nodes (two mounts: their locks do not see each other).
# Job A on hosts 0 and 1 is slow; job B with --force on host 2 takes over.
rm -rf "${BLOB:?}"/*
for i in 0 1 2; do host_remount "$i"; done
export BATCHSCORE_TEST_DELAY=300
cluster_mpirun --via "$LAUNCH" --host "${CLUSTER_ADDRS[0]},${CLUSTER_ADDRS[1]}" -np 2 \
  -x BATCHSCORE_TEST_DELAY "$BS" "${ARGS[@]}" >"$WORK/outA" 2>"$WORK/errA" &
a=$!
for k in $(seq 100); do [ -e "$BLOB/out.h5.partial/manifest" ] && break; sleep 0.1; done
unset BATCHSCORE_TEST_DELAY
cluster_mpirun --via "$LAUNCH" --host "${CLUSTER_ADDRS[2]}" -np 1 "$BS" "${ARGS[@]}" --force \
  >"$WORK/outB" 2>"$WORK/errB"
rb=$?
wait "$a"
ra=$?
if [ "$rb" = 0 ] && [ "$ra" = 1 ] && grep -q "another job took it over" "$WORK/errA" &&
  "$CMP" --exact "$BLOB/out.h5" "$WORK/ref.h5" >/dev/null && [ ! -e "$BLOB/out.h5.partial" ]; then
  ok "a second job on another node took the output over; the first stopped; bitwise equal"
else
  fail "takeover: B exited $rb ($(cat "$WORK/errB")), A exited $ra ($(grep batchscore "$WORK/errA"))"
fi

cluster_down
leaks=$(cluster_leaks)
[ -z "$leaks" ] || fail "left behind: $leaks"
finish
