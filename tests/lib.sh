# Shared helpers of the shell tests: where things are, how to launch MPI,
# and assertions that print what went wrong. Sourced, not run.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
BS=$top_builddir/batchscore
CMP=$top_builddir/tests/bscompare
DATA=$top_srcdir/data
MPIRUN=${MPIRUN:-$(command -v mpirun || true)}
# Open MPI refuses root unless told; tests run oversubscribed on small boxes.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

if [ -z "$MPIRUN" ]; then
  echo "SKIP: no mpirun" >&2
  exit 77
fi

name=$(basename "$0" .sh)
WORK=$top_builddir/tests/scratch/$name
rm -rf "$WORK"
mkdir -p "$WORK"
failures=0

# run_bs NP ARGS...: batchscore on NP ranks, stdout/stderr to $WORK/out, err.
# A hung job is a failure, not a stuck CI.
run_bs() {
  local np=$1
  shift
  timeout 120 "$MPIRUN" --oversubscribe -np "$np" "$BS" "$@" >"$WORK/out" 2>"$WORK/err"
}

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

ok() { echo "ok: $*"; }

# judge_refusal WHAT STATUS RC MATCHED EXPECTED: the verdict on one run
# that should have been refused (its stderr in $WORK/err, its exit RC): it
# exits STATUS, without hanging, with one "batchscore:" line (notes aside),
# MATCHED is 0 when the message holds EXPECTED, and nothing is at $OUT
# (not even $OUT.partial).
judge_refusal() {
  local what=$1 want=$2 rc=$3 matched=$4 expected=$5 msg lines
  msg=$(grep '^batchscore:' "$WORK/err" | grep -v '^batchscore: note:')
  lines=$(grep '^batchscore:' "$WORK/err" | grep -vc '^batchscore: note:')
  if [ "$rc" = 124 ]; then
    fail "$what: hung"
  elif [ "$rc" != "$want" ]; then
    fail "$what: exit $rc, expected $want: $(cat "$WORK/err")"
  elif [ "$lines" != 1 ]; then
    fail "$what: $lines error lines, expected 1: $(cat "$WORK/err")"
  elif [ "$matched" != 0 ]; then
    fail "$what: message '$msg' lacks '$expected'"
  elif [ -e "$OUT" ] || [ -e "$OUT.partial" ]; then
    fail "$what: left an output file behind"
  else
    ok "$what: $msg"
  fi
}

# expect_fail NAME STATUS TEXT ARGS...: batchscore ARGS on 1 and 3 ranks
# is refused (judge_refusal) with TEXT in its message.
expect_fail() {
  what=$1 want_rc=$2 text=$3
  shift 3
  for np in 1 3; do
    rm -rf "$OUT" "$OUT.partial"
    run_bs "$np" "$@"
    rc=$?
    grep '^batchscore:' "$WORK/err" | grep -qF -- "$text"
    judge_refusal "$what (np=$np)" "$want_rc" "$rc" $? "$text"
  done
}

# refusals STATUS MODEL: the cases as data, one a line on stdin,
# "what|input|message": expect_fail for each, batchscore --model MODEL
# --input INPUT --output $OUT. Blank lines are skipped.
refusals() {
  local st=$1 model=$2 name input message
  while IFS="|" read -r name input message; do
    [ -n "$name" ] || continue
    expect_fail "$name" "$st" "$message" --model "$model" --input "$input" \
      --output "$OUT" </dev/null
  done
}

# ranks_of OUTPUT: pids of the batchscore ranks writing OUTPUT (not
# mpirun, not other tests' jobs).
ranks_of() {
  for pid in $(pgrep -f -- "$1"); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = batchscore ] && echo "$pid"
  done
}

# wait_parts N: up to 30 s for $OUT.partial to hold N published parts.
wait_parts() {
  for _ in $(seq 1 300); do
    [ "$(ls "$OUT.partial" 2>/dev/null | grep -c '\.part$')" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}

# csv_shards CSV DIR: CSV's rows in shards of 150, each with the header.
csv_shards() {
  mkdir -p "$2"
  awk -v dir="$2" 'NR == 1 { h = $0; next }
    { f = sprintf("%s/part-%02d.csv", dir, int((NR - 2) / 150))
      if (!(f in seen)) { print h > f; seen[f] = 1 }
      print > f }' "$1"
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
  fi
  exit 0
}
