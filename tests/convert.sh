#!/bin/sh
# scripts/batchscore-convert: a Parquet folder, a Feather file and a CSV
# become HDF5 inputs that batchscore scores bitwise like the original rows,
# with the column names that let it match columns by name; bad sources fail
# with one line and leave no output. Skips (77) where its Python
# environment cannot be made (no python3 with venv, or no PyPI).
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
. "$(dirname "$0")/lib.sh"

CONV=$top_srcdir/scripts/batchscore-convert
M=$DATA/xgb/bc_logistic.json
CSV=$DATA/input/bc.csv
W=$WORK
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }

if ! python3 "$CONV" --quiet "$CSV" "$W/from-csv.h5" 2>"$W/conv-err"; then
  if grep -q "cannot make the environment" "$W/conv-err"; then
    echo "SKIP: $(cat "$W/conv-err")"
    exit 77
  fi
  fail "CSV: $(cat "$W/conv-err")"
  finish
fi
PY=${BATCHSCORE_CONVERT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/batchscore/convert-venv-3}/bin/python

# The same rows as Parquet (a folder of three files, small row groups, a
# bookkeeping file) and Feather (small record batches).
"$PY" - "$CSV" "$W" <<'PYEOF'
import os, sys
import pyarrow.csv as pc, pyarrow.feather as pf, pyarrow.parquet as pq
nulls = ["", "NA", "N/A", "nan", "NaN", "null"]
t = pc.read_csv(sys.argv[1], convert_options=pc.ConvertOptions(null_values=nulls,
                                                                strings_can_be_null=True))
w = sys.argv[2]
os.makedirs(os.path.join(w, "pq"), exist_ok=True)
for i, off in enumerate(range(0, t.num_rows, 200)):
    pq.write_table(t.slice(off, 200), os.path.join(w, "pq", "part-%d.parquet" % i),
                   row_group_size=64)
open(os.path.join(w, "pq", "_SUCCESS"), "w").close()
pf.write_feather(t, os.path.join(w, "bc.feather"), chunksize=100)
# A shard with one column less, and an id column of strings.
pq.write_table(t.slice(0, 10).drop(["mean area"]), os.path.join(w, "short.parquet"))
import pyarrow as pa
pq.write_table(t.append_column("id", pa.array(["r%d" % i for i in range(t.num_rows)])),
               os.path.join(w, "with-id.parquet"))
PYEOF
run_bs 1 --quiet --model "$M" --input "$DATA/xgb/bc_logistic.h5" --output "$W/base.h5" ||
  fail "baseline: $(cat "$W/err")"
sed "s/\"feature_names\":\[\]/\"feature_names\":$(cat "$DATA/input/bc-names.json")/" "$M" \
  >"$W/named.json"

python3 "$CONV" --quiet --batch-rows 50 "$W/pq" "$W/from-pq.h5" &&
  python3 "$CONV" --quiet "$W/bc.feather" "$W/from-feather.h5" &&
  python3 "$CONV" --quiet --exclude id "$W/with-id.parquet" "$W/from-id.h5" ||
  fail "conversions failed"
for h in from-csv from-pq from-feather from-id; do
  for np in 1 3; do
    rm -f "$W/s.h5"
    if run_bs "$np" --quiet --model "$W/named.json" --input "$W/$h.h5" --output "$W/s.h5" &&
      "$CMP" --exact "$W/s.h5" "$W/base.h5" >/dev/null; then
      ok "$h.h5 by name (np=$np): bitwise the scores of the original"
    else
      fail "$h.h5 (np=$np): $(cat "$W/err")"
    fi
  done
done
h5dump -a /features/column_names "$W/from-pq.h5" | grep -q '"worst fractal dimension"' &&
  ok "column_names written" || fail "no column_names in $W/from-pq.h5"

# Refusals: one line, no output.
bad() {
  what=$1 want_rc=$2 text=$3
  shift 3
  rm -f "$W/bad.h5" "$W/bad.h5.partial"
  python3 "$CONV" --quiet "$@" "$W/bad.h5" 2>"$W/conv-err"
  rc=$?
  if [ "$rc" = "$want_rc" ] && grep -qF -- "$text" "$W/conv-err" && [ ! -e "$W/bad.h5" ] &&
    [ ! -e "$W/bad.h5.partial" ]; then
    ok "$what: $(tail -n 1 "$W/conv-err")"
  else
    fail "$what: exit $rc, $(cat "$W/conv-err")"
  fi
}
bad "shards with other columns" 1 "short.parquet: no column 'mean area'" "$W/pq" "$W/short.parquet"
bad "a column that is not there" 1 "no column 'nope'" --columns nope "$W/bc.feather"
bad "a column that is not numbers" 1 "column 'id' is string" --columns id "$W/with-id.parquet"
bad "not a known format" 1 "not Parquet, CSV or Feather" "$DATA/xgb/bc_logistic.h5"
echo x >"$W/bad.h5"
python3 "$CONV" --quiet "$CSV" "$W/bad.h5" 2>"$W/conv-err"
[ $? = 2 ] && [ "$(cat "$W/bad.h5")" = x ] && ok "an existing output is kept without --force" ||
  fail "existing output: $(cat "$W/conv-err")"
finish
