#!/bin/sh
# Results do not depend on how the job is cut: 1, 2 and 3 ranks, both
# schedules, several chunk sizes and thread counts all give bitwise identical
# outputs, and the provenance attributes record the run.
. "$(dirname "$0")/lib.sh"

check_case() {
  model=$1 input=$2 tag=$3
  shift 3
  base=$WORK/$tag-base.h5
  if ! run_bs 1 --quiet --model "$model" --input "$input" --output "$base" --threads 1 "$@"; then
    fail "$tag: baseline run failed: $(cat "$WORK/err")"
    return
  fi
  for np in 1 2 3; do
    for sched in dynamic static; do
      for chunk in 7 64 100000; do
        for threads in 1 2; do
          out=$WORK/$tag-$np-$sched-$chunk-$threads.h5
          if ! run_bs "$np" --quiet --model "$model" --input "$input" --output "$out" \
            --schedule "$sched" --chunk-rows "$chunk" --threads "$threads" "$@"; then
            fail "$tag np=$np $sched chunk=$chunk threads=$threads: $(cat "$WORK/err")"
          elif ! res=$("$CMP" --exact "$out" "$base"); then
            fail "$tag np=$np $sched chunk=$chunk threads=$threads: $res"
          elif [ -e "$out.partial" ]; then
            fail "$tag np=$np $sched chunk=$chunk threads=$threads: $out.partial left behind"
          fi
          rm -f "$out"
        done
      done
    done
  done
  ok "$tag: 1-3 ranks x dynamic/static x 3 chunk sizes x 1-2 threads bitwise identical"
}

check_case "$DATA/xgb/bc_logistic.json" "$DATA/xgb/bc_logistic.h5" bc
check_case "$DATA/xgb/digits_softprob.json" "$DATA/xgb/digits_softprob.h5" digits
check_case "$DATA/xgb/digits_softmax.json" "$DATA/xgb/digits_softmax.h5" softmax
check_case "$DATA/xgb/cat_logistic.json" "$DATA/xgb/cat_logistic.h5" cat --output-margin
check_case "$DATA/xgb/bc_logistic.json" "$DATA/tests/tiny.h5" tiny

# Provenance attributes, read back with h5dump.
out=$WORK/prov.h5
if run_bs 3 --quiet --model "$DATA/xgb/bc_logistic.json" \
  --input "$DATA/xgb/bc_logistic.h5" --output "$out:/grp/preds" --schedule static; then
  if command -v h5dump >/dev/null 2>&1; then
    h5dump -A "$out" >"$WORK/attrs" 2>&1
    sha=$(sha256sum "$DATA/xgb/bc_logistic.json" | cut -d' ' -f1)
    for want in "batchscore_version" "$sha" "binary:logistic" "bc_logistic.h5" \
      '"/features"' '"static"' 'DATASET "preds"' 'GROUP "batchscore"' 'chunk_hashes'; do
      grep -qF -- "$want" "$WORK/attrs" || fail "provenance: '$want' not recorded"
    done
    grep -A4 'ATTRIBUTE "ranks"' "$WORK/attrs" | grep -q '(0): 3' ||
      fail "provenance: ranks is not 3"
    grep -A4 'ATTRIBUTE "rows"' "$WORK/attrs" | grep -q '(0): 569' ||
      fail "provenance: rows is not 569"
    ok "provenance attributes recorded"
  else
    echo "note: h5dump not found, provenance not checked"
  fi
else
  fail "provenance run: $(cat "$WORK/err")"
fi

# Live progress: plain lines in a log (stderr is not a terminal here), in
# both schedules; none with --quiet.
line='^batchscore: progress: [0-9]* of 50000 rows ([0-9.]*%), [0-9]* rows/s recent, [0-9]* rows/s overall, ETA [0-9hms]*, [0-3] of 3 ranks on 1 of 1 nodes working$'
for sched in dynamic static; do
  rm -f "$WORK/p.h5"
  if BATCHSCORE_TEST_DELAY=30 run_bs 3 --model "$DATA/example/model.json" \
    --input "$DATA/example/features.h5" --output "$WORK/p.h5" --chunk-rows 500 \
    --progress 0.3 --schedule "$sched" && [ "$(grep -c "$line" "$WORK/err")" -ge 2 ] &&
    [ "$(grep -c '^batchscore: progress:' "$WORK/err")" = "$(grep -c "$line" "$WORK/err")" ]; then
    ok "progress ($sched): $(grep -c "$line" "$WORK/err") lines, e.g. $(grep "$line" "$WORK/err" | tail -1)"
  else
    fail "progress ($sched): $(cat "$WORK/err")"
  fi
done
rm -f "$WORK/p.h5"
if BATCHSCORE_TEST_DELAY=30 run_bs 3 --model "$DATA/example/model.json" \
  --input "$DATA/example/features.h5" --output "$WORK/p.h5" --chunk-rows 500 \
  --progress 0.3 --quiet && ! grep -q progress "$WORK/err"; then
  ok "no progress with --quiet"
else
  fail "--quiet still shows progress: $(cat "$WORK/err")"
fi
finish
