# Shared helpers of the shell tests: where things are, how to launch MPI,
# and assertions that print what went wrong. Sourced, not run.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
BS=$top_builddir/batchscore
CMP=$top_builddir/tests/bscompare
DATA=$top_srcdir/data
MPIRUN=${MPIRUN:-$(command -v mpirun || true)}
# Open MPI refuses root unless told; tests run oversubscribed on small boxes.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

if [ -z "$MPIRUN" ]; then
  echo "SKIP: no mpirun" >&2
  exit 77
fi

name=$(basename "$0" .sh)
WORK=$top_builddir/tests/scratch/$name
rm -rf "$WORK"
mkdir -p "$WORK"
failures=0

# run_bs NP ARGS...: batchscore on NP ranks, stdout/stderr to $WORK/out, err.
# A hung job is a failure, not a stuck CI.
run_bs() {
  local np=$1
  shift
  timeout 120 "$MPIRUN" --oversubscribe -np "$np" "$BS" "$@" >"$WORK/out" 2>"$WORK/err"
}

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

ok() { echo "ok: $*"; }

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
  fi
  exit 0
}
