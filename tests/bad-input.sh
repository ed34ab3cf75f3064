#!/bin/sh
# Bad input: every case gets one clear "batchscore: ..." line on rank 0 (notes
# such as "batchscore: note: input columns are taken by position" aside), the
# documented exit status (1 run failed, 2 bad command line), no hang on any
# rank count, and nothing left at the output path (not even a temporary).
# Then the valid edge cases: zero rows, fewer rows than ranks, extra columns
# when allowed, --force.
. "$(dirname "$0")/lib.sh"

M=$DATA/xgb/bc_logistic.json
IN=$DATA/xgb/bc_logistic.h5
T=$DATA/tests
OUT=$WORK/out.h5

printf 'hello, not json\n' >"$WORK/text.json"
mkdir -p "$WORK/adir"

# Command line (status 2).
expect_fail "unknown option" 2 "unknown option '--frobnicate'" --frobnicate
expect_fail "missing --model" 2 "--model is required" --input "$IN" --output "$OUT"
expect_fail "removed option" 2 "--write-mode was removed" --model "$M" --input "$IN" \
  --output "$OUT" --write-mode root
expect_fail "bad checkpoint" 2 "--checkpoint: 'often'" --model "$M" --input "$IN" \
  --output "$OUT" --checkpoint often
expect_fail "bad chunk rows" 2 "--chunk-rows: '0'" --model "$M" --input "$IN" \
  --output "$OUT" --chunk-rows 0
expect_fail "unknown kernel" 2 "unknown kernel 'warp9'" --model "$M" --input "$IN" \
  --output "$OUT" --kernel warp9

# Models: the refusals are data, tests/cases/ (tests/cases.sh).

# Input (status 1).
refusals 1 "$M" <<EOF
input missing|$WORK/none.h5|input $WORK/none.h5: cannot open
input not HDF5|$T/not-hdf5.h5|not an HDF5 file
dataset missing|$IN:/nope/x|no dataset '/nope/x'
dataset is a group|$T/grouped.h5:/group|no dataset '/group'
not 2-D|$T/threed.h5|is 3-D; expected 2-D
not numeric|$T/strings.h5|has type string
too few columns|$T/narrow.h5|has 29 columns; the model reads 30
extra columns|$T/wide.h5|pass --allow-extra-columns
EOF
# A damaged chunk met mid-run fails the run but keeps the chunks done
# before it (tests/transaction.sh resumes such a run once the input is
# repaired).
for sched in dynamic static; do
  for np in 1 3; do
    rm -rf "$OUT" "$OUT.partial"
    run_bs "$np" --model "$M" --input "$T/corrupt.h5" --output "$OUT" --chunk-rows 1000 \
      --schedule "$sched"
    rc=$?
    msg=$(grep '^batchscore:' "$WORK/err" | grep -v '^batchscore: note:')
    if [ "$rc" = 1 ] && [ "$(echo "$msg" | wc -l)" = 1 ] &&
      echo "$msg" | grep -q "cannot read rows 15000..15999 of '/features'.*of 20 chunks are kept in $OUT.partial: once fixed, rerun with --resume" &&
      [ ! -e "$OUT" ] && [ -d "$OUT.partial" ]; then
      ok "unreadable chunk mid-run ($sched, np=$np): progress kept: $msg"
    else
      fail "unreadable chunk mid-run ($sched, np=$np): exit $rc: $msg"
    fi
  done
done
rm -rf "$OUT.partial"

# Output (status 1).
expect_fail "output directory missing" 1 "directory $WORK/nodir" --model "$M" \
  --input "$IN" --output "$WORK/nodir/out.h5"
expect_fail "output parent is a file" 1 "is not a directory" --model "$M" --input "$IN" \
  --output "$WORK/text.json/out.h5"
expect_fail "output is a directory" 1 "is a directory" --model "$M" --input "$IN" \
  --output "$WORK/adir"

# Output exists without --force: an error, and the file is untouched.
echo "precious" >"$OUT"
run_bs 2 --model "$M" --input "$IN" --output "$OUT"
rc=$?
if [ "$rc" = 1 ] && grep -q "exists (use --force" "$WORK/err" &&
  [ "$(cat "$OUT")" = precious ] && [ ! -e "$OUT.partial" ]; then
  ok "existing output refused and untouched"
else
  fail "existing output: exit $rc, $(cat "$WORK/err"), content $(head -c 20 "$OUT")"
fi
if run_bs 2 --quiet --force --model "$M" --input "$IN" --output "$OUT" &&
  "$CMP" "$OUT" "$IN:/expected" >/dev/null; then
  ok "--force replaces an existing output"
else
  fail "--force: $(cat "$WORK/err")"
fi

# Valid edge cases.
for np in 1 3; do
  for sched in dynamic static; do
    rm -f "$OUT"
    if run_bs "$np" --quiet --model "$M" --input "$T/empty.h5" --output "$OUT" \
      --schedule "$sched" && h5dump -H "$OUT" | grep -q 'DATASPACE  SIMPLE { ( 0, 1 )' &&
      [ ! -e "$OUT.partial" ]; then
      ok "zero rows (np=$np, $sched): empty (0, 1) output"
    else
      fail "zero rows (np=$np, $sched): $(cat "$WORK/err")"
    fi
  done
done
rm -f "$OUT"
if run_bs 3 --quiet --model "$M" --input "$T/wide.h5" --output "$OUT" \
  --allow-extra-columns && "$CMP" "$OUT" "$IN:/expected" >/dev/null; then
  ok "--allow-extra-columns ignores the trailing column"
else
  fail "--allow-extra-columns: $(cat "$WORK/err")"
fi
rm -f "$OUT"
if run_bs 3 --quiet --model "$M" --input "$T/grouped.h5:group/deep/x" --output "$OUT" &&
  "$CMP" "$OUT" "$IN:/expected" >/dev/null; then
  ok "dataset inside groups, given without a leading slash"
else
  fail "grouped dataset: $(cat "$WORK/err")"
fi
finish
