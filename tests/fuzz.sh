#!/bin/sh
# The fuzz harnesses (tests/fuzz/README.md): builds them with clang and
# libFuzzer, makes their seeds, and runs each for FUZZ_SECONDS (default
# 30) seconds; any finding fails. Skipped (77) without a clang that links
# libFuzzer, and in the sanitizer build (the harnesses are sanitized
# builds of their own, so running them twice adds nothing).
. "$(dirname "$0")/tools-lib.sh"
out=$top_builddir/fuzz
sh "$top_srcdir/tests/fuzz/build.sh" "$top_srcdir" "$top_builddir" "$out"
rc=$?
[ "$rc" = 77 ] && { echo "SKIP: no clang with libFuzzer"; exit 77; }
[ "$rc" = 0 ] || exit 1
sh "$top_srcdir/tests/fuzz/seeds.sh" "$top_srcdir" "$top_builddir/tests/mkmodel" "$out" ||
  exit 1
sh "$top_srcdir/tests/fuzz/run.sh" "$top_srcdir" "$out" "${FUZZ_SECONDS:-30}"
