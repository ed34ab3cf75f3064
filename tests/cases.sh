#!/bin/sh
# Refusals as data: every directory under tests/cases/ is one case (see
# tests/cases/README.md): a command line, the exit status and the message
# it must give. Each runs at 1 and 3 ranks and must exit with that status,
# print exactly one "batchscore:" line (notes aside) containing the message, never hang,
# and leave no output and no partial output behind.
. "$(dirname "$0")/lib.sh"

CASES=$top_srcdir/tests/cases
OUT=$WORK/out.h5
n=0
for dir in "$CASES"/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  [ -f "$dir/args" ] || continue
  n=$((n + 1))
  want_rc=$(cat "$dir/status")
  # $CASE, $DATA and $OUT in args; the line is split as the shell would.
  line=$(sed -e "s|\$CASE|'$dir'|g" -e "s|\$DATA|'$DATA'|g" -e "s|\$OUT|'$OUT'|g" "$dir/args")
  for np in 1 3; do
    rm -rf "$OUT" "$OUT.partial"
    eval "run_bs $np $line"
    rc=$?
    msg=$(grep '^batchscore:' "$WORK/err" | grep -v '^batchscore: note:')
    if [ -f "$dir/message" ]; then
      printf '%s\n' "$msg" | grep -qF -- "$(cat "$dir/message")"
    else
      printf '%s\n' "$msg" | grep -qE -- "$(cat "$dir/message.re")"
    fi
    judge_refusal "$name (np=$np)" "$want_rc" "$rc" $? "$(cat "$dir"/message*)"
  done
done
[ "$n" -gt 0 ] || fail "no cases found under $CASES"
finish
