# The preamble of the shell tests that exercise scripts and tools rather
# than batchscore's C code: the sanitizer build has nothing to add (the
# normal build runs them), so they skip there. Then where the trees are.
# Sourced, not run; tests/lib.sh may follow.
if [ "${BS_SANITIZED:-no}" = yes ]; then
  echo "SKIP: run in the normal build (this is the ASan/UBSan build)"
  exit 77
fi
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
