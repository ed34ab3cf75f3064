#!/bin/sh
# Oracle test for ONNX models: every model in data/onnx/ (written by
# scikit-learn's, LightGBM's, XGBoost's, CatBoost's and torch's exporters,
# or by onnx.helper; scripts/make-onnx-fixtures) scored by batchscore
# matches what onnxruntime computed and stored next to it (the probability
# output of classifiers, the predictions of regressors) to 1e-5 relative
# or 1e-6 absolute on every value, at 1 rank; the reference kernel on 3
# ranks gives the default kernel's bits. Prints the largest differences. ONNX
# files record no margins: predictions only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

for model in "$DATA"/onnx/*.onnx; do
  file=$(basename "$model")
  input=$DATA/onnx/${file%.onnx}.h5
  if oracle_one "$file" "$model" "$input" /expected "$ORACLE_TOL"; then
    ok "$file prediction: $oracle_res"
    oracle_ranks "$file" "$model" "$input" 40 --kernel ref &&
      ok "$file: ref on 3 ranks = default kernel, bitwise"
  fi
  rm -f "$WORK/$file"*.h5
done
finish
