#!/bin/sh
# Shards and resume: a job over a folder of plain and gzip'd CSV shards,
# SIGKILLed in one rank mid-run and resumed (at 1 to 3 ranks), gives
# bitwise the output of an uninterrupted run; resuming after the set of
# shards changed (one more, one less, one rewritten) is refused and the
# partial output is left as it was.
. "$(dirname "$0")/lib.sh"

M=$DATA/example/model.json
OUT=$WORK/out.h5
REF=$WORK/ref.h5
W=$WORK
export BATCHSCORE_CSV_ROWS_PER_MARK=101 BATCHSCORE_GZ_SPAN=65536

# 5,000 rows of the example as 5 shards: header, then rows with 3 decimals.
mkdir -p "$W/in"
"$top_builddir/tests/inputdump" --csv "$DATA/example/features.h5" >"$W/all.csv" ||
  { fail "inputdump"; finish; }
awk -F, -v OFS=, -v dir="$W/in" 'NR == 1 { h = $0; next } NR > 5001 { exit }
  { for (i = 1; i <= NF; i++) $i = sprintf("%.3f", $i)
    f = sprintf("%s/part-%d.csv", dir, int((NR - 2) / 1000))
    if (!(f in seen)) { print h > f; seen[f] = 1 }
    print > f }' "$W/all.csv"
gzip "$W/in/part-1.csv" "$W/in/part-3.csv"
COMMON="--model $M --input $W/in --chunk-rows 100 --kernel ref --threads 1 --quiet"

run_bs 1 $COMMON --output "$REF" || { fail "reference run: $(cat "$WORK/err")"; finish; }

# A partial output's files and their checksums (it is a folder).
snapshot() { find "$1" -type f 2>/dev/null | LC_ALL=C sort | xargs cksum 2>/dev/null; }

for trial in 1 2 3; do
  rm -rf "$OUT" "$OUT.partial"
  np=$((1 + trial % 3))
  BATCHSCORE_TEST_DELAY=60 timeout 120 "$MPIRUN" --oversubscribe -np 3 "$BS" $COMMON \
    --output "$OUT" >"$WORK/out" 2>"$WORK/err" &
  job=$!
  sleep "$(awk -v t="$trial" 'BEGIN { srand(t); printf "%.2f", 0.3 + 0.5 * rand() }')"
  victim=$(ranks_of "$OUT" | awk -v t="$trial" 'NR == t % 3 + 1 || NR == 1 { v = $0 } END { print v }')
  [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
  wait "$job"
  if [ -e "$OUT" ]; then
    echo "note: trial $trial finished before the kill"
  elif ! run_bs "$np" $COMMON --output "$OUT" --resume; then
    fail "trial $trial: resume at $np ranks: $(cat "$WORK/err")"
    continue
  fi
  if res=$("$CMP" --exact "$OUT" "$REF"); then
    ok "trial $trial: killed, resumed at $np ranks, bitwise identical ($res)"
  else
    fail "trial $trial: $res"
  fi
done

# A partial output, then the shards change: --resume refuses.
refused() {
  what=$1 change=$2 undo=$3
  rm -rf "$OUT" "$OUT.partial"
  BATCHSCORE_TEST_DELAY=60 timeout 120 "$MPIRUN" --oversubscribe -np 2 "$BS" $COMMON \
    --output "$OUT" >"$WORK/out" 2>"$WORK/err" &
  job=$!
  sleep 0.5
  kill -TERM $(ranks_of "$OUT") 2>/dev/null
  wait "$job"
  if [ ! -e "$OUT.partial" ]; then
    ok "$what: the job ended before it could be interrupted"
    return
  fi
  before=$(snapshot "$OUT.partial")
  sh -c "$change"
  run_bs 2 $COMMON --output "$OUT" --resume
  rc=$?
  if [ "$rc" = 1 ] && grep -q "made from a different input" "$WORK/err" &&
    [ "$(snapshot "$OUT.partial")" = "$before" ]; then
    ok "$what: resume refused, partial output untouched"
  else
    fail "$what: exit $rc, $(cat "$WORK/err")"
  fi
  sh -c "$undo"
}
refused "one shard more" "cp '$W/in/part-0.csv' '$W/in/part-9.csv'" "rm '$W/in/part-9.csv'"
refused "one shard less" "mv '$W/in/part-4.csv' '$W/part-4.csv'" "mv '$W/part-4.csv' '$W/in/'"
refused "a shard rewritten" "cp '$W/in/part-2.csv' '$W/keep.csv'; sed -i '\$d' '$W/in/part-2.csv'" \
  "mv '$W/keep.csv' '$W/in/part-2.csv'"
finish
