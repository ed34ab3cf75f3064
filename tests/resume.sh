#!/bin/bash
# Preemption: dynamic scheduling and exactly-once resume.
# - 10 jobs, each SIGKILLed in one rank at a random moment (sometimes again
#   while resuming), resumed with --resume at random rank counts and
#   schedules: the final output is bitwise identical to an uninterrupted
#   run, so no row is missing or scored twice, and nothing is left behind.
# - SIGTERM to the ranks, and to the launcher: exit status 75 with progress
#   kept; the resume finishes the job.
# - Resuming against another model or input is refused, progress untouched.
# - A slowed rank gets fewer chunks under the dynamic schedule.
. "$(dirname "$0")/lib.sh"

M=$DATA/example/model.json
IN=$DATA/example/features.h5
OUT=$WORK/out.h5
REF=$WORK/ref.h5
LAUNCH=$top_srcdir/scripts/batchscore-mpirun
COMMON=(--model "$M" --input "$IN" --chunk-rows 500 --kernel ref --threads 1 --quiet)

# slow_job LAUNCHER: a fresh job on 3 ranks through LAUNCHER (mpirun or
# batchscore-mpirun) in the background (pid in $job), each chunk 60 ms
# slower; returns once it has published a part (start-up time varies,
# sanitizers too).
slow_job() {
  rm -rf "$OUT" "$OUT.partial"
  BATCHSCORE_TEST_DELAY=60 timeout 120 "$1" --oversubscribe -np 3 "$BS" "${COMMON[@]}" \
    --output "$OUT" --checkpoint 0.2 >"$WORK/out" 2>"$WORK/err" &
  job=$!
  wait_parts 1
}

# done_count: chunks kept in $OUT.partial, as batchscore itself reports them
# when it refuses to start over without --resume.
done_count() {
  run_bs 1 "${COMMON[@]}" --output "$OUT" >/dev/null 2>&1
  sed -n 's/.*interrupted run (\([0-9]*\) of [0-9]* chunks done).*/\1/p' "$WORK/err"
}

# A fingerprint of everything in the partial directory.
partial_sum() { (cd "$OUT.partial" && cat $(ls) | sha256sum | cut -d' ' -f1); }

run_bs 1 "${COMMON[@]}" --output "$REF" || { fail "reference run: $(cat "$WORK/err")"; finish; }

# Starts a job in the background and SIGKILLs one of its ranks after a
# random delay; returns once mpirun has gone.
start_and_kill() {
  local np=$1
  shift
  BATCHSCORE_TEST_DELAY=30 timeout 120 "$MPIRUN" --oversubscribe -np "$np" "$BS" \
    "${COMMON[@]}" --output "$OUT" --checkpoint 0.1 "$@" >"$WORK/out" 2>"$WORK/err" &
  local job=$!
  sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.4 + rand() * 1.2 }')"
  local victims
  victims=($(ranks_of "$OUT"))
  if [ ${#victims[@]} -gt 0 ]; then
    kill -KILL "${victims[RANDOM % ${#victims[@]}]}" 2>/dev/null
  fi
  wait "$job"
}

scheds=(dynamic static)
for trial in $(seq 1 10); do
  rm -rf "$OUT" "$OUT.partial"
  np=$((2 + RANDOM % 2))
  start_and_kill "$np" --schedule "${scheds[trial % 2]}"
  attempts=1
  # Resume until complete, at random rank counts; kill again sometimes.
  while [ ! -e "$OUT" ] && [ $attempts -lt 8 ]; do
    attempts=$((attempts + 1))
    np=$((1 + RANDOM % 3))
    sched=${scheds[RANDOM % 2]}
    if [ $((RANDOM % 3)) = 0 ] && [ -e "$OUT.partial" ]; then
      start_and_kill "$np" --resume --schedule "$sched"
    else
      run_bs "$np" "${COMMON[@]}" --output "$OUT" --resume --schedule "$sched" ||
        [ $? = 75 ] || echo "note: trial $trial resume exited non-zero: $(head -1 "$WORK/err")"
    fi
  done
  if [ -e "$OUT" ] && [ -e "$OUT.partial" ]; then
    # Killed between the commit's rename and its clean-up: the next run
    # finds the output complete and removes what was left.
    if run_bs 1 "${COMMON[@]}" --output "$OUT" --resume &&
      grep -q "left by a run stopped while it committed" "$WORK/err"; then
      ok "trial $trial: killed while committing; the next run removed $OUT.partial"
    else
      fail "trial $trial: killed while committing; the next run: $(cat "$WORK/err")"
    fi
  fi
  if [ ! -e "$OUT" ]; then
    fail "trial $trial: not complete after $attempts attempts: $(cat "$WORK/err")"
  elif [ -e "$OUT.partial" ]; then
    fail "trial $trial: complete, but $OUT.partial was left behind"
  elif res=$("$CMP" --exact "$OUT" "$REF"); then
    ok "trial $trial: killed, resumed in $attempts attempts, bitwise identical ($res)"
  else
    fail "trial $trial: $res"
  fi
done

# SIGTERM to the ranks: they stop taking chunks, publish what is done, and
# exit 75 with the count in the message.
slow_job "$MPIRUN"
sleep 0.5
kill -TERM $(ranks_of "$OUT") 2>/dev/null
wait "$job"
rc=$?
said=$(sed -n 's/^batchscore: interrupted: \([0-9]*\) of 100 chunks done and kept in .*/\1/p' \
  "$WORK/err")
n=$(done_count)
if [ "$rc" = 75 ] && [ ! -e "$OUT" ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 100 ] &&
  [ "$said" = "$n" ]; then
  ok "SIGTERM to the ranks: exit 75, $n of 100 chunks kept"
else
  fail "SIGTERM to the ranks: exit $rc, $n chunks kept, said '$said': $(cat "$WORK/err")"
fi

# Without --resume the partial output is an error that says how to resume.
run_bs 2 "${COMMON[@]}" --output "$OUT"
rc=$?
if [ "$rc" = 1 ] && grep -q "holds an interrupted run ($n of 100 chunks done): rerun with --resume" "$WORK/err"; then
  ok "partial output without --resume: refused with a hint"
else
  fail "partial output without --resume: exit $rc, $(cat "$WORK/err")"
fi

# Resume against another model or input: refused, partial untouched.
sum_before=$(partial_sum)
sed 's/"num_trees":"100"/"num_trees":"100" /' "$M" >"$WORK/other-model.json"
run_bs 2 --model "$WORK/other-model.json" --input "$IN" --chunk-rows 500 --output "$OUT" --resume
rc1=$?
grep -q "made from a different model; refusing to resume" "$WORK/err" || rc1=x
run_bs 2 --model "$M" --input "$DATA/tests/wide.h5" --allow-extra-columns --output "$OUT" --resume
rc2=$?
grep -q "different" "$WORK/err" || rc2=x
if [ "$rc1" = 1 ] && [ "$rc2" = 1 ] && [ "$(partial_sum)" = "$sum_before" ]; then
  ok "resume with another model or input: refused, partial output untouched"
else
  fail "resume with another model ($rc1) or input ($rc2): $(cat "$WORK/err")"
fi

# Finishing the SIGTERM'd job gives the reference bits and removes the
# partial; a second --resume finds it complete and changes nothing.
if run_bs 3 "${COMMON[@]}" --output "$OUT" --resume && "$CMP" --exact "$OUT" "$REF" >/dev/null &&
  [ ! -e "$OUT.partial" ] && sum=$(sha256sum <"$OUT") &&
  run_bs 1 --model "$M" --input "$IN" --output "$OUT" --resume &&
  grep -q "already complete" "$WORK/out" && [ "$(sha256sum <"$OUT")" = "$sum" ]; then
  ok "SIGTERM'd job resumed to the reference bits; --resume on a complete output is a no-op"
else
  fail "finishing the SIGTERM'd job: $(cat "$WORK/err")"
fi

# SIGTERM or SIGINT to the launcher (what a scheduler sends): forwarded,
# progress kept, and the launcher exits 75 although mpirun says 1.
for sig in TERM INT; do
  slow_job "$LAUNCH"
  kill -$sig $job
  wait "$job"
  rc=$?
  for i in $(seq 1 100); do [ -z "$(ranks_of "$OUT")" ] && break; sleep 0.1; done
  n=$(done_count)
  if [ "$rc" = 75 ] && [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt 100 ]; then
    ok "SIG$sig to batchscore-mpirun: exit 75, $n of 100 chunks kept"
  else
    fail "SIG$sig to batchscore-mpirun: exit $rc, '$n' chunks kept: $(cat "$WORK/err")"
  fi
done
if run_bs 2 "${COMMON[@]}" --output "$OUT" --resume && "$CMP" --exact "$OUT" "$REF" >/dev/null; then
  ok "the launcher-interrupted job resumed to the reference bits"
else
  fail "resuming the launcher-interrupted job: $(cat "$WORK/err")"
fi

# Dynamic scheduling: rank 1 is slowed; it must get fewer chunks than the
# others, while the static schedule splits evenly. Counts, not times.
for sched in dynamic static; do
  rm -f "$OUT"
  if BATCHSCORE_TEST_DELAY=1:60 run_bs 3 "${COMMON[@]}" --output "$OUT" --schedule "$sched" \
    --stats "$WORK/stats.json"; then
    counts=$(grep '"chunks": [0-9]*,$' "$WORK/stats.json" | tail -3 | tr -dc '0-9\n' |
      tr '\n' ' ')
    set -- $counts
    if [ "$sched" = dynamic ] && [ "$2" -lt "$1" ] && [ "$2" -lt "$3" ] &&
      [ $(($1 + $2 + $3)) = 100 ]; then
      ok "dynamic schedule: slow rank 1 took $2 chunks, ranks 0 and 2 took $1 and $3"
    elif [ "$sched" = static ] && [ "$1" = 34 ] && [ "$2" = 33 ] && [ "$3" = 33 ]; then
      ok "static schedule: 34/33/33 chunks whatever the speed"
    else
      fail "$sched schedule: chunk counts $counts"
    fi
    "$CMP" --exact "$OUT" "$REF" >/dev/null || fail "$sched schedule: output differs"
  else
    fail "$sched schedule run: $(cat "$WORK/err")"
  fi
done
finish
