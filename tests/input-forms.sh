#!/bin/sh
# Every input form gives bitwise the scores of the HDF5 input, at 1 and 3
# ranks: CSV, CRLF, other delimiters, CSV.gz (one or several members),
# folders and globs of shards (plain, gzip, mixed), HDF5 shards, a
# virtual dataset, and columns matched by name (CSV header and HDF5
# column_names, in an order other than the model's, with extra columns).
# Marks every 7 rows and gzip access points every 4 KiB make every rank
# index and read inside every file. The rows themselves, as float and as
# double, are compared through tests/inputdump.
. "$(dirname "$0")/lib.sh"

DUMP=$top_builddir/tests/inputdump
M=$DATA/xgb/bc_logistic.json
IN=$DATA/xgb/bc_logistic.h5
CSV=$DATA/input/bc.csv
BASE=$WORK/base.h5
export BATCHSCORE_CSV_ROWS_PER_MARK=7 BATCHSCORE_GZ_SPAN=4096

if ! run_bs 1 --quiet --model "$M" --input "$IN" --output "$BASE"; then
  fail "baseline: $(cat "$WORK/err")"
  finish
fi

# same NAME BASE ARGS...: on 1 and 3 ranks, two chunk sizes, the output
# equals BASE bit for bit.
same() {
  what=$1 want=$2
  shift 2
  for np in 1 3; do
    for chunk in 37 100000; do
      out=$WORK/out-$np-$chunk.h5
      rm -f "$out"
      if ! run_bs "$np" --quiet --chunk-rows "$chunk" --output "$out" "$@"; then
        fail "$what (np=$np, chunk $chunk): $(cat "$WORK/err")"
        return
      elif ! res=$("$CMP" --exact "$out" "$want"); then
        fail "$what (np=$np, chunk $chunk): $res"
        return
      fi
      rm -f "$out"
    done
  done
  ok "$what: bitwise the same at 1 and 3 ranks"
}

# The forms, made from bc.csv.
W=$WORK
gzip -c "$CSV" >"$W/bc.csv.gz"
{ head -n 200 "$CSV" | gzip -c; tail -n +201 "$CSV" | gzip -c; } >"$W/members.csv.gz"
sed 's/$/\r/' "$CSV" >"$W/crlf.csv"
tr ',' ';' <"$CSV" >"$W/semi.csv"
tr ',' '\t' <"$CSV" >"$W/tab.tsv"
csv_shards "$CSV" "$W/plain"
csv_shards "$CSV" "$W/gz"
gzip "$W/gz/part-00.csv" "$W/gz/part-01.csv" "$W/gz/part-02.csv" "$W/gz/part-03.csv"
csv_shards "$CSV" "$W/mixed"
gzip "$W/mixed/part-01.csv" "$W/mixed/part-03.csv"
: >"$W/mixed/_SUCCESS" # bookkeeping files are not shards

same "CSV" "$BASE" --model "$M" --input "$CSV"
same "CSV with CRLF" "$BASE" --model "$M" --input "$W/crlf.csv"
same "CSV, ';' detected" "$BASE" --model "$M" --input "$W/semi.csv"
same "CSV, --delimiter ';'" "$BASE" --model "$M" --input "$W/semi.csv" --delimiter ';'
same "TSV, --delimiter tab" "$BASE" --model "$M" --input "$W/tab.tsv" --delimiter tab
same "CSV.gz" "$BASE" --model "$M" --input "$W/bc.csv.gz"
same "CSV.gz of two members" "$BASE" --model "$M" --input "$W/members.csv.gz"
same "folder of CSV shards" "$BASE" --model "$M" --input "$W/plain"
same "glob of CSV.gz shards" "$BASE" --model "$M" --input "$W/gz/part-*.csv.gz"
same "folder of plain and gzip shards" "$BASE" --model "$M" --input "$W/mixed/"
same "virtual dataset" "$BASE" --model "$M" --input "$DATA/input/vds.h5"

# HDF5 shards: two copies of the input against two copies of the CSV.
mkdir -p "$W/h5" "$W/csv2"
cp "$IN" "$W/h5/a.h5"
cp "$IN" "$W/h5/b.h5"
cp "$CSV" "$W/csv2/a.csv"
cp "$CSV" "$W/csv2/b.csv"
if run_bs 3 --quiet --model "$M" --input "$W/csv2" --output "$W/twice.h5"; then
  same "HDF5 shards (folder)" "$W/twice.h5" --model "$M" --input "$W/h5"
  same "HDF5 shards (glob:dataset)" "$W/twice.h5" --model "$M" --input "$W/h5/*.h5:/features"
else
  fail "two CSV shards: $(cat "$WORK/err")"
fi

# Columns by name: the model with the names of bc.csv's header.
sed "s/\"feature_names\":\[\]/\"feature_names\":$(cat "$DATA/input/bc-names.json")/" "$M" \
  >"$W/named.json"
# The columns reversed, and an id column in front.
awk -F, -v OFS=, '{ s = $NF; for (i = NF - 1; i >= 1; i--) s = s OFS $i; print s }' "$CSV" \
  >"$W/reversed.csv"
awk '{ print (NR == 1 ? "id" : NR - 1) "," $0 }' "$CSV" >"$W/with-id.csv"
same "CSV by name" "$BASE" --model "$W/named.json" --input "$CSV"
same "CSV by name, columns reversed" "$BASE" --model "$W/named.json" --input "$W/reversed.csv"
same "CSV by name, an extra id column" "$BASE" --model "$W/named.json" \
  --input "$W/with-id.csv" --allow-extra-columns
# A text column whose quoted values hold delimiters, doubled quotes and
# line breaks: rows span lines, and ranges cut inside quoted fields.
awk '{ print $0 "," (NR == 1 ? "\"note, free text\"" : \
  "\"row " NR ", says \"\"hi\"\"\nand goes on\n\n,here\"") }' "$CSV" >"$W/notes.csv"
gzip -c "$W/notes.csv" >"$W/notes.csv.gz"
same "CSV with multi-line quoted fields, by name" "$BASE" --model "$W/named.json" \
  --input "$W/notes.csv" --allow-extra-columns
same "CSV.gz with multi-line quoted fields, by name" "$BASE" --model "$W/named.json" \
  --input "$W/notes.csv.gz" --allow-extra-columns
same "HDF5 column_names, reversed" "$BASE" --model "$W/named.json" \
  --input "$DATA/input/bc-named.h5"
# By position the reversed columns give other scores: matching did the work.
if run_bs 1 --quiet --model "$M" --input "$W/reversed.csv" --output "$W/pos.h5" &&
  ! "$CMP" --exact "$W/pos.h5" "$BASE" >/dev/null; then
  ok "by position the reversed CSV scores differently"
else
  fail "reversed CSV by position: $(cat "$WORK/err")"
fi
# The note when columns go by position, and none when they go by name.
run_bs 1 --model "$M" --input "$CSV" --output "$W/note.h5"
grep -q "note: input columns are taken by position" "$WORK/err" &&
  ok "note on stderr when columns go by position" || fail "no note: $(cat "$WORK/err")"
run_bs 1 --model "$W/named.json" --input "$CSV" --output "$W/note2.h5"
grep -q "note: input columns" "$WORK/err" && fail "a note by name: $(cat "$WORK/err")" ||
  ok "no note when columns go by name"

# The rows themselves: CSV as float equals HDF5; a CSV written with 17
# digits reads back as the same doubles.
if "$DUMP" "$IN" >"$W/h5.f32" && "$DUMP" --rows 13 "$CSV" >"$W/csv.f32" &&
  cmp -s "$W/h5.f32" "$W/csv.f32"; then
  ok "rows as float: CSV = HDF5"
else
  fail "rows as float differ between CSV and HDF5"
fi
if "$DUMP" --csv "$IN" >"$W/digits17.csv" && "$DUMP" --f64 "$IN" >"$W/h5.f64" &&
  "$DUMP" --f64 --rows 11 "$W/digits17.csv" >"$W/csv.f64" && cmp -s "$W/h5.f64" "$W/csv.f64" &&
  gzip -c "$W/digits17.csv" >"$W/digits17.csv.gz" &&
  "$DUMP" --f64 --rows 50 "$W/digits17.csv.gz" | cmp -s - "$W/h5.f64"; then
  ok "rows as double: CSV and CSV.gz with 17 digits = HDF5"
else
  fail "rows as double differ between CSV and HDF5"
fi
finish
