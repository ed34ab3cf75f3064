#!/bin/sh
# scripts/batchscore-mpirun's exit statuses, against a stand-in mpirun that
# prints what Open MPI prints and exits as it does: 75 (retry with
# --resume) exactly when the job was interrupted or a node went away, also
# when the ranks left then failed or crashed because of it; batchscore's
# own statuses otherwise; a crash alone is 70; mpirun's own failures keep
# their status. A failing MPI call ends the job with 75, named. Also: the
# Open MPI parameters reach mpirun.
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
. "$(dirname "$0")/lib.sh"
LAUNCH=$top_srcdir/scripts/batchscore-mpirun
FAKE=$WORK/mpirun
cat >"$FAKE" <<'SH'
#!/bin/sh
# Prints FAKE_SAYS on stderr and its arguments to FAKE_ARGS, exits FAKE_RC.
printf '%s\n' "$@" >"$FAKE_ARGS"
[ -n "$FAKE_SAYS" ] && printf '%s\n' "$FAKE_SAYS" >&2
exit "$FAKE_RC"
SH
chmod +x "$FAKE"
export FAKE_ARGS=$WORK/args

# expect RC SAYS WANT: mpirun exiting RC after printing SAYS gives WANT.
expect() {
  FAKE_RC=$1 FAKE_SAYS=$2 MPIRUN=$FAKE "$LAUNCH" -np 2 batchscore --version \
    >/dev/null 2>"$WORK/err"
  rc=$?
  if [ "$rc" = "$3" ]; then
    ok "mpirun $1 ('${2:-nothing}'): $rc"
  else
    fail "mpirun $1 ('${2:-nothing}'): $rc, not $3: $(cat "$WORK/err")"
  fi
}
killed='mpirun noticed that process rank 3 with PID 0 on node h3 exited on signal 9 (Killed).'
segv='mpirun noticed that process rank 1 with PID 0 on node h1 exited on signal 11 (Segmentation fault).'
daemon='ORTE has lost communication with a remote daemon.'
reset='[h0:01234] mca_btl_tcp_frag_recv: readv failed: Connection reset by peer (104)'
expect 0 "" 0
expect 2 "" 2
expect 1 "" 1
expect 70 "" 70
expect 75 "" 75
expect 1 "$killed" 75      # the others failed after a node was lost
expect 70 "$daemon" 75     # ... or crashed in the MPI library
expect 70 "$reset" 75
expect 137 "" 75           # 128 + SIGKILL, nothing said
expect 9 "$killed" 75
expect 205 "$daemon" 75
expect 139 "$segv" 70      # a crash alone: a bug, not retried
expect 213 "" 213          # mpirun's own failure (a bad hostfile)

# A failing MPI call in batchscore (tests/mpierr: a negative count) ends
# the job with 75 and names the call and where it is made.
"$LAUNCH" --oversubscribe -np 2 "$top_builddir/tests/mpierr" >"$WORK/out" 2>"$WORK/err"
rc=$?
if [ "$rc" = 75 ] && grep -q "tests/mpierr.c:[0-9]*: MPI_Bcast failed" "$WORK/err"; then
  ok "a failed MPI call: 75, '$(grep -o 'tests/mpierr.c:[0-9]*: MPI_Bcast failed' "$WORK/err" | head -n 1)'"
else
  fail "a failed MPI call: exit $rc: $(cat "$WORK/out" "$WORK/err")"
fi

FAKE_RC=0 FAKE_SAYS= MPIRUN=$FAKE "$LAUNCH" -np 2 batchscore >/dev/null 2>&1
if grep -qx oob_tcp_keepalive_time "$FAKE_ARGS"; then
  ok "the Open MPI parameters of mpi-params reach mpirun"
else
  fail "mpirun got no keepalive parameter: $(tr '\n' ' ' <"$FAKE_ARGS")"
fi
FAKE_RC=0 FAKE_SAYS= MPIRUN=$FAKE "$LAUNCH" --mca oob_tcp_keepalive_time 9 -np 2 batchscore \
  >/dev/null 2>&1
if [ "$(grep -cx oob_tcp_keepalive_time "$FAKE_ARGS")" = 1 ]; then
  ok "a parameter the caller gave is not given twice"
else
  fail "oob_tcp_keepalive_time given twice: $(tr '\n' ' ' <"$FAKE_ARGS")"
fi
finish
