# Shared by the thinp-fuse tests; source it first.
#
# Skips (77) unless the machine can mount FUSE and attach loop devices as
# root. Gives each script a scratch directory $T, the programs ($THINP,
# $THINP_FUSE, run without libtool's wrappers) and helpers that mount and
# unmount the pool and clean up whatever is left on exit: file systems,
# loop devices, the FUSE mount, the daemon.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (FUSE mounts, loop devices)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
for p in fusermount3 losetup mountpoint python3; do
	command -v $p >/dev/null || skip "$p not found"
done

build=${THINP_BUILDDIR:-$PWD}
# Libtool's wrapper scripts would stand between us and the daemon's pid.
export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
THINP=$build/tools/.libs/thinp
[ -x "$THINP" ] || THINP=$build/tools/thinp
THINP_FUSE=$build/frontends/fuse/.libs/thinp-fuse
[ -x "$THINP_FUSE" ] || THINP_FUSE=$build/frontends/fuse/thinp-fuse
[ -x "$THINP_FUSE" ] || { echo "FAIL: thinp-fuse not built at $THINP_FUSE"; exit 1; }

for t in THIN_CHECK:thin_check; do
	var=${t%%:*} name=${t#*:}
	[ -n "${!var:-}" ] || printf -v "$var" '%s' "$(command -v "$name" 2>/dev/null)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/thinp-fuse-test.XXXXXX")
MNT=$T/mnt
mkdir -p "$MNT"
FUSE_PID=
LOOPS=
FSMOUNTS=

cleanup() {
	for m in $FSMOUNTS; do
		fsfreeze -u "$m" 2>/dev/null
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done
	if mountpoint -q "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -n "$FUSE_PID" ] && kill -9 "$FUSE_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	[ -s "$T/fuse.log" ] && sed 's/^/  daemon: /' "$T/fuse.log"
	exit 1
}

step() { echo "== $*"; }

# new_pool DATA_BLOCKS: a fresh pool of 64 KiB blocks in $T/meta, $T/data.
new_pool() {
	truncate -s 64M "$T/meta" && truncate -s $(($1 * 65536)) "$T/data" &&
		"$THINP" format -m "$T/meta" --block-size 64k --data-blocks "$1" >/dev/null ||
		fail "thinp format"
}

# fuse_mount [OPTIONS...]: thinp-fuse in the foreground, in the background;
# waits until the mount is there.
fuse_mount() {
	"$THINP_FUSE" -m "$T/meta" -d "$T/data" -f "$@" "$MNT" >>"$T/fuse.log" 2>&1 &
	FUSE_PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$FUSE_PID" 2>/dev/null || fail "thinp-fuse exited at start"
		sleep 0.1
	done
	fail "thinp-fuse did not mount in 10 s"
}

# fuse_umount: unmount and check that the daemon exits 0.
fuse_umount() {
	fusermount3 -u "$MNT" || fail "fusermount3 -u"
	wait "$FUSE_PID" || fail "thinp-fuse exited with $?"
	FUSE_PID=
}

# loop_attach FILE [losetup options]: prints the device, remembered for cleanup.
loop_attach() {
	local dev
	dev=$(losetup -f --show "$@") || fail "losetup $*"
	LOOPS="$LOOPS $dev"
	echo "$dev"
}

loop_detach() {
	losetup -d "$1" || fail "losetup -d $1"
	LOOPS=$(echo "$LOOPS" | sed "s|$1||")
}

# mapped BYTES of a volume file: what st_blocks says.
mapped() { echo $(($(stat -c %b "$1") * 512)); }

# data_bytes FILE: bytes in SEEK_DATA..SEEK_HOLE extents.
data_bytes() {
	python3 - "$1" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
off = total = 0
while off < size:
    try:
        d = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    h = os.lseek(fd, d, os.SEEK_HOLE)
    total += h - d
    off = h
print(total)
EOF
}

# pool_checks: thinp check and thin_check on the unmounted pool.
pool_checks() {
	"$THINP" check -m "$T/meta" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "thinp check"; }
	if [ -n "${THIN_CHECK:-}" ]; then
		"$THIN_CHECK" "$T/meta" >"$T/thin_check.out" 2>&1 ||
			{ cat "$T/thin_check.out"; fail "thin_check"; }
	fi
}
