#!/bin/sh
# The pure parts of the benchmarks' shared module, scripts/benchlib.py
# (tests/bench/test_benchlib.py): under pytest where the python3 running it
# has it, else every test through the file's own plain runner, so the
# checks run either way. Exercises scripts, not batchscore's C code: the
# sanitizer build has nothing to add, and the normal build runs it.
if [ "${BS_SANITIZED:-no}" = yes ]; then
  echo "SKIP: run in the normal build (this is the ASan/UBSan build)"
  exit 77
fi
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no $PY"; exit 77; }
export PYTHONDONTWRITEBYTECODE=1
cd "$top_srcdir/tests/bench" || exit 1
if "$PY" -m pytest --version >/dev/null 2>&1; then
  exec "$PY" -m pytest -q -p no:cacheprovider .
fi
echo "note: pytest is not installed for $PY: the tests run through the plain runner"
exec "$PY" test_benchlib.py
