# The oracle harness of tests/oracle*.sh: batchscore against the
# predictions and margins the training library itself stored next to each
# fixture model, and the same bits again on 3 ranks. Sourced after lib.sh,
# not run. A fixture folder is data: its models, and what each is checked
# against (oracle_folder's settings).

# Tolerances (bscompare's options) of predictions and of margins.
ORACLE_TOL="--rtol 1e-5 --atol 1e-6"

# oracle_one CASE MODEL INPUT REF TOL [FLAGS...]: batchscore at 1 rank
# matches INPUT:REF within TOL (bscompare's options, e.g. --exact); the
# output stays at $WORK/CASE.h5 for the checks that follow. 0 when it does.
oracle_one() {
  _case=$1 _model=$2 _input=$3 _ref=$4 _tol=$5
  shift 5
  if ! run_bs 1 --quiet --model "$_model" --input "$_input" --output "$WORK/$_case.h5" "$@"
  then
    fail "$_case: batchscore failed: $(cat "$WORK/err")"
    return 1
  fi
  # shellcheck disable=SC2086
  if ! oracle_res=$("$CMP" $_tol "$WORK/$_case.h5" "$_input:$_ref"); then
    fail "$_case: $oracle_res"
    return 1
  fi
  return 0
}

# oracle_ranks CASE MODEL INPUT CHUNK [FLAGS...]: batchscore on 3 ranks, in
# chunks of CHUNK rows so that every rank scores some, gives the bits of
# $WORK/CASE.h5. 0 when it does.
oracle_ranks() {
  _case=$1 _model=$2 _input=$3 _chunk=$4
  shift 4
  if ! run_bs 3 --quiet --model "$_model" --input "$_input" --output "$WORK/$_case-3.h5" \
    --chunk-rows "$_chunk" "$@"; then
    fail "$_case, 3 ranks: batchscore failed: $(cat "$WORK/err")"
    return 1
  fi
  if ! oracle_res3=$("$CMP" --exact "$WORK/$_case-3.h5" "$WORK/$_case.h5"); then
    fail "$_case, 3 ranks ($*) differ from 1: $oracle_res3"
    return 1
  fi
  return 0
}

# oracle_case CASE MODEL INPUT REF TOL [FLAGS...]: oracle_one, then the
# default kernel on 3 ranks (chunks of 100 rows) gives the same bits.
oracle_case() {
  _c=$1 _m=$2 _i=$3
  if oracle_one "$@"; then
    shift 5
    oracle_ranks "$_c" "$_m" "$_i" 100 "$@" && ok "$_c: $oracle_res; 3 ranks bitwise equal"
  fi
  rm -f "$WORK/$_c.h5" "$WORK/$_c-3.h5"
}

# oracle_folder DIR MARGIN_TOL RANKS PATTERN...: every model of
# $DATA/DIR matching a PATTERN, scored against the input beside it
# (NAME.h5 for NAME.EXT or NAME.model.EXT), which holds the library's
# predictions (/expected, within ORACLE_TOL) and margins
# (/expected_margin, within MARGIN_TOL, bscompare's options). RANKS says
# what 3 ranks must give bitwise: "each" (the default kernel, in chunks of
# 100 rows, the 1-rank predictions and margins) or "ref:CHUNK" (the
# reference kernel, in chunks of CHUNK rows, the default kernel's
# predictions).
oracle_folder() {
  dir=$DATA/$1 mtol=$2 ranks=$3
  shift 3
  for pattern in "$@"; do
    for model in "$dir"/$pattern; do
      [ -f "$model" ] || continue
      file=$(basename "$model")
      base=${file%.*}
      input=$dir/${base%.model}.h5
      if [ "$ranks" = each ]; then
        oracle_case "$file-prediction" "$model" "$input" /expected "$ORACLE_TOL"
        oracle_case "$file-margin" "$model" "$input" /expected_margin "$mtol" \
          --output-margin
        continue
      fi
      oracle_one "$file-margin" "$model" "$input" /expected_margin "$mtol" \
        --output-margin && ok "$file margin: $oracle_res"
      if oracle_one "$file" "$model" "$input" /expected "$ORACLE_TOL"; then
        ok "$file prediction: $oracle_res"
        oracle_ranks "$file" "$model" "$input" "${ranks#ref:}" --kernel ref &&
          ok "$file: ref on 3 ranks = default kernel, bitwise"
      fi
      rm -f "$WORK/$file"*.h5
    done
  done
}
