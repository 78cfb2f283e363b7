#!/bin/bash
# thinp backup of a live pool: while another process keeps writing the pool
# (the snapshot's origin and another device, committing each time, as the
# kernel would), full and incremental backups of snapshots, read through the
# metadata snapshot the owner holds, are received into another pool and
# read back byte for byte as the snapshots; both pools stay clean. Without a
# held snapshot, or for a device it does not hold, the backup refuses.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

RANDOM=$SEED
A=$T/a B=$T/b SIZE=$((4 << 20))
new_pools "$A" "$B"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pb() { thinp "$1" -m "$B.meta" -d "$B.data" "${@:2}"; }
scribble() {
	for i in $(seq "$1"); do
		head -c $((RANDOM * 4 + 1)) /dev/urandom |
			pa write "$2" $((RANDOM % 60 * 65536 + RANDOM)) || fail "write $2"
	done
}
# The owner: writes devices 1 (the snapshots' origin) and 3 until $T/stop.
owner() {
	while [ ! -e "$T/stop" ]; do
		head -c 200000 /dev/urandom | pa write 1 $((RANDOM % 56 * 65536)) 2>/dev/null
		head -c 100000 /dev/urandom | pa write 3 $((RANDOM % 56 * 65536)) 2>/dev/null
		echo x >>"$T/owner_writes"
	done
}
# Back up snapshot $1 (from $2, if given) while the owner writes.
backup_live() {
	local out=$1 snap=$2
	shift 2
	thinp message -m "$A.meta" reserve_metadata_snap || fail "reserve"
	rm -f "$T/stop" "$T/owner_writes"
	owner &
	local pid=$!
	# Let the owner commit a few times on top of the held root first.
	while [ "$(cat "$T/owner_writes" 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.05; done
	thinp backup -m "$A.meta" -d "$A.data" --snap "$snap" --size $SIZE "$@" >"$out"
	local r=$?
	# An incremental: also the full stream of the same snapshot, to compare.
	[ $# = 0 ] || [ "$r" != 0 ] || thinp backup -m "$A.meta" -d "$A.data" --snap "$snap" \
		--size $SIZE >"$out.full" || r=1
	touch "$T/stop"
	wait $pid
	[ "$r" = 0 ] || fail "backup of $snap"
	thinp message -m "$A.meta" release_metadata_snap || fail "release"
}

step "a pool in use: origin 1, other device 3"
pa create --size $SIZE 1 || fail "create 1"
pa create --size $SIZE 3 || fail "create 3"
scribble 8 1

step "no snapshot held: refused"
pa create --snapshot-of 1 2 || fail "snapshot 2"
thinp backup -m "$A.meta" -d "$A.data" --snap 2 >"$T/none" 2>"$T/err" &&
	fail "backup without a held snapshot"
grep -q "no metadata snapshot is held" "$T/err" || fail "message: $(cat "$T/err")"

step "full backup of snapshot 2 during writes, received into B"
want2=$(dsum "$A" 2)
backup_live "$T/s2" 2
got2=$(pb receive <"$T/s2") || fail "receive full"
[ "$(dsum "$B" "$got2")" = "$want2" ] || fail "received 2 differs from the snapshot"
[ "$(dsum "$A" 2)" = "$want2" ] || fail "snapshot 2 changed"
[ "$(dsum "$A" 1)" != "$want2" ] || fail "the owner did not write the origin"

step "incrementals chain: 4 from 2, 5 from 4"
prev=2 prevgot=$got2
for s in 4 5; do
	scribble 3 1
	pa create --snapshot-of 1 $s || fail "snapshot $s"
	want=$(dsum "$A" $s)
	backup_live "$T/s$s" $s --from $prev
	got=$(pb receive <"$T/s$s") || fail "receive incremental $s"
	[ "$(dsum "$B" "$got")" = "$want" ] || fail "received $s differs from the snapshot"
	[ "$(dsum "$B" "$prevgot")" = "$(dsum "$A" $prev)" ] || fail "base of $s changed in B"
	[ "$(stat -c %s "$T/s$s")" -lt "$(stat -c %s "$T/s$s.full")" ] ||
		fail "incremental $s not smaller than the full stream"
	prev=$s prevgot=$got
done

step "a device the held snapshot does not have: refused"
thinp message -m "$A.meta" reserve_metadata_snap || fail "reserve"
pa create --snapshot-of 1 6 || fail "snapshot 6"
thinp backup -m "$A.meta" -d "$A.data" --snap 6 >"$T/s6" 2>"$T/err" &&
	fail "backup of a device created after the reserve"
grep -q "not in the held metadata snapshot" "$T/err" || fail "message: $(cat "$T/err")"
thinp message -m "$A.meta" release_metadata_snap || fail "release"

step "replaying the full backup is a no-op"
[ "$(pb receive <"$T/s2")" = "$got2" ] || fail "replay gave another device"

check_image "$A.meta"
check_image "$B.meta"
echo "ok"
