#!/bin/sh
# The pure parts of the benchmarks' shared module, scripts/benchlib.py
# (tests/bench/test_benchlib.py): under pytest where the python3 running it
# has it, else every test through the file's own plain runner, so the
# checks run either way. Then the type check, mypy --strict, of benchlib,
# bench_child, fixture_venv and every scripts/bench-* (skipped, 77, where
# no python3 has mypy). Exercises scripts, not batchscore's C code: the
# sanitizer build has nothing to add, and the normal build runs it.
if [ "${BS_SANITIZED:-no}" = yes ]; then
  echo "SKIP: run in the normal build (this is the ASan/UBSan build)"
  exit 77
fi
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
export PYTHONDONTWRITEBYTECODE=1
cd "$top_srcdir/tests/bench" || exit 1
# The first python3 with pytest ($PYTHON, Debian's, the one on PATH).
ran=no
for py in ${PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -m pytest --version >/dev/null 2>&1; then
    "$py" -m pytest -q -p no:cacheprovider . || exit 1
    ran=yes
    break
  fi
done
if [ $ran = no ]; then
  PY=${PYTHON:-python3}
  command -v "$PY" >/dev/null 2>&1 || { echo "SKIP: no $PY"; exit 77; }
  echo "note: no python3 here has pytest (apt-get install python3-pytest): the tests run" \
    "through the plain runner"
  "$PY" test_benchlib.py || exit 1
fi

# The type check. Each bench script is a program (__main__), so one mypy
# run each, with the modules it imports. Third-party packages count as
# untyped (--follow-imports=skip, --ignore-missing-imports): the verdict is
# the same whichever of numpy, h5py, xgboost ... are installed.
for py in ${PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -m mypy --version >/dev/null 2>&1; then
    MYPY="$py -m mypy"
    break
  fi
done
[ -n "${MYPY:-}" ] || { echo "SKIP: the tests passed, but no python3 here has mypy" \
  "(pip install mypy) for the type check"; exit 77; }
cd "$top_srcdir/scripts" || exit 1
status=0
for script in bench-*; do
  MYPYPATH=. $MYPY --strict --ignore-missing-imports --follow-imports=skip \
    --cache-dir=/dev/null --no-error-summary benchlib.py bench_child.py fixture_venv.py \
    "$script" || status=1
done
[ $status = 0 ] && echo "mypy --strict: benchlib, bench_child, fixture_venv and" \
  "$(ls bench-* | wc -l) bench scripts clean"
exit $status
