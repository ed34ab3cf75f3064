#!/bin/bash
# make install into a scratch DESTDIR: every command a user runs, a man page
# for each, the README as documentation, batchscore-submit's package. Then
# the installed commands run from there, each finding its own files in the
# install and not in the source tree: the launcher its mpi-params, and
# batchscore-submit its package (which reads mpi-params next to itself).
# make uninstall leaves no file behind.
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
. "$(dirname "$0")/lib.sh"

D=$WORK/dest
unset MAKEFLAGS MFLAGS MAKELEVEL # a make of its own, not a part of make check's
if ! ${MAKE:-make} -C "$top_builddir" install DESTDIR="$D" >"$WORK/install.log" 2>&1; then
  tail -20 "$WORK/install.log"
  fail "make install DESTDIR=... failed"
  finish
fi
bin=$(find "$D" -path '*/bin/batchscore' -type f)
bin=${bin%/batchscore}
pkgdata=$(find "$D" -path '*/batchscore/mpi-params' -type f)
pkgdata=${pkgdata%/mpi-params}
man1=$(find "$D" -type d -name man1)
[ -n "$bin" ] && [ -n "$pkgdata" ] && [ -n "$man1" ] ||
  { fail "no bin/batchscore, batchscore/mpi-params or man1 under the DESTDIR"; finish; }

# Every command, and a man page for each where pages are made (help2man,
# or the ones a release tarball ships); nothing else in bin.
for c in $BS_COMMANDS; do
  c=${c##*/}
  [ -x "$bin/$c" ] && ok "installed: $c" || fail "$c is not installed in bin"
  if [ -n "$BS_MAN_PAGES" ] || [ "$c" = batchscore-mpirun ]; then
    [ -f "$man1/$c.1" ] && ok "man page: $c.1" || fail "no man page $c.1 installed"
  fi
done
[ -n "$BS_MAN_PAGES" ] || echo "note: no man pages made (configure found no help2man)"
[ "$(ls "$bin" | wc -l)" = "$(echo $BS_COMMANDS | wc -w)" ] || fail "bin holds more than the commands: $(ls "$bin")"
find "$D" -path '*/doc/batchscore/README.md' -type f | grep -q . && ok "README installed as documentation" ||
  fail "README.md is not installed in docdir"
for f in "$top_srcdir"/scripts/batchscore_submit/*.py; do
  [ -f "$pkgdata/batchscore_submit/${f##*/}" ] || fail "batchscore_submit/${f##*/} not installed (Makefile.am: dist_submit_DATA)"
done

"$bin/batchscore" --version >"$WORK/version" 2>&1 && grep -q '^batchscore [0-9]' "$WORK/version" &&
  ok "installed batchscore --version: $(cat "$WORK/version")" || fail "installed batchscore --version: $(cat "$WORK/version")"

# A marker in the installed mpi-params shows who read it.
echo "bs_install_marker 1" >>"$pkgdata/mpi-params"
MPIRUN=true BATCHSCORE_MPIRUN_SHOW=1 "$bin/batchscore-mpirun" -np 1 batchscore 2>"$WORK/launcher" &&
  grep -q -- '--mca bs_install_marker 1' "$WORK/launcher" && ! grep -q warning "$WORK/launcher" &&
  ok "installed batchscore-mpirun reads the installed mpi-params" ||
  fail "installed batchscore-mpirun did not read the installed mpi-params: $(cat "$WORK/launcher")"

# batchscore-submit from the install: its interpreter needs PyYAML.
PY=
for cand in /usr/bin/python3 python3; do
  if command -v "$cand" >/dev/null 2>&1 &&
    "$cand" -c 'import sys, yaml; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
    PY=$cand
    break
  fi
done
if [ -z "$PY" ]; then
  echo "note: no python3 (3.8 or newer) with PyYAML: installed batchscore-submit not run"
else
  mkdir -p "$WORK/run" "$WORK/azure"
  : >"$WORK/run/model.json"
  : >"$WORK/run/features.h5"
  submit() {
    (cd "$WORK/run" && env -u PYTHONPATH AZURE_CONFIG_DIR="$WORK/azure" PATH="$WORK/nobin:$PATH" \
      "$PY" "$bin/batchscore-submit" -g rg -w ws --cluster bs-cpu --model model.json \
      --input features.h5 --run-name t1 --dry-run "$@" >"$WORK/submit.out" 2>"$WORK/submit.err")
  }
  submit --image registry.example/batchscore:1
  rc=$?
  [ $rc = 0 ] && grep -q 'OMPI_MCA_bs_install_marker' "$WORK/submit.out" &&
    ok "installed batchscore-submit imports its installed package (job environment from the installed mpi-params)" ||
    fail "installed batchscore-submit --dry-run --image: exit $rc: $(head -5 "$WORK/submit.err")"
  submit
  rc=$?
  [ $rc = 2 ] && grep -q 'no batchscore source next to this installed batchscore-submit' "$WORK/submit.err" &&
    ok "installed batchscore-submit asks for --source, --image or --environment" ||
    fail "installed batchscore-submit without a source: exit $rc: $(head -5 "$WORK/submit.err")"
  submit --source "$top_srcdir"
  rc=$?
  [ $rc = 0 ] && grep -q 'Dockerfile' "$WORK/submit.out" &&
    ok "installed batchscore-submit builds the image from --source" ||
    fail "installed batchscore-submit --source: exit $rc: $(head -5 "$WORK/submit.err")"
fi
if command -v python3 >/dev/null 2>&1; then
  python3 "$bin/export-sklearn" --help >"$WORK/export.out" 2>&1 && grep -qi '^usage: export-sklearn' "$WORK/export.out" &&
    ok "installed export-sklearn --help" || fail "installed export-sklearn --help: $(head -3 "$WORK/export.out")"
fi
[ -z "$(find "$D" -name __pycache__)" ] || fail "running the installed commands wrote byte code into the install"

if ${MAKE:-make} -C "$top_builddir" uninstall DESTDIR="$D" >"$WORK/uninstall.log" 2>&1; then
  left=$(find "$D" -type f | head -5)
  [ -z "$left" ] && ok "make uninstall leaves no file" || fail "make uninstall left: $left"
else
  fail "make uninstall DESTDIR=... failed: $(tail -5 "$WORK/uninstall.log")"
fi
[ "$failures" = 0 ] && rm -rf "$D"
finish
