#!/bin/sh
# Oracle test: every XGBoost model in data/xgb/ (JSON, and UBJSON saved as
# .ubj or .bin) scored by batchscore matches the predictions and margins
# xgboost itself stored next to it, to 1e-5 relative or 1e-6 absolute on
# every value, at 1 rank, and bitwise the same at 3 ranks. Prints the
# largest differences. Then the iteration range of a model trained with
# early stopping.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/oracle-harness.sh"

oracle_folder xgb "$ORACLE_TOL" each "*.json" "*.ubj" "*.bin"

# Early stopping through scikit-learn: predictions use the recorded best
# iteration (checked above) and say so once on stderr; --iteration-range
# chooses, as xgboost's iteration_range.
es=$DATA/xgb/bc_early_stop_v3.json
esin=$DATA/xgb/bc_early_stop_v3.h5
if run_bs 3 --model "$es" --input "$esin" --output "$WORK/es.h5" --quiet &&
  [ "$(grep -c 'records best_iteration' "$WORK/err")" -eq 1 ]; then
  ok "best iteration: one note on stderr: $(grep 'best_iteration' "$WORK/err")"
else
  fail "best iteration: expected one note on stderr: $(cat "$WORK/err")"
fi
oracle_case iteration-range-0-0 "$es" "$esin" /expected_all_iterations "$ORACLE_TOL" \
  --iteration-range 0:0
oracle_case iteration-range-2-10 "$es" "$esin" /expected_iterations_2_10 "$ORACLE_TOL" \
  --iteration-range=2:10
run_bs 1 --quiet --model "$es" --input "$esin" --output "$WORK/no.h5" \
  --iteration-range 0:1000
st=$?
if [ "$st" -eq 2 ] && grep -q -- "--iteration-range 0:1000: the model has 35 iterations" \
  "$WORK/err" && [ ! -e "$WORK/no.h5" ]; then
  ok "iteration range beyond the model: exit 2, $(grep batchscore: "$WORK/err")"
else
  fail "iteration range beyond the model: exit $st: $(cat "$WORK/err")"
fi

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
