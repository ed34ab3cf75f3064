#!/bin/sh
# Oracle test for LightGBM: every model in data/lgb/ scored by batchscore
# matches the predictions and raw scores LightGBM itself stored next to it,
# to 1e-5 relative or 1e-6 absolute on every value, at 1 rank, and bitwise
# the same at 3 ranks (float64 inputs on, just below and just above every
# threshold among them: epoch_f64, epoch_int64). Prints the largest
# differences. Then other spellings of a model, and refusals with one clear
# line each.
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

# refused NAME STATUS MESSAGE MODEL: scoring MODEL fails with STATUS and one
# line on stderr that names the file and contains MESSAGE.
refused() {
  run_bs 1 --quiet --model "$4" --input "$DATA/lgb/bc_binary.h5" --output "$WORK/no.h5"
  st=$?
  if [ "$st" -ne "$2" ]; then
    fail "$1: exit status $st, expected $2: $(cat "$WORK/err")"
  elif ! grep -q "batchscore: $4: .*$3" "$WORK/err"; then
    fail "$1: message does not name the file and '$3': $(cat "$WORK/err")"
  elif [ -e "$WORK/no.h5" ]; then
    fail "$1: an output was left behind"
  else
    ok "$1: $(grep batchscore: "$WORK/err" | head -n 1)"
  fi
}

sed 's/^is_linear=0$/is_linear=1/' "$src" >"$WORK/linear.txt"
refused "linear trees" 1 "tree 0 is a linear tree" "$WORK/linear.txt"
sed '/^Tree=3$/,$d' "$src" >"$WORK/truncated.txt"
refused "truncated file" 1 "truncated" "$WORK/truncated.txt"
sed '0,/^threshold=/s/^\(threshold=[^ ]*\) .*/\1/' "$src" >"$WORK/short.txt"
refused "short threshold line" 1 "tree 0: threshold has 1 values, expected" "$WORK/short.txt"
sed 's/^objective=.*/objective=survival/' "$src" >"$WORK/objective.txt"
refused "unknown objective" 1 "objective 'survival' is not supported" "$WORK/objective.txt"
sed '0,/^left_child=/s/^left_child=[^ ]*/left_child=0/' "$src" >"$WORK/cycle.txt"
refused "cycle to the root" 1 "tree 0: node 0 has invalid left child 0" "$WORK/cycle.txt"
finish
