#!/bin/sh
# Runs fuzz harnesses one after another (one core, nice 19), each for
# SECONDS, on its corpus (kept in OUT/corpus/<harness>/ between runs, so a
# campaign can be continued) and its seeds, and prints one line per
# harness: executions, seconds, corpus size and findings. A finding (a
# crash, a leak, a timeout, an allocation over -malloc_limit_mb) is saved
# under OUT/findings/<harness>/ and makes the script fail.
# Usage: tests/fuzz/run.sh SRCDIR OUT SECONDS [HARNESS...]
#   (HARNESS: xgboost, json_scan, ...; default all built). Extra libFuzzer
#   flags may be given in FUZZ_FLAGS.
set -u
src=$1 out=$2 secs=$3
shift 3
names=$*
# The harnesses are the executables fuzz_NAME (not their logs, fuzz_NAME.log).
[ -n "$names" ] || names=$(cd "$out" && for f in fuzz_*; do
  [ -x "$f" ] && [ "${f%.*}" = "$f" ] && echo "${f#fuzz_}"
done)
status=0
for n in $names; do
  bin=$out/fuzz_$n
  [ -x "$bin" ] || { echo "fuzz: no harness $bin" >&2; status=1; continue; }
  corpus=$out/corpus/$n findings=$out/findings/$n
  mkdir -p "$corpus" "$findings"
  dict=
  [ -f "$src/tests/fuzz/$n.dict" ] && dict=-dict=$src/tests/fuzz/$n.dict
  log=$out/fuzz_$n.log
  # shellcheck disable=SC2086
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    nice -n 19 "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$findings/" \
    ${FUZZ_FLAGS:-} $dict "$corpus" "$out/seeds/$n" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  t=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  found=$(ls "$findings" | wc -l)
  echo "fuzz_$n: ${execs:-?} executions (${t:-?}/s), corpus $(ls "$corpus" | wc -l), $found finding(s)"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|fuzz:|runtime error' "$log" | head -n 5
  fi
done
exit $status
