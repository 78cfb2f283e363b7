#!/bin/bash
# kill -9 of thinp-fuse loses nothing that an fsync covered: a writer puts
# 1 MiB chunks into a volume file, each followed by fsync, and logs a chunk
# only once its fsync returned; the daemon is killed while it writes. After
# unmounting the dead mount, the pool must be clean and, remounted, every
# logged chunk must read back. Then a file system: ext4 on a loop device,
# a file written and fsynced, the daemon killed with the loop device still
# attached; the file must be there after remounting.
. "$(dirname "$0")/common.sh"
for p in mkfs.ext4 e2fsck; do
	command -v $p >/dev/null || skip "$p not found"
done

SEED=${THINP_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "seed $SEED (replay with THINP_TEST_SEED=$SEED)"
RANDOM=$SEED

# kill_daemon [WRITER]: kill -9, wait for WRITER (a pid) if given, then get
# rid of the dead mount. The writer must be gone before the mount is: while
# the dead mount is there its next open fails (ENOTCONN), but once it is
# unmounted "$MNT/0" would be a new file in the directory underneath, whose
# fsyncs succeed (a writer descheduled between two chunks under load went on
# to log all 128 chunks that way, none of them in the pool).
kill_daemon() {
	kill -9 "$FUSE_PID"
	wait "$FUSE_PID" 2>/dev/null
	FUSE_PID=
	[ $# -eq 0 ] || wait "$1"
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" || fail "cannot unmount the dead mount"
	[ -z "$(ls -A "$MNT")" ] || fail "something was written under the mount point after the kill"
}

step "fsynced chunks survive kill -9"
new_pool 4096
"$THINP" create -m "$T/meta" -d "$T/data" --size 128M 0 || fail "thinp create"
head -c 128M /dev/urandom >"$T/src"
fuse_mount
: >"$T/done"
(
	for i in $(seq 0 127); do
		# Chunks in a shuffled order, so that the survivors are not one run.
		c=$(( (i * 37 + SEED) % 128 ))
		dd if="$T/src" of="$MNT/0" bs=1M count=1 skip=$c seek=$c \
			conv=notrunc,fsync status=none 2>/dev/null || exit 0
		echo $c >>"$T/done"
	done
) &
writer=$!
want=$(( 4 + RANDOM % 40 ))
for _ in $(seq 600); do
	[ "$(wc -l <"$T/done")" -ge $want ] && break
	sleep 0.05
done
kill_daemon $writer
n=$(wc -l <"$T/done")
echo "killed after $n fsynced chunks"
[ "$n" -ge 4 ] || fail "the writer did not get going"
pool_checks
fuse_mount
while read -r c; do
	cmp -s -i $((c << 20)):$((c << 20)) -n 1048576 "$T/src" "$MNT/0" ||
		fail "chunk $c was fsynced but did not survive"
done <"$T/done"
fuse_umount
pool_checks

step "an fsynced file on ext4 survives kill -9 with the loop device attached"
fuse_mount
dev=$(loop_attach "$MNT/0")
mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4"
mkdir -p "$T/fs"
mount "$dev" "$T/fs" || fail "mount"
FSMOUNTS="$T/fs"
dd if="$T/src" of="$T/fs/file" bs=1M count=16 conv=fsync status=none || fail "write the file"
sync -f "$T/fs"
kill_daemon
# The file system's device is gone: I/O errors, not a hang.
umount -l "$T/fs" 2>/dev/null
FSMOUNTS=
loop_detach "$dev"
pool_checks
fuse_mount
e2fsck -fy "$MNT/0" >"$T/fsck" 2>&1
[ $? -le 1 ] || { cat "$T/fsck"; fail "e2fsck cannot repair the volume"; }
dev=$(loop_attach -r "$MNT/0")
mount -o ro,noload "$dev" "$T/fs" || fail "mount after the crash"
FSMOUNTS="$T/fs"
cmp -s -n 16777216 "$T/src" "$T/fs/file" || fail "the fsynced file did not survive"
umount "$T/fs"
FSMOUNTS=
loop_detach "$dev"
fuse_umount
pool_checks
echo "PASS"
