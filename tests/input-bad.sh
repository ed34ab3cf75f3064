#!/bin/sh
# Bad input in every form: one clear "batchscore: ..." line naming the file
# (and line, or rows), the documented exit status, nothing left at the
# output path, no hang, at 1 and 3 ranks. Also inputs that change while
# the job runs: a shard deleted, an HDF5 file truncated to half, a CSV
# rewritten; each ends in an error, never in scores of zeros.
. "$(dirname "$0")/lib.sh"

M=$DATA/xgb/bc_logistic.json
CSV=$DATA/input/bc.csv
OUT=$WORK/out.h5
W=$WORK
export BATCHSCORE_CSV_ROWS_PER_MARK=7 BATCHSCORE_GZ_SPAN=4096

# Damaged CSV text.
sed '10s/,[^,]*$//' "$CSV" >"$W/ragged.csv"
sed '20s/^[^,]*,/17.5,abc,/' "$CSV" >"$W/word.csv"
sed '30s/^[^,]*,/1"7,/' "$CSV" >"$W/stray.csv"
sed '30s/^[^,]*,/1"7"x,/' "$CSV" >"$W/stray2.csv"
sed '40s/^[^,]*,/"17,/' "$CSV" >"$W/open.csv"
tail -n +2 "$CSV" >"$W/noheader.csv"
: >"$W/empty.csv"
expect_fail "ragged row" 1 "ragged.csv: line 10 has 29 fields; the header has 30" \
  --model "$M" --input "$W/ragged.csv" --output "$OUT"
expect_fail "non-numeric field" 1 \
  "word.csv: line 20, column 2 ('mean texture'): 'abc' is not a number" \
  --model "$M" --input "$W/word.csv" --output "$OUT"
expect_fail "stray quote" 1 "stray.csv: line 30, column 1 ('mean radius'): a quote inside" \
  --model "$M" --input "$W/stray.csv" --output "$OUT"
expect_fail "two stray quotes" 1 "stray2.csv: line 30, column 1 ('mean radius'): a quote" \
  --model "$M" --input "$W/stray2.csv" --output "$OUT"
expect_fail "unclosed quote" 1 "open.csv: line 40, column 1 ('mean radius')" \
  --model "$M" --input "$W/open.csv" --output "$OUT"
expect_fail "no header row" 1 "noheader.csv: the first line is numbers, not a header" \
  --model "$M" --input "$W/noheader.csv" --output "$OUT"
expect_fail "empty file" 1 "empty.csv: empty file (no header line)" \
  --model "$M" --input "$W/empty.csv" --output "$OUT"
printf 'PAR1\025\004' >"$W/rows.parquet"
expect_fail "a Parquet file" 1 "rows.parquet: Parquet or Feather, which batchscore reads once" \
  --model "$M" --input "$W/rows.parquet" --output "$OUT"

# Shards (150 rows each: csv_shards in tests/lib.sh).
csv_shards "$CSV" "$W/hdr"
sed -i '1s/mean area/mean aera/' "$W/hdr/part-02.csv"
expect_fail "headers differ between shards" 1 \
  "part-02.csv: header column 4 is 'mean aera' but in $W/hdr/part-00.csv it is 'mean area'" \
  --model "$M" --input "$W/hdr" --output "$OUT"
csv_shards "$CSV" "$W/emp"
: >"$W/emp/part-01.csv"
expect_fail "an empty shard" 1 "emp/part-01.csv: empty file (no header line)" \
  --model "$M" --input "$W/emp" --output "$OUT"
csv_shards "$CSV" "$W/rag"
sed -i '3s/,[^,]*$//' "$W/rag/part-03.csv"
expect_fail "ragged row in a later shard" 1 "rag/part-03.csv: line 3 has 29 fields" \
  --model "$M" --input "$W/rag" --output "$OUT"
expect_fail "a glob that matches nothing" 1 "input '$W/nothing-*.csv': no file matches" \
  --model "$M" --input "$W/nothing-*.csv" --output "$OUT"
mkdir -p "$W/void"
expect_fail "an empty folder" 1 "void: the folder holds no files" \
  --model "$M" --input "$W/void" --output "$OUT"
mkdir -p "$W/kinds"
cp "$CSV" "$W/kinds/a.csv"
cp "$DATA/xgb/bc_logistic.h5" "$W/kinds/b.h5"
expect_fail "CSV and HDF5 in one folder" 1 "one input is files of one kind" \
  --model "$M" --input "$W/kinds" --output "$OUT"
mkdir -p "$W/cols"
cp "$DATA/xgb/bc_logistic.h5" "$W/cols/a.h5"
cp "$DATA/tests/narrow.h5" "$W/cols/b.h5"
expect_fail "HDF5 shards with other columns" 1 "b.h5: dataset '/features' has 29 columns but" \
  --model "$M" --input "$W/cols" --output "$OUT"

# gzip.
gzip -c "$CSV" >"$W/bc.csv.gz"
size=$(wc -c <"$W/bc.csv.gz")
head -c $((size / 2)) "$W/bc.csv.gz" >"$W/cut.csv.gz"
cp "$W/bc.csv.gz" "$W/bad.csv.gz"
printf '\377\377\377\377' | dd of="$W/bad.csv.gz" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
csv_shards "$CSV" "$W/gzs"
gzip "$W/gzs/part-02.csv"
head -c 2000 "$W/gzs/part-02.csv.gz" >"$W/gzs/part-02.csv.gz.cut"
mv "$W/gzs/part-02.csv.gz.cut" "$W/gzs/part-02.csv.gz"
expect_fail "truncated gzip" 1 "cut.csv.gz: truncated: the file ends inside gzip data" \
  --model "$M" --input "$W/cut.csv.gz" --output "$OUT"
expect_fail "damaged gzip" 1 "bad.csv.gz: damaged gzip data" \
  --model "$M" --input "$W/bad.csv.gz" --output "$OUT"
expect_fail "truncated gzip member in a shard" 1 "gzs/part-02.csv.gz: truncated" \
  --model "$M" --input "$W/gzs" --output "$OUT"

# Columns by name.
sed "s/\"feature_names\":\[\]/\"feature_names\":$(cat "$DATA/input/bc-names.json")/" "$M" \
  >"$W/named.json"
sed '1s/mean area/area/' "$CSV" >"$W/renamed.csv"
awk '{ print (NR == 1 ? "id" : NR - 1) "," $0 }' "$CSV" >"$W/with-id.csv"
expect_fail "a feature missing by name" 1 "renamed.csv: no column 'mean area'" \
  --model "$W/named.json" --input "$W/renamed.csv" --output "$OUT"
expect_fail "an extra column by name" 1 "1 column(s) the model does not read, e.g. 'id'" \
  --model "$W/named.json" --input "$W/with-id.csv" --output "$OUT"
expect_fail "too few columns by position" 1 "the header has 31 columns; the model reads 30" \
  --model "$M" --input "$W/with-id.csv" --output "$OUT"

# HDF5.
expect_fail "virtual dataset, source missing" 1 \
  "virtual dataset '/features' takes rows from 'vds-missing-source.h5', which is missing" \
  --model "$M" --input "$DATA/input/vds-missing.h5" --output "$OUT"

# Command line (status 2).
expect_fail "a dataset for CSV" 2 "a dataset name applies to HDF5 files only" \
  --model "$M" --input "$W/ragged.csv:/features" --output "$OUT"
expect_fail "bad --delimiter" 2 "--delimiter: 'ab' is not one character" \
  --model "$M" --input "$CSV" --delimiter ab --output "$OUT"

# Inputs that change while the job runs: slowed to 100 ms a chunk of 20
# rows, the input is made afresh (SETUP), and changed (CHANGE) once the
# partial output exists. A read after the change, or the check at the end,
# refuses it: no output (the chunks done may be kept for --resume, as
# after any failure mid-run).
changed_during() {
  what=$1 text=$2 setup=$3 change=$4
  shift 4
  for np in 1 3; do
    rm -rf "$OUT" "$OUT.partial"
    sh -c "$setup"
    BATCHSCORE_TEST_DELAY=100 timeout 120 "$MPIRUN" --oversubscribe -np "$np" "$BS" "$@" \
      --chunk-rows 20 --output "$OUT" >"$WORK/out" 2>"$WORK/err" &
    pid=$!
    i=0
    while [ ! -e "$OUT.partial" ] && [ $i -lt 600 ]; do
      sleep 0.05
      i=$((i + 1))
    done
    sh -c "$change"
    wait $pid
    rc=$?
    if [ "$rc" = 1 ] && grep '^batchscore:' "$WORK/err" | grep -qF -- "$text" &&
      [ ! -e "$OUT" ]; then
      ok "$what (np=$np): $(grep '^batchscore:' "$WORK/err" | grep -v 'note:')"
    else
      fail "$what (np=$np): exit $rc, $(cat "$WORK/err")"
    fi
  done
}
csv_shards "$CSV" "$W/del0"
changed_during "a shard deleted during the run" "part-03.csv: the file was deleted while the job ran" \
  "rm -rf '$W/del'; cp -r '$W/del0' '$W/del'" "rm -f '$W/del/part-03.csv'" \
  --model "$M" --input "$W/del"
changed_during "a gzip shard deleted during the run" "part-03.csv.gz: the file was deleted while the job ran" \
  "rm -rf '$W/del'; cp -r '$W/del0' '$W/del'; gzip '$W/del/part-03.csv'" \
  "rm -f '$W/del/part-03.csv.gz'" --model "$M" --input "$W/del"
# digits_softprob.h5 is contiguous: HDF5 alone would read the lost half as zeros.
H=$DATA/xgb/digits_softprob.h5
half=$(($(wc -c <"$H") / 2))
changed_during "HDF5 input truncated to half during the run" "digits.h5: the file changed while the job ran" \
  "cp '$H' '$W/digits.h5'" "truncate -s $half '$W/digits.h5'" \
  --model "$DATA/xgb/digits_softprob.json" --input "$W/digits.h5"
changed_during "CSV rewritten during the run" "rewritten.csv: the file changed while the job ran" \
  "cp '$CSV' '$W/rewritten.csv'" "sed -i 's/0.1184/0.1185/' '$W/rewritten.csv'" \
  --model "$M" --input "$W/rewritten.csv"
finish
