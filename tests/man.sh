#!/bin/sh
# Every installed command has a man page, and man -l renders each one: the
# sections a page needs, a name line that says what the command does and
# that whatis/apropos can read, no complaint from groff (notes on line
# breaks at this width aside). Skipped (77) without man, or where no pages
# were made (no help2man).
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
command -v man >/dev/null 2>&1 || { echo "SKIP: no man (apt-get install man-db)"; exit 77; }
[ -n "${BS_MAN_PAGES:-}" ] || { echo "SKIP: no man pages made (configure found no help2man)"; exit 77; }
WORK=$top_builddir/tests/scratch/man
rm -rf "$WORK"
mkdir -p "$WORK"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

pages=" $BS_MAN_PAGES $BS_MAN_WRITTEN "
for c in $BS_COMMANDS; do
  c=${c##*/}
  case $pages in *" man/$c.1 "*) ;; *) fail "$c has no man page (Makefile.am)" ;; esac
done
for p in $pages; do
  # Where make install takes it from: the build tree, else the source tree.
  f=$top_builddir/$p
  [ -f "$f" ] || f=$top_srcdir/$p
  name=$(basename "$p" .1)
  before=$failures
  if ! MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings -l "$f" >"$WORK/$name.txt" 2>"$WORK/$name.err"; then
    fail "man -l $p: $(head -3 "$WORK/$name.err")"
    continue
  fi
  complaints=$(grep -v -e 'cannot adjust line' -e "can't break line" "$WORK/$name.err")
  [ -z "$complaints" ] || fail "man -l $p: $complaints"
  for section in NAME SYNOPSIS DESCRIPTION; do
    grep -q "^$section" "$WORK/$name.txt" || fail "$p renders without a $section section"
  done
  grep -q "^ *$name  *- " "$WORK/$name.txt" && ! grep -q "^ *$name  *-  *manual page for" "$WORK/$name.txt" ||
    fail "$p: NAME is not '$name - what it does'"
  if command -v lexgrog >/dev/null 2>&1; then
    lexgrog "$f" >"$WORK/$name.whatis" 2>&1 && grep -q "\"$name - " "$WORK/$name.whatis" ||
      fail "$p: whatis cannot read its NAME: $(cat "$WORK/$name.whatis")"
  fi
  [ "$failures" = "$before" ] && echo "ok: $p renders ($(wc -l <"$WORK/$name.txt") lines)"
done
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
exit 0
