#!/bin/bash
# The tests' blob-storage mount (tests/pubfs) behaves as Azure ML's
# Blobfuse2 mounts do: writes stay private to the mount until the file is
# closed, fsync publishes nothing, a killed daemon loses every unpublished
# byte, a publish is whole or absent, renames are copy + delete (flat) or
# atomic, and locks are local to one mount. Two mounts over one backing
# folder stand for two nodes. Needs root, /dev/fuse and python3 (which holds
# a file open while the test looks at it).
# Exercises scripts and tools, not batchscore's C code (tests/tools-lib.sh).
. "$(dirname "$0")/tools-lib.sh"
PUBFS=$top_builddir/tests/pubfs
skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "not root"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -x "$PUBFS" ] || skip "tests/pubfs not built (libfuse3 missing at configure time)"
command -v fusermount3 >/dev/null || skip "no fusermount3"
PY=$(command -v python3) || skip "no python3"

WORK=$top_builddir/tests/scratch/pubfs
B=$WORK/backing
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# ok MESSAGE: says MESSAGE when this part of the test had no failure.
mark=0
ok() {
  [ "$failures" = "$mark" ] && echo "ok: $*"
  mark=$failures
}
declare -A daemon

# Unmounts every pubfs mount under $WORK (also a stale one from a killed
# run) and stops the daemons this run started.
cleanup() {
  local m
  for m in $(awk -v w="$WORK/" '$3 == "fuse.pubfs" && index($2, w) == 1 {print $2}' /proc/mounts); do
    fusermount3 -u -z "$m" 2>/dev/null
  done
  for m in "${!daemon[@]}"; do kill -9 "${daemon[$m]}" 2>/dev/null; done
  [ -n "${HOLDER_PID:-}" ] && kill -9 "$HOLDER_PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup
rm -rf "$WORK"
mkdir -p "$B" "$WORK/cache"

# mount_fs NAME [OPTIONS]: a mount of $B at $WORK/NAME, a node of its own.
mount_fs() {
  local m=$WORK/$1 i
  shift
  mkdir -p "$m"
  "$PUBFS" "$B" "$m" -f --cache="$WORK/cache" "$@" 2>>"$WORK/pubfs.log" &
  daemon[$m]=$!
  for i in $(seq 50); do
    grep -q " $m fuse.pubfs " /proc/mounts && return 0
    sleep 0.1
  done
  echo "pubfs did not mount $m: $(cat "$WORK/pubfs.log")"
  return 1
}

# hold MODE FILE DATA: a process opens FILE (MODE new: create or truncate;
# append: keep the contents), writes DATA, fsyncs and keeps it open until
# unhold. No descriptor is closed in between: every close(2) publishes.
HOLD='import os, sys
mode, path, data = sys.argv[1:]
flags = os.O_RDWR | os.O_CREAT | (os.O_TRUNC if mode == "new" else os.O_APPEND)
fd = os.open(path, flags, 0o644)
os.write(fd, data.encode())
os.fsync(fd)
print("ready", flush=True)
sys.stdin.readline()
try:
    os.close(fd)
except OSError as e:
    print(e, flush=True)'
hold() {
  local line=
  coproc HOLDER { "$PY" -c "$HOLD" "$@" 2>&1; }
  read -r -t 10 line <&"${HOLDER[0]}"
  [ "$line" = ready ] || fail "hold $*: $line"
}
unhold() {
  echo >&"${HOLDER[1]}"
  wait "$HOLDER_PID"
  HOLDER_PID=
}

# have FILE DATA: FILE holds exactly DATA.
have() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

mount_fs n1 || skip "cannot mount a FUSE file system here"
mount_fs n2 || exit 1

# A new file: private to its mount until closed, fsync or not.
hold new "$WORK/n1/a" "first"
have "$WORK/n1/a" first || fail "n1 does not read its own open file"
[ "$(stat -c %s "$WORK/n1/a")" = 5 ] || fail "n1: size of the open file is not 5"
ls "$WORK/n1" | grep -qx a || fail "n1: the open new file is not listed"
[ -e "$B/a" ] && fail "written and fsynced, not closed, yet in the backing folder"
[ -e "$WORK/n2/a" ] && fail "another mount sees a file not yet closed"
unhold
have "$B/a" first || fail "closed, but not published whole"
have "$WORK/n2/a" first || fail "another mount does not see the closed file"
ok "a new file is private until closed (fsync publishes nothing), then published"

# Rewriting a published file: the others read the old one until the close.
hold new "$WORK/n1/a" "second"
have "$WORK/n1/a" second || fail "n1 does not read its private copy"
have "$B/a" first || fail "backing changed before the close"
have "$WORK/n2/a" first || fail "n2 reads another node's unclosed write"
unhold
have "$B/a" second && have "$WORK/n2/a" second || fail "rewrite not published at close"
hold append "$WORK/n1/a" "+more"
have "$WORK/n1/a" second+more || fail "an append does not start from the published file"
have "$B/a" second || fail "an append reached the backing folder before the close"
# Any close(2) of a written file publishes it, even when another process
# still has it open: truncate(1) opens and closes it.
truncate -s 3 "$WORK/n1/a"
[ "$(stat -c %s "$WORK/n1/a")" = 3 ] || fail "truncate of an open file: size not 3"
have "$B/a" sec || fail "truncate(1) of an open file: not published at its close"
unhold
truncate -s 2 "$WORK/n2/a"
have "$B/a" se || fail "truncate of a closed file is not published at once"
ok "rewrite and append stay private until a close; truncate publishes"

# Killing the daemon (the node is lost): nothing unpublished survives.
hold new "$WORK/n1/a" "lost"
echo ghost >"$WORK/n1/published"
kill -9 "${daemon[$WORK/n1]}"
wait "${daemon[$WORK/n1]}" 2>/dev/null
unset "daemon[$WORK/n1]"
unhold
have "$B/a" se || fail "daemon killed: the unclosed rewrite reached the backing folder"
have "$B/published" ghost || fail "a file closed before the kill is lost"
stat "$WORK/n1" >/dev/null 2>&1 && fail "the killed mount still answers"
[ -z "$(ls -A "$WORK/cache")" ] || fail "private copies left in the cache after the kill"
fusermount3 -u -z "$WORK/n1"
mount_fs n1 || exit 1
have "$WORK/n1/a" se || fail "remounted: does not read the published file"
ok "a killed daemon loses every unpublished byte and keeps what was closed"

# A publish cut short leaves a temporary in the backing folder, as a blob
# store keeps an uncommitted upload: invisible, and it keeps no folder
# alive. A running daemon's temporary does.
mkdir "$WORK/n1/d" || fail "mkdir through the mount failed"
: >"$B/d/.pubfs.$$.1"
rmdir "$WORK/n1/d" 2>/dev/null && fail "a folder went away under a publish in progress"
mv "$B/d/.pubfs.$$.1" "$B/d/.pubfs.999999999.1"
[ -z "$(ls -A "$WORK/n1/d")" ] || fail "a dead publish's temporary is listed"
rmdir "$WORK/n1/d" || fail "a dead publish's temporary keeps its folder"
[ -e "$B/d" ] && fail "the folder is still in the backing folder"
ok "a publish cut short keeps no folder alive; one in progress does"

# A publish is whole or absent: a reader of the backing folder polls the
# file's size while 16 MiB are written and closed through a mount.
# Another process polls the size of the file in the backing folder while it
# is written (64 MiB) and closed through a mount.
POLL='import os, sys
path, stop = sys.argv[1:]
seen, looks = set(), 0
open(stop + ".ready", "w").close()
while not os.path.exists(stop):
    try:
        seen.add(os.stat(path).st_size)
    except FileNotFoundError:
        seen.add(-1)
    looks += 1
print(looks, *sorted(seen))'
head -c 67108864 /dev/urandom >"$WORK/big"
"$PY" -c "$POLL" "$B/big" "$WORK/stop" >"$WORK/sizes" &
poll_pid=$!
for _ in $(seq 100); do [ -e "$WORK/stop.ready" ] && break; sleep 0.05; done
cp "$WORK/big" "$WORK/n1/big" || fail "copy into the mount failed"
touch "$WORK/stop"
wait "$poll_pid"
read -r looks sizes <"$WORK/sizes"
[ "$sizes" = "-1 67108864" ] || [ "$sizes" = "-1" ] ||
  fail "a reader of the backing folder saw sizes $(echo "$sizes" | cut -d' ' -f1-5)..."
cmp -s "$WORK/big" "$B/big" || fail "the big file was not published intact"
rm -f "$WORK/big" "$WORK/n1/big"
ok "a publish is whole or absent ($looks looks at its size saw: $sizes; -1 is absent)"

# Rename, flat namespace (default): copy, then delete. With a delay between
# the two, the backing folder shows both names for a while.
fusermount3 -u -z "$WORK/n1"
kill "${daemon[$WORK/n1]}" 2>/dev/null
mount_fs n1 --rename-delay=1000 || exit 1
mkdir "$WORK/n1/d" && echo one >"$WORK/n1/d/f1" && echo two >"$WORK/n1/d/f2"
ino=$(stat -c %i "$B/a")
mv "$WORK/n1/a" "$WORK/n1/b" &
mv_pid=$!
for _ in $(seq 50); do [ -e "$B/b" ] && break; sleep 0.02; done
[ -e "$B/a" ] && [ -e "$B/b" ] || fail "flat rename: both names not seen during the copy"
wait "$mv_pid"
[ ! -e "$B/a" ] && have "$B/b" se || fail "flat rename: did not end with only the new name"
[ "$(stat -c %i "$B/b")" != "$ino" ] || fail "flat rename kept the inode: not a copy"
mv "$WORK/n1/d" "$WORK/n1/e" &
mv_pid=$!
for _ in $(seq 50); do [ -e "$B/e/f2" ] && break; sleep 0.02; done
[ -e "$B/d/f1" ] && [ -e "$B/e/f1" ] || fail "flat folder rename: both folders not seen"
wait "$mv_pid"
[ ! -e "$B/d" ] && have "$B/e/f1" one && have "$B/e/f2" two || fail "flat folder rename"
ok "flat rename is copy + delete: both names visible in between"

# Rename, hierarchical namespace: atomic.
mount_fs n3 --rename=atomic || exit 1
ino=$(stat -c %i "$B/b")
mv "$WORK/n3/b" "$WORK/n3/c" || fail "atomic rename failed"
[ ! -e "$B/b" ] && [ "$(stat -c %i "$B/c")" = "$ino" ] || fail "atomic rename is not a rename"
hold new "$WORK/n3/open" "moving"
mv "$WORK/n3/open" "$WORK/n3/moved"
[ -e "$B/open" ] || [ -e "$B/moved" ] && fail "renaming an unclosed file published it"
unhold
have "$B/moved" moving && [ ! -e "$B/open" ] || fail "an open file renamed is published under its new name"
ok "atomic rename keeps the file; an open file follows its rename"

# unlink, mkdir, rmdir, chmod and utimens (no-ops), and listings.
mkdir "$WORK/n2/sub" && [ -d "$B/sub" ] || fail "mkdir"
rmdir "$WORK/n2/sub" && [ ! -e "$B/sub" ] || fail "rmdir"
rm "$WORK/n2/c" && [ ! -e "$B/c" ] || fail "unlink"
chmod 600 "$WORK/n2/moved" && touch -d 2001-01-01 "$WORK/n2/moved" || fail "chmod/touch fail"
hold new "$WORK/n2/private" "p"
ls "$WORK/n2" | grep -qx private || fail "a private new file is not listed"
ls "$WORK/n1" | grep -qx private && fail "another node lists a private file"
ls -a "$WORK/n2" "$B" | grep -q '^\.pubfs\.' && fail "temporary names are visible"
rm "$WORK/n2/private"
unhold
[ -e "$B/private" ] && fail "an unlinked open file was published at close"
ok "unlink, mkdir, rmdir, chmod/utimens, listings"

# Locks are the kernel's, per mount: another node does not see them.
flock "$WORK/n1/moved" sleep 5 &
lock_pid=$!
for _ in $(seq 50); do flock -n "$WORK/n1/moved" true || break; sleep 0.05; done
flock -n "$WORK/n1/moved" true && fail "flock: same mount does not conflict"
flock -n "$WORK/n2/moved" true || fail "flock: another mount shares the lock"
kill "$lock_pid"
wait "$lock_pid" 2>/dev/null
ok "flock is local to a mount"

[ -z "$(ls -A "$B" | grep '^\.pubfs\.')" ] || fail "temporary files left in the backing folder"
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
exit 0
