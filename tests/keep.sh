#!/bin/sh
# Kept columns (--keep) and CSV output (issue 17).
# - Scores from --output .h5, .csv and .csv.gz are bitwise those of a run
#   without kept columns, read back through batchscore's own reader
#   (tests/inputdump), and the kept columns equal the input's: an id and a
#   text column with commas, quotes, line breaks, UTF-8, padding and empty
#   values, from CSV input (text) and HDF5 input (int64, uint16, float64,
#   strings of both kinds), at 1 and 3 ranks, both schedules.
# - A CSV output SIGKILLed mid-run and resumed is byte for byte the output of
#   an uninterrupted run; resuming with other kept columns is refused with
#   the progress untouched; --resume checks a complete CSV output against
#   its record and refuses a damaged one or one without its record.
# - Bad uses: one line, the right status, nothing left behind.
. "$(dirname "$0")/lib.sh"

DUMP=$top_builddir/tests/inputdump
M=$DATA/xgb/bc_logistic.json
W=$WORK
export BATCHSCORE_CSV_ROWS_PER_MARK=7 BATCHSCORE_GZ_SPAN=4096

# bc.csv with an id first and a text column last (one quoted field holds a
# CR LF, another a line break).
awk 'NR == 1 { print "id," $0 ",name"; next }
  { i = NR - 2; k = i % 8
    if (k == 0) s = "plain " i
    if (k == 1) s = "\"a,b " i "\""
    if (k == 2) s = "\"say \"\"hi\"\" " i "\""
    if (k == 3) s = "\"two\nlines " i "\""
    if (k == 4) s = "ünï ✓ " i
    if (k == 5) s = ""
    if (k == 6) s = "\"  padded " i "  \""
    if (k == 7) s = "\"crlf\r\nin " i "\""
    print 100000 + 7 * i "," $0 "," s }' "$DATA/input/bc.csv" >"$W/in.csv"

if ! run_bs 1 --quiet --model "$M" --input "$DATA/input/bc.csv" --output "$W/ref.h5"; then
  fail "reference run: $(cat "$WORK/err")"
  finish
fi
"$DUMP" "$W/ref.h5:/scores" >"$W/want.scores"
"$DUMP" --keep id,name "$W/in.csv" | cut -f1,2 >"$W/want.keep" ||
  fail "inputdump of the kept columns"

# same WHAT OUT KEEP ARGS...: a run with ARGS writing OUT; its kept columns
# (named KEEP in OUT) equal want.keep and its scores want.scores.
same() {
  what=$1 out=$2 keep=$3
  shift 3
  rm -f "$out" "$out.batchscore.json"
  if ! run_bs "$@" --output "$out"; then
    fail "$what: $(cat "$WORK/err")"
    return 1
  fi
  case $out in *.h5) src=$out:/scores ;; *) src=$out ;; esac
  "$DUMP" --keep "$keep" "$src" >"$W/got" || { fail "$what: inputdump $src"; return 1; }
  n=$(echo "$keep" | tr ',' '\n' | wc -l)
  if ! cut -f"$((n + 1))" "$W/got" | cmp -s - "$W/want.scores"; then
    fail "$what: scores differ"
  elif ! cut -f1-"$n" "$W/got" | sed 's/"//g' | cmp -s - "$W/want.keep.$n"; then
    fail "$what: kept columns differ: $(cut -f1-"$n" "$W/got" | sed 's/"//g' |
      diff - "$W/want.keep.$n" | head -5)"
  else
    return 0
  fi
  return 1
}
sed 's/"//g' "$W/want.keep" >"$W/want.keep.2"

for np in 1 3; do
  for sched in dynamic static; do
    good=1
    for form in h5 csv csv.gz; do
      out=$W/out-$np-$sched.$form
      keep=id,name
      [ "$form" = h5 ] && keep=/keep/id,/keep/name
      same "CSV input, $form output (np=$np, $sched)" "$out" "$keep" "$np" --quiet \
        --model "$M" --input "$W/in.csv" --keep id,name --schedule "$sched" \
        --chunk-rows 37 || good=0
    done
    b=$W/out-$np-$sched
    if ! res=$("$CMP" --exact "$b.h5" "$W/ref.h5"); then
      fail "np=$np, $sched: HDF5 scores differ from the run without --keep: $res"
    elif ! gzip -t "$b.csv.gz" || ! gzip -dc "$b.csv.gz" | cmp -s - "$b.csv"; then
      fail "np=$np, $sched: the .csv.gz is not the .csv gzip'd"
    elif [ $good = 1 ]; then
      ok "CSV input: .h5, .csv and .csv.gz with kept id and text, np=$np, $sched"
    fi
  done
done
cmp -s "$W/out-1-dynamic.csv" "$W/out-3-static.csv" ||
  fail "CSV outputs differ between 1 and 3 ranks"
# Rank 0 makes a CSV output's chunks with its threads: the same bytes.
for t in 1 3; do
  run_bs 2 --quiet --model "$M" --input "$W/in.csv" --keep id,name --chunk-rows 20 \
    --threads $t --output "$W/threads-$t.csv.gz" || fail "--threads $t: $(cat "$WORK/err")"
done
if cmp -s "$W/threads-1.csv.gz" "$W/threads-3.csv.gz"; then
  ok "CSV.gz output: byte for byte the same made by 1 and 3 threads"
else
  fail "CSV.gz output differs between 1 and 3 threads"
fi

# HDF5 input: an id column of the features (column_names) and datasets of
# their own beside them: int64 beyond 2^53, uint16, float64, strings.
if /usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null; then
  /usr/bin/python3 - "$DATA/xgb/bc_logistic.h5" "$W/in.h5" <<'EOF'
import sys, h5py, numpy as np
x = h5py.File(sys.argv[1], "r")["/features"][:]
n = len(x)
with h5py.File(sys.argv[2], "w") as f:
    d = f.create_dataset("/features", data=np.hstack([np.arange(n)[:, None] * 3, x]).astype(np.float32))
    d.attrs["column_names"] = np.array(["row3"] + ["f%d" % i for i in range(x.shape[1])], dtype=h5py.string_dtype())
    f["/id"] = (np.arange(n, dtype=np.int64) * 1000003 + (1 << 60)) * (1 - 2 * (np.arange(n) % 2))
    f["/small"] = np.arange(n, dtype=np.uint16)
    f["/grp/w"] = (np.arange(n) / 7.0)[:, None]
    f["/name"] = np.array(['r%d, "q"\n✓' % i if i % 5 else "" for i in range(n)], dtype=h5py.string_dtype())
    f["/code"] = np.array([b"c%d" % i for i in range(n)], dtype="S6")
EOF
  K=row3,id,small,grp/w,name,code
  "$DUMP" --keep "$K" "$W/in.h5" | cut -f1-6 | sed 's/"//g' >"$W/want.keep.6"
  good=1
  for np in 1 3; do
    same "HDF5 input, CSV output (np=$np)" "$W/h5in-$np.csv" row3,id,small,w,name,code \
      "$np" --quiet --model "$M" --input "$W/in.h5" --keep "$K" --chunk-rows 50 || good=0
    same "HDF5 input, HDF5 output (np=$np)" "$W/h5in-$np.h5" \
      /keep/row3,/keep/id,/keep/small,/keep/w,/keep/name,/keep/code \
      "$np" --quiet --model "$M" --input "$W/in.h5" --keep "$K" --chunk-rows 50 || good=0
  done
  [ $good = 1 ] && ok "HDF5 input: kept int64, uint16, float64 and strings, CSV and HDF5 output"
else
  echo "note: /usr/bin/python3 with h5py missing: HDF5 kept columns not checked"
fi

# ---- resume ------------------------------------------------------------------

snapshot() { find "$1" -type f 2>/dev/null | LC_ALL=C sort | xargs cksum 2>/dev/null; }
# Waits (up to 30 s) until the job writing $1 has published a part.
wait_part() {
  for i in $(seq 300); do
    ls "$1.partial"/p-*.part >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
COMMON="--model $M --input $W/in.csv --keep id,name --chunk-rows 10 --checkpoint 0 --quiet"

trial=0
for out in "$W/kill.csv" "$W/kill.csv.gz"; do
  trial=$((trial + 1))
  run_bs 1 $COMMON --output "$W/whole-${out##*/}" ||
    fail "uninterrupted run: $(cat "$WORK/err")"
  rm -rf "$out" "$out.partial" "$out.batchscore.json"
  BATCHSCORE_TEST_DELAY=60 timeout 120 "$MPIRUN" --oversubscribe -np 3 "$BS" $COMMON \
    --output "$out" >"$WORK/out" 2>"$WORK/err" &
  job=$!
  wait_part "$out"
  victim=$(ranks_of "$out" | awk -v t="$trial" 'NR == t + 1 || NR == 1 { v = $0 } END { print v }')
  [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null
  wait "$job"
  np=$((trial + 1))
  if [ -e "$out" ]; then
    echo "note: trial $trial finished before the kill"
  elif [ ! -d "$out.partial" ]; then
    fail "trial $trial: killed, but no progress kept"
  elif ! run_bs "$np" $COMMON --output "$out" --resume; then
    fail "trial $trial: resume at $np ranks: $(cat "$WORK/err")"
    continue
  fi
  if cmp -s "$out" "$W/whole-${out##*/}"; then
    ok "trial $trial: ${out##*/} killed, resumed at $np ranks: byte for byte the same"
  else
    fail "trial $trial: ${out##*/} differs from an uninterrupted run"
  fi
done

# Other kept columns than the interrupted run's: refused, progress untouched.
out=$W/other.csv
rm -rf "$out" "$out.partial"
BATCHSCORE_TEST_DELAY=60 timeout 120 "$MPIRUN" --oversubscribe -np 2 "$BS" $COMMON \
  --output "$out" >"$WORK/out" 2>"$WORK/err" &
job=$!
wait_part "$out"
kill -TERM $(ranks_of "$out") 2>/dev/null
wait "$job"
if [ -d "$out.partial" ]; then
  before=$(snapshot "$out.partial")
  run_bs 2 --model "$M" --input "$W/in.csv" --keep id --allow-extra-columns \
    --chunk-rows 10 --quiet --output "$out" --resume
  rc=$?
  if [ $rc = 1 ] && grep -q "made from different kept columns (--keep)" "$WORK/err" &&
    [ "$(snapshot "$out.partial")" = "$before" ] && [ ! -e "$out" ]; then
    ok "resume with other --keep refused, partial output untouched"
  else
    fail "resume with other --keep: exit $rc, $(cat "$WORK/err")"
  fi
else
  echo "note: the job ended before it could be interrupted"
fi

# A complete CSV output: --resume checks it; damaged or without its record,
# it is refused and left as it is.
out=$W/kill.csv
if run_bs 3 $COMMON --output "$out" --resume && ! grep -q '^batchscore:' "$WORK/err"; then
  ok "--resume on a complete CSV output: checked, nothing to do"
else
  fail "--resume on a complete CSV output: $(cat "$WORK/err")"
fi
cp "$out" "$W/good.csv"
printf 'X' | dd of="$out" bs=1 seek=2000 conv=notrunc 2>/dev/null
run_bs 2 $COMMON --output "$out" --resume
rc=$?
if [ $rc = 1 ] && grep -q "is damaged (the bytes from row" "$WORK/err"; then
  ok "a damaged CSV output: refused"
else
  fail "a damaged CSV output: exit $rc, $(cat "$WORK/err")"
fi
cp "$W/good.csv" "$out"
mv "$out.batchscore.json" "$W/side.json"
run_bs 2 $COMMON --output "$out" --resume
rc=$?
if [ $rc = 1 ] && grep -q "is missing or unreadable" "$WORK/err" &&
  cmp -s "$out" "$W/good.csv"; then
  ok "a CSV output without its record: refused, left alone"
else
  fail "a CSV output without its record: exit $rc, $(cat "$WORK/err")"
fi

# ---- bad uses ----------------------------------------------------------------------

# A kept column named like a score column; a NUL byte in a kept field; a
# name no HDF5 dataset can have.
sed '1s/^id,/score,/' "$W/in.csv" >"$W/score.csv"
OUT=$W/bad.csv
expect_fail "--keep score, CSV output" 2 "names a score column 'score' already" \
  --model "$M" --input "$W/score.csv" --keep score,name --output "$OUT"
[ -e "$OUT.batchscore.json" ] && fail "--keep score: left a record behind"
{ head -n 1 "$W/in.csv"; printf '7,'; sed -n 2p "$DATA/input/bc.csv" | tr -d '\n'; printf ',a\000b\n'; } \
  >"$W/nul.csv"
expect_fail "a NUL byte in a kept field" 1 "line 2, column 32 ('name'): a NUL byte" \
  --model "$M" --input "$W/nul.csv" --keep id,name --output "$OUT"
sed '1s/^id,/a\/b,/' "$W/in.csv" >"$W/slash.csv"
OUT=$W/bad.h5
expect_fail "--keep a/b, HDF5 output" 2 "--keep a/b: not a name an HDF5 output can give" \
  --model "$M" --input "$W/slash.csv" --keep a/b,name --output "$OUT"
finish
