#!/bin/sh
# Oracle test for LightGBM: every model in data/lgb/ scored by batchscore
# matches the predictions and raw scores LightGBM itself stored next to it,
# to 1e-5 relative or 1e-6 absolute on every value, at 1 rank, and bitwise
# the same at 3 ranks (float64 inputs on, just below and just above every
# threshold among them: epoch_f64, epoch_int64). Prints the largest
# differences. Then other spellings of a model. Refused models are cases
# of tests/cases/ (lightgbm-*).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

oracle_folder lgb "$ORACLE_TOL" each "*.txt"

# The same model in other spellings LightGBM's loader reads: the v3 format
# (no is_linear lines) and CRLF line ends.
src=$DATA/lgb/bc_binary.txt
sed 's/^version=v4$/version=v3/; /^is_linear=/d' "$src" >"$WORK/v3.txt"
sed 's/$/\r/' "$src" >"$WORK/crlf.txt"
for v in v3 crlf; do
  out=$WORK/$v.h5
  if run_bs 1 --quiet --model "$WORK/$v.txt" --input "$DATA/lgb/bc_binary.h5" \
    --output "$out" &&
    res=$("$CMP" --rtol 1e-5 --atol 1e-6 "$out" "$DATA/lgb/bc_binary.h5:/expected"); then
    ok "bc_binary as $v: $res"
  else
    fail "bc_binary as $v: $(cat "$WORK/err") ${res:-}"
  fi
done

finish
