#!/bin/bash
# thinp-fuse under a real file system, as a user runs it: a volume file on a
# loop device, ext4 on it, files written, a snapshot through the control
# file while the file system is frozen, the snapshot mounted read-only and
# compared, fstrim reaching the pool as discards, e2fsck clean on both, the
# pool clean after unmount. With direct_io (the default), with -o
# page_cache, and with direct_io under a loop device doing direct I/O.
. "$(dirname "$0")/common.sh"
for p in mkfs.ext4 e2fsck fsfreeze fstrim sha256sum; do
	command -v $p >/dev/null || skip "$p not found"
done

run() {
	local mode=$1 loopdio=$2 dev0 dev1 before after data
	step "mode ${mode:-direct_io}, loop direct I/O $loopdio"
	rm -f "$T/meta" "$T/data" "$T/meta.vol" "$T/fuse.log"
	new_pool 16384
	"$THINP" create -m "$T/meta" -d "$T/data" --size 512M 0 || fail "thinp create"
	fuse_mount ${mode:+-o $mode}
	[ "$(stat -c %s "$MNT/0")" = 536870912 ] || fail "volume 0 is not 512 MiB"

	dev0=$(loop_attach --direct-io=$loopdio "$MNT/0")
	echo "$dev0: dio $(cat "/sys/block/${dev0#/dev/}/loop/dio" 2>/dev/null)"
	mkfs.ext4 -q -F "$dev0" || fail "mkfs.ext4"
	mkdir -p "$T/fs0" "$T/fs1"
	mount "$dev0" "$T/fs0" || fail "mount $dev0"
	FSMOUNTS="$T/fs0"
	head -c 48M /dev/urandom >"$T/fs0/big" || fail "write big"
	mkdir "$T/fs0/small"
	for i in $(seq 200); do head -c $((i * 997)) /dev/urandom >"$T/fs0/small/$i"; done
	(cd "$T/fs0" && find . -type f | sort | xargs sha256sum) >"$T/sums"

	step "snapshot while frozen"
	fsfreeze -f "$T/fs0" || fail "fsfreeze -f"
	echo 'create_snap 1 0' >"$MNT/.control" || fail "create_snap through .control"
	fsfreeze -u "$T/fs0" || fail "fsfreeze -u"
	[ "$(cat "$MNT/.control")" = ok ] || fail ".control does not say ok"
	[ "$(stat -c %s "$MNT/1")" = 536870912 ] || fail "the snapshot is not the origin's size"
	# The origin moves on; the snapshot must not.
	head -c 8M /dev/urandom >"$T/fs0/small/1"
	rm -f "$T/fs0/small/2"
	sync

	dev1=$(loop_attach -r "$MNT/1")
	mount -o ro,noload "$dev1" "$T/fs1" || fail "mount the snapshot"
	FSMOUNTS="$T/fs1 $T/fs0"
	(cd "$T/fs1" && sha256sum --quiet -c "$T/sums") || fail "the snapshot's files differ"
	cmp -s "$T/fs0/small/1" "$T/fs1/small/1" && fail "the origin's new data shows in the snapshot"

	step "fstrim reaches the pool"
	rm "$T/fs0/big"
	sync
	before=$(mapped "$MNT/0")
	fstrim "$T/fs0" || fail "fstrim"
	# Frozen while both are counted: the mounted ext4 writes on its own
	# (journal commits), and a block it maps between the two is no error.
	fsfreeze -f "$T/fs0" || fail "fsfreeze -f"
	after=$(mapped "$MNT/0")
	data=$(data_bytes "$MNT/0")
	fsfreeze -u "$T/fs0" || fail "fsfreeze -u"
	echo "volume 0 mapped: $before -> $after bytes"
	[ $((before - after)) -ge $((40 << 20)) ] || fail "fstrim unmapped less than 40 MiB"
	[ "$data" = "$after" ] || fail "SEEK_DATA/SEEK_HOLE count $data bytes, st_blocks $after"
	(cd "$T/fs1" && sha256sum --quiet -c "$T/sums") || fail "fstrim on the origin changed the snapshot"

	step "unmount, e2fsck, pool checks"
	umount "$T/fs1" && umount "$T/fs0" || fail "umount"
	FSMOUNTS=
	loop_detach "$dev1"
	loop_detach "$dev0"
	e2fsck -fn "$MNT/0" >"$T/fsck0" 2>&1 || { cat "$T/fsck0"; fail "e2fsck on volume 0"; }
	e2fsck -fn "$MNT/1" >"$T/fsck1" 2>&1 || { cat "$T/fsck1"; fail "e2fsck on the snapshot"; }
	fuse_umount
	pool_checks
	"$THINP" ls -m "$T/meta" | awk '$1 == 1 && $6 == 536870912 { ok = 1 } END { exit !ok }' ||
		fail "the catalog does not size the snapshot"
}

run "" off
run page_cache off
run "" on
echo "PASS"
