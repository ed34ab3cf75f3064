#!/bin/sh
# The C sources are clang-formatted with the project's .clang-format.
# Skipped (77) where clang-format is not installed.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v clang-format >/dev/null 2>&1 || { echo "SKIP: no clang-format"; exit 77; }
cd "$top_srcdir" || exit 1
bad=0
for f in src/*.c src/*.h kernels/*.c kernels/*.h kernels/*/*.c kernels/*/*.h tests/*.c; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run clang-format -i $f)"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "ok: all C sources formatted"
exit $bad
