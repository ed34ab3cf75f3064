#!/bin/sh
# Scale emulation (scripts/bench-emulation): 16 and 64 ranks whose chunks
# each cost a fixed delay on a near-free model. It prints the efficiency
# (ideal time / time from the start of the work to the committed output)
# and checks every output bitwise against a 1-rank run. No timing is
# asserted: this machine's load is not the program's; BENCHMARKS.md records
# measured tables.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: no python3" >&2; exit 77; }
if python3 "$top_srcdir/scripts/bench-emulation" --build "$top_builddir" --ranks 16,64 \
  --delay-ms 50 --chunks-per-rank 8 --repeat 1 --check --work "$WORK" >"$WORK/table" 2>&1; then
  cat "$WORK/table"
  ok "16 and 64 emulated ranks: outputs bitwise equal to 1 rank"
else
  cat "$WORK/table"
  fail "scale emulation"
fi
finish
