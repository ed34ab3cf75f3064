#!/bin/sh
# Oracle test for ONNX models: every model in data/onnx/ (written by
# scikit-learn's, LightGBM's and XGBoost's exporters, or by onnx.helper;
# scripts/make-onnx-fixtures) scored by batchscore matches what
# onnxruntime computed and stored next to it (the probability output of
# classifiers, the predictions of regressors) to 1e-5 relative or 1e-6
# absolute on every value, at 1 rank; the reference kernel on 3 ranks
# gives the default kernel's bits. Prints the largest differences.
. "$(dirname "$0")/lib.sh"

for model in "$DATA"/onnx/*.onnx; do
  case=$(basename "$model" .onnx)
  input=$DATA/onnx/$case.h5
  out=$WORK/$case.h5
  if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$out"; then
    fail "$case: batchscore failed: $(cat "$WORK/err")"
    continue
  fi
  if res=$("$CMP" --rtol 1e-5 --atol 1e-6 "$out" "$input:/expected"); then
    ok "$case: $res"
  else
    fail "$case: $res"
  fi
  ref=$WORK/$case-ref.h5
  if run_bs 3 --quiet --kernel ref --chunk-rows 40 --model "$model" --input "$input" \
    --output "$ref" && res=$("$CMP" --exact "$ref" "$out"); then
    ok "$case: ref on 3 ranks = default kernel, bitwise"
  else
    fail "$case: ref on 3 ranks differs from the default kernel: $(cat "$WORK/err") ${res:-}"
  fi
  rm -f "$out" "$ref"
done
finish
