#!/bin/bash
# Devices a receive keeps out of sight are not served: the anchor `thinp
# receive` takes of a published device (THINP_CATALOG_ANCHOR, size 0 in the
# catalog, so -o size= would otherwise size it) and a device whose resumable
# receive was interrupted (THINP_CATALOG_PARTIAL) get no file, and the
# control file does not snapshot them.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/../hidden_devices.sh"

new_pool 1024
hidden_devices "$T/meta" "$T/data"

step "only the received device is a file, with -o size= too"
fuse_mount -o size=1m
[ "$(ls "$MNT")" = "$got" ] || fail "files: $(ls "$MNT")"
[ "$(stat -c %s "$MNT/$got")" = 4194304 ] || fail "the received device's size"
for h in "${hidden[@]}"; do
	[ -e "$MNT/$h" ] && fail "hidden device $h is a file"
	echo "create_snap 9$h $h" >"$MNT/.control" 2>/dev/null && fail "hidden device $h snapshotted"
	grep -q "^error: 'create_snap 9$h $h'" "$MNT/.control" || fail "reply: $(cat "$MNT/.control")"
done
grep -q "device ${hidden[0]} not served: an anchor" "$T/fuse.log" ||
	fail "no word about the anchor"
grep -q "device ${hidden[1]} not served: a receive into it is not finished" "$T/fuse.log" ||
	fail "no word about the partial device"
echo "create_snap 7 $got" >"$MNT/.control" || fail "snapshot of the received device"
[ "$(ls "$MNT" | sort | tr '\n' ' ')" = "$got 7 " ] || fail "after the snapshot: $(ls "$MNT")"
fuse_umount
[ "$("$THINP" ls -m "$T/meta" --no-headers | wc -l)" = 4 ] || fail "the pool's devices"
echo ok
