#!/bin/bash
# The output transaction under faults: nothing it keeps is trusted without
# checks, and no fault ends in exit 0 with wrong scores.
# - a kept part whose scores were altered is scored again; an altered
#   manifest is refused; a part from another run is ignored;
# - an input changed between attempts is refused, and so is another part of
#   the same model (--iteration-range); an input changed while the job runs
#   fails the run;
# - a second job on the same output is refused while the first runs;
# - the output may not be the input; an unwritable --stats path fails
#   before any work;
# - a full disk fails the run with the errno named and keeps the progress,
#   and --resume finishes the job once there is space (root only: tmpfs);
# - a crashing rank exits 70 (a bug, not retried), not 128+signal;
# - a complete output whose scores were altered is called damaged.
. "$(dirname "$0")/lib.sh"

M=$DATA/example/model.json
IN=$WORK/in.h5 # a contiguous copy of the example, so bytes can be patched
OUT=$WORK/out.h5
REF=$WORK/ref.h5
COMMON=(--model "$M" --chunk-rows 500 --kernel ref --threads 1 --quiet)

if ! command -v h5repack >/dev/null || ! command -v h5dump >/dev/null; then
  echo "SKIP: h5repack/h5dump missing" >&2
  exit 77
fi
h5repack -l /features:CONTI "$DATA/example/features.h5" "$IN" || exit 1
data_off=$(h5dump -p -H -d /features "$IN" | sed -n 's/^ *OFFSET \([0-9]*\)$/\1/p')

# patch FILE OFFSET: flips one byte in place.
patch_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 0x40)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# slow_job DELAY ARGS...: a fresh job on 2 ranks in the background (pid in
# $job), each chunk DELAY ms slower; its stdout and stderr in $WORK/out$log
# and err$log.
slow_job() {
  local delay=$1
  shift
  rm -rf "$OUT" "$OUT.partial"
  BATCHSCORE_TEST_DELAY=$delay timeout 120 "$MPIRUN" --oversubscribe -np 2 "$BS" "${COMMON[@]}" \
    --output "$OUT" "$@" >"$WORK/out${log:-}" 2>"$WORK/err${log:-}" &
  job=$!
}
wait_manifest() {
  for i in $(seq 1 300); do [ -e "$OUT.partial/manifest" ] && break; sleep 0.1; done
}
# interrupted: leaves $OUT.partial with some chunks kept (SIGTERM to the
# ranks once some parts are published).
interrupted() {
  slow_job 60 --input "$IN" --checkpoint 0 "$@"
  wait_parts 4
  kill -TERM $(ranks_of "$OUT") 2>/dev/null
  wait "$job"
}
resume_matches() {
  run_bs "${1:-2}" "${COMMON[@]}" --input "$IN" --output "$OUT" --resume &&
    "$CMP" --exact "$OUT" "$REF" >/dev/null && [ ! -e "$OUT.partial" ]
}
# resume_refused WHAT OUTCOME TEXT: --resume on 2 ranks exits 1 saying TEXT.
resume_refused() {
  run_bs 2 "${COMMON[@]}" --input "$IN" --output "$OUT" --resume
  local rc=$?
  if [ "$rc" = 1 ] && grep -q "$3" "$WORK/err"; then
    ok "$1: $2"
  else
    fail "$1: exit $rc: $(cat "$WORK/err")"
  fi
}

run_bs 1 "${COMMON[@]}" --input "$IN" --output "$REF" || {
  fail "reference run: $(cat "$WORK/err")"
  finish
}

# A job stopped between the commit's rename and its clean-up leaves a
# complete output beside this run's partial: the next run says the output
# is complete, verifies it and removes the partial.
interrupted
cp -a "$OUT.partial" "$WORK/left.partial"
if resume_matches 2; then
  mv "$WORK/left.partial" "$OUT.partial"
  if run_bs 2 "${COMMON[@]}" --input "$IN" --output "$OUT" --resume &&
    grep -q "left by a run stopped while it committed" "$WORK/err" &&
    [ ! -e "$OUT.partial" ] && "$CMP" --exact "$OUT" "$REF" >/dev/null; then
    ok "a partial left beside a complete output: removed by the next run, output kept"
  else
    fail "a partial left beside a complete output: $(cat "$WORK/out" "$WORK/err")"
  fi
else
  fail "resume before the stale-partial case: $(cat "$WORK/err")"
fi
rm -rf "$WORK/left.partial"

# Altered scores in a kept part: found, scored again, right in the end.
interrupted
part=$(ls "$OUT.partial"/p-*.part | head -n 1)
patch_byte "$part" 100
if resume_matches 2 && grep -q "failed their checksum; they will be scored again" "$WORK/err"; then
  ok "altered scores in a kept part: scored again, bitwise identical"
else
  fail "altered scores in a kept part: $(cat "$WORK/err")"
fi

# An altered progress record (the chunk grid in the manifest): refused.
interrupted
sed -i 's/"chunk_rows": 500/"chunk_rows": 250/' "$OUT.partial/manifest"
resume_refused "altered manifest" refused \
  "is not a batchscore run in progress (its manifest is missing or damaged)"

# A part of another run (another chunk grid) dropped in: ignored.
interrupted --chunk-rows 250
mkdir -p "$WORK/other"
cp "$OUT.partial"/p-*.part "$WORK/other/"
interrupted
cp "$WORK/other"/p-*.part "$OUT.partial/"
if resume_matches 3 && grep -q "are damaged or from another run; they will be scored again" "$WORK/err"; then
  ok "parts of another run: ignored, bitwise identical"
else
  fail "parts of another run: $(cat "$WORK/err")"
fi

# Another part of the same model file (--iteration-range): refused.
interrupted --iteration-range 0:50
resume_refused "another --iteration-range" refused \
  "made from a different part of the model (--iteration-range)"

# The input changed between attempts (one value of row 1000): refused.
interrupted
cp "$IN" "$WORK/in.orig"
patch_byte "$IN" $((data_off + (1000 * 28 + 3) * 4 + 1))
resume_refused "input changed between attempts" refused \
  "the input changed since the interrupted run (rows from 1000 differ"
cp "$WORK/in.orig" "$IN"

# The input cut short while the job runs: the run fails, never zeros.
cp "$IN" "$WORK/cut.h5"
slow_job 40 --input "$WORK/cut.h5" --checkpoint 0
wait_parts 2
truncate -s $(($(stat -c %s "$WORK/cut.h5") / 2)) "$WORK/cut.h5"
wait "$job"
rc=$?
if [ "$rc" = 1 ] && [ ! -e "$OUT" ] && grep -q "cut.h5: the file changed while the job ran" "$WORK/err"; then
  ok "input truncated mid-run: the run fails"
else
  fail "input truncated mid-run: exit $rc: $(cat "$WORK/err")"
fi

# A second job on the same output while the first runs: refused, even with
# --force (after waiting 3 s for a job that may be ending); the first
# finishes with the right scores.
log=1 slow_job 150 --input "$IN"
wait_manifest
run_bs 2 "${COMMON[@]}" --input "$IN" --output "$OUT" --force
rc=$?
wait "$job"
rc1=$?
if [ "$rc" = 1 ] && grep -q "another job is writing it" "$WORK/err" && [ "$rc1" = 0 ] &&
  "$CMP" --exact "$OUT" "$REF" >/dev/null; then
  ok "second writer refused; the first completes bitwise identical"
else
  fail "second writer: exit $rc ($(cat "$WORK/err")), first exit $rc1 ($(cat "$WORK/err1"))"
fi

# The output may not be the input, not even with --force.
sum=$(sha256sum <"$IN")
run_bs 2 "${COMMON[@]}" --input "$IN" --output "$IN" --force
rc=$?
if [ "$rc" = 2 ] && grep -q "is the input file" "$WORK/err" && [ "$(sha256sum <"$IN")" = "$sum" ] &&
  [ ! -e "$IN.partial" ]; then
  ok "output = input: refused, input intact"
else
  fail "output = input: exit $rc: $(cat "$WORK/err")"
fi

# An unwritable --stats path fails before any work, leaving nothing.
rm -rf "$OUT" "$OUT.partial"
run_bs 2 "${COMMON[@]}" --input "$IN" --output "$OUT" --stats "$WORK/no/such/dir/s.json"
rc=$?
if [ "$rc" = 1 ] && grep -q -- "--stats" "$WORK/err" && [ ! -e "$OUT" ] && [ ! -e "$OUT.partial" ]; then
  ok "unwritable --stats: exit 1 before any work, nothing left"
else
  fail "unwritable --stats: exit $rc: $(cat "$WORK/err")"
fi

# A crashing rank: 70 and one line that says so.
slow_job 50 --input "$IN"
wait_manifest
kill -SEGV $(ranks_of "$OUT" | tail -n 1)
wait "$job"
rc=$?
if [ "$rc" = 70 ] && grep -q "internal error: the process crashed (signal 11)" "$WORK/err"; then
  ok "a crashing rank: exit 70"
elif grep -q "AddressSanitizer" "$WORK/err"; then
  ok "a crashing rank: the sanitizer reports it (exit $rc)"
else
  fail "a crashing rank: exit $rc: $(cat "$WORK/err")"
fi

# A complete output whose scores were altered: --resume calls it damaged.
rm -rf "$OUT" "$OUT.partial"
cp "$REF" "$OUT"
off=$(h5dump -p -H -d /scores "$OUT" | sed -n 's/^ *OFFSET \([0-9]*\)$/\1/p')
patch_byte "$OUT" $((off + 4 * 30000 + 2))
resume_refused "altered complete output" "called damaged" \
  "is damaged (the scores from row 30000 do not match"

# A full disk: the errno named, progress kept; with space again, --resume
# finishes. Needs root for a small tmpfs.
mnt=$WORK/small
mkdir -p "$mnt"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=96k tmpfs "$mnt" 2>/dev/null; then
  trap 'umount -l "$mnt" 2>/dev/null' EXIT
  small=$mnt/out.h5
  run_bs 2 "${COMMON[@]}" --input "$IN" --output "$small" --checkpoint 0
  rc=$?
  kept=$(sed -n 's/.*; \([0-9]*\) of 100 chunks are kept in .*/\1/p' "$WORK/err")
  if [ "$rc" = 1 ] && grep -q "No space left on device" "$WORK/err" && [ -n "$kept" ] &&
    [ "$kept" -gt 0 ] && [ ! -e "$small" ]; then
    ok "disk full: exit 1, errno named, $kept chunks kept"
  else
    fail "disk full: exit $rc: $(cat "$WORK/err")"
  fi
  mount -o remount,size=8m "$mnt"
  if run_bs 3 "${COMMON[@]}" --input "$IN" --output "$small" --resume &&
    "$CMP" --exact "$small" "$REF" >/dev/null && [ ! -e "$small.partial" ]; then
    ok "disk full, then space: --resume finishes bitwise identical"
  else
    fail "disk full, then --resume: $(cat "$WORK/err")"
  fi
  umount "$mnt"
  trap - EXIT
else
  echo "note: not root or no tmpfs: the disk-full case was not run"
fi
finish
