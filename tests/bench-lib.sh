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
export PYTHONDONTWRITEBYTECODE=1
cd "$top_srcdir/tests/bench" || exit 1
# The first python3 with pytest ($PYTHON, Debian's, the one on PATH).
for py in ${PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -m pytest --version >/dev/null 2>&1; then
    exec "$py" -m pytest -q -p no:cacheprovider .
  fi
done
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no $PY"; exit 77; }
echo "note: no python3 here has pytest (apt-get install python3-pytest): the tests run" \
  "through the plain runner"
exec "$PY" test_benchlib.py
