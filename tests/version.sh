#!/bin/sh
# batchscore --version: "batchscore VERSION (git COMMIT)" when built from a
# checkout, with ", modified" when tracked files differ from the commit;
# "batchscore VERSION" alone from a release tarball (no .git; make distcheck
# runs this test there).
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
. "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
want="batchscore $version"
if [ -e "$top_srcdir/.git" ] && commit=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null); then
  [ -z "$(git -C "$top_srcdir" status --porcelain --untracked-files=no 2>/dev/null)" ] ||
    commit="$commit, modified"
  want="$want (git $commit)"
fi
run_bs 1 --version || fail "--version exited $?"
got=$(cat "$WORK/out")
[ "$got" = "$want" ] && ok "--version: $got" || fail "--version printed '$got', expected '$want'"
finish
