#!/bin/bash
# A real file system on a thin device: nbdfuse exposes export 1 as a file,
# losetup makes it a block device, mkfs.ext4, mount, files; a snapshot taken
# through the control socket after fsfreeze, mounted read-only and compared;
# fstrim of deleted files unmaps pool blocks; umount, e2fsck clean on both
# devices, and the pool clean after the server stops. Needs root, FUSE and
# loop devices (this machine has no nbd module, hence nbdfuse + loop).
. "$(dirname "$0")/common.sh"
requires nbdfuse fusermount3 losetup mkfs.ext4 e2fsck fsfreeze fstrim mountpoint
[ "$(id -u)" = 0 ] || skip "needs root (losetup, mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
[ -c /dev/loop-control ] || skip "no loop devices (/dev/loop-control)"

new_pool 65536 2048
thinp create -m "$M" -d "$D" --size 96M 1 || fail "create 1"
SOCK=$T/sock CTL=$T/ctl
mkdir -p "$T/fuse" "$T/fs"
loop= fuse_pid= srv_pid=

undo() {
	mountpoint -q "$T/fs" && umount "$T/fs"
	[ -n "$loop" ] && losetup -d "$loop"
	loop=
	if mountpoint -q "$T/fuse"; then fusermount3 -u "$T/fuse" || umount -l "$T/fuse"; fi
	[ -n "$fuse_pid" ] && wait "$fuse_pid"
	fuse_pid=
	return 0
}
stop_server() {
	[ -n "$srv_pid" ] || return 0
	kill "$srv_pid"
	wait "$srv_pid"
	srv_pid=
}
cleanup_fns+=(undo stop_server)

# attach EXPORT [-r]: $loop = a loop device on nbdfuse's file of EXPORT.
attach() {
	local ro=${2:-}
	rm -f "$T/fpid"
	nbdfuse $ro -P "$T/fpid" "$T/fuse/disk" "nbd+unix:///$1?socket=$SOCK" &
	fuse_pid=$!
	for i in $(seq 100); do [ -s "$T/fpid" ] && break; sleep 0.1; done
	[ -s "$T/fpid" ] || fail "nbdfuse did not start"
	loop=$(losetup -f --show ${ro:+-r} "$T/fuse/disk") || fail "losetup"
}

nbdkit -f -P "$T/pid" -U "$SOCK" "$PLUGIN" meta="$M" data="$D" control="$CTL" &
srv_pid=$!
wait_served "$SOCK"

step "mkfs.ext4 and files on device 1"
attach 1
mkfs.ext4 -q -F "$loop" || fail "mkfs.ext4"
mount "$loop" "$T/fs" || fail "mount"
head -c 12M /dev/urandom >"$T/fs/a"
cp "$T/fs/a" "$T/fs/b"
mkdir "$T/fs/dir" && seq 100000 >"$T/fs/dir/c"
sync
(cd "$T/fs" && sha256sum a b dir/c) >"$T/sums"

step "fsfreeze, snapshot through the control socket, thaw, diverge"
fsfreeze -f "$T/fs" || fail "fsfreeze"
"$THINP" control "$CTL" create_snap 2 1 >"$T/ctl.out"; rc=$?
fsfreeze -u "$T/fs"
[ $rc = 0 ] || fail "create_snap: $(cat "$T/ctl.out")"
head -c 8M /dev/urandom >"$T/fs/new"
echo changed >"$T/fs/dir/c"
sync
before=$("$THINP" control "$CTL" status | awk '{ print $3 }')
rm "$T/fs/b" "$T/fs/new"
sync
fstrim "$T/fs" || fail "fstrim"
"$THINP" control "$CTL" commit >/dev/null || fail "commit"
after=$("$THINP" control "$CTL" status | awk '{ print $3 }')
echo "data blocks used: before trim $before, after $after"
[ "${after%/*}" -lt "${before%/*}" ] || fail "fstrim freed no pool block ($before -> $after)"
umount "$T/fs" || fail "umount"
e2fsck -fn "$loop" >"$T/fsck1" 2>&1 || fail "e2fsck device 1: $(cat "$T/fsck1")"
undo

step "the snapshot, read-only: the files as they were"
attach 2 -r
mount -o ro,noload "$loop" "$T/fs" || fail "mount snapshot"
(cd "$T/fs" && sha256sum -c --quiet "$T/sums") || fail "snapshot content differs"
[ -e "$T/fs/new" ] && fail "file written after the snapshot is in it"
umount "$T/fs"
e2fsck -fn "$loop" >"$T/fsck2" 2>&1 || fail "e2fsck snapshot: $(cat "$T/fsck2")"
undo

stop_server
check_pool
echo ok
