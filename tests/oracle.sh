#!/bin/sh
# Oracle test: every fixture in data/xgb/ scored by batchscore matches the
# predictions and margins xgboost itself stored next to it, to 1e-5
# relative or 1e-6 absolute on every value. Prints the largest differences.
. "$(dirname "$0")/lib.sh"

for model in "$DATA"/xgb/*.json; do
  case=$(basename "$model" .json)
  input=$DATA/xgb/$case.h5
  for kind in prediction margin; do
    flag= ref=/expected
    [ "$kind" = margin ] && flag=--output-margin ref=/expected_margin
    out=$WORK/$case-$kind.h5
    if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$out" $flag; then
      fail "$case $kind: batchscore failed: $(cat "$WORK/err")"
      continue
    fi
    if res=$("$CMP" --rtol 1e-5 --atol 1e-6 "$out" "$input:$ref"); then
      ok "$case $kind: $res"
    else
      fail "$case $kind: $res"
    fi
  done
done

# The bundled example, as the README runs it.
out=$WORK/example.h5
if run_bs 2 --quiet --model "$DATA/example/model.json" \
  --input "$DATA/example/features.h5" --output "$out" &&
  res=$("$CMP" --rtol 1e-5 --atol 1e-6 "$out" "$DATA/example/features.h5:/expected"); then
  ok "example: $res"
else
  fail "example: $(cat "$WORK/err") ${res:-}"
fi
finish
