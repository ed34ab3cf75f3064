#!/bin/sh
# Oracle test for CatBoost: every model in data/catboost/ (JSON exports)
# scored by batchscore matches what CatBoost itself stored next to it:
# predict_proba (classifiers) or predict (regressors) to 1e-5 relative or
# 1e-6 absolute, and the raw formula values (--output-margin; (-d, d) for
# binary models) bitwise, at 1 rank; the reference kernel on 3 ranks gives
# the default kernel's bits. Prints the largest differences.
. "$(dirname "$0")/lib.sh"

for model in "$DATA"/catboost/*.json; do
  case=$(basename "$model" .json)
  input=$DATA/catboost/$case.h5
  for kind in prediction margin; do
    flag= ref=/expected tol="--rtol 1e-5 --atol 1e-6"
    [ "$kind" = margin ] && flag=--output-margin ref=/expected_margin tol=--exact
    out=$WORK/$case-$kind.h5
    if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$out" $flag; then
      fail "$case $kind: batchscore failed: $(cat "$WORK/err")"
      continue
    fi
    # shellcheck disable=SC2086
    if res=$("$CMP" $tol "$out" "$input:$ref"); then
      ok "$case $kind: $res"
    else
      fail "$case $kind: $res"
    fi
  done
  out=$WORK/$case-ref.h5
  if run_bs 3 --quiet --kernel ref --chunk-rows 50 --model "$model" --input "$input" \
    --output "$out" && res=$("$CMP" --exact "$out" "$WORK/$case-prediction.h5"); then
    ok "$case: ref on 3 ranks = default kernel, bitwise"
  else
    fail "$case: ref on 3 ranks differs from the default kernel: $(cat "$WORK/err") ${res:-}"
  fi
  rm -f "$WORK/$case"-*.h5
done
finish
