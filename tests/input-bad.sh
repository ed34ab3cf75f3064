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
printf 'PAR1\025\004' >"$W/rows.parquet"
refusals 1 "$M" <<EOF
ragged row|$W/ragged.csv|ragged.csv: line 10 has 29 fields; the header has 30
non-numeric field|$W/word.csv|word.csv: line 20, column 2 ('mean texture'): 'abc' is not a number
stray quote|$W/stray.csv|stray.csv: line 30, column 1 ('mean radius'): a quote inside
two stray quotes|$W/stray2.csv|stray2.csv: line 30, column 1 ('mean radius'): a quote
unclosed quote|$W/open.csv|open.csv: line 40, column 1 ('mean radius')
no header row|$W/noheader.csv|noheader.csv: the first line is numbers, not a header
empty file|$W/empty.csv|empty.csv: empty file (no header line)
a Parquet file|$W/rows.parquet|rows.parquet: Parquet or Feather, which batchscore reads once
EOF

# Shards (150 rows each: csv_shards in tests/lib.sh).
csv_shards "$CSV" "$W/hdr"
sed -i '1s/mean area/mean aera/' "$W/hdr/part-02.csv"
csv_shards "$CSV" "$W/emp"
: >"$W/emp/part-01.csv"
csv_shards "$CSV" "$W/rag"
sed -i '3s/,[^,]*$//' "$W/rag/part-03.csv"
mkdir -p "$W/void" "$W/kinds" "$W/cols"
cp "$CSV" "$W/kinds/a.csv"
cp "$DATA/xgb/bc_logistic.h5" "$W/kinds/b.h5"
cp "$DATA/xgb/bc_logistic.h5" "$W/cols/a.h5"
cp "$DATA/tests/narrow.h5" "$W/cols/b.h5"
refusals 1 "$M" <<EOF
headers differ between shards|$W/hdr|part-02.csv: header column 4 is 'mean aera' but in $W/hdr/part-00.csv it is 'mean area'
an empty shard|$W/emp|emp/part-01.csv: empty file (no header line)
ragged row in a later shard|$W/rag|rag/part-03.csv: line 3 has 29 fields
a glob that matches nothing|$W/nothing-*.csv|input '$W/nothing-*.csv': no file matches
an empty folder|$W/void|void: the folder holds no files
CSV and HDF5 in one folder|$W/kinds|one input is files of one kind
HDF5 shards with other columns|$W/cols|b.h5: dataset '/features' has 29 columns but
EOF

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
refusals 1 "$M" <<EOF
truncated gzip|$W/cut.csv.gz|cut.csv.gz: truncated: the file ends inside gzip data
damaged gzip|$W/bad.csv.gz|bad.csv.gz: damaged gzip data
truncated gzip member in a shard|$W/gzs|gzs/part-02.csv.gz: truncated
EOF

# Columns by name.
sed "s/\"feature_names\":\[\]/\"feature_names\":$(cat "$DATA/input/bc-names.json")/" "$M" \
  >"$W/named.json"
sed '1s/mean area/area/' "$CSV" >"$W/renamed.csv"
awk '{ print (NR == 1 ? "id" : NR - 1) "," $0 }' "$CSV" >"$W/with-id.csv"
refusals 1 "$W/named.json" <<EOF
a feature missing by name|$W/renamed.csv|renamed.csv: no column 'mean area'
an extra column by name|$W/with-id.csv|1 column(s) the model does not read, e.g. 'id'
EOF
refusals 1 "$M" <<EOF
too few columns by position|$W/with-id.csv|the header has 31 columns; the model reads 30
virtual dataset, source missing|$DATA/input/vds-missing.h5|virtual dataset '/features' takes rows from 'vds-missing-source.h5', which is missing
EOF

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
