#!/bin/bash
# thinp migrate end to end: a device written between live rounds arrives
# whole after --final and leaves its pool; a snapshot family arrives sharing
# its blocks; SIGTERM stops cleanly and a rerun finishes; refusals. Both
# pools stay clean for thin_check and thinp check.
#
# With THINP_WORKFLOW_POOLS=DIR, the pools are left as DIR/migrate-src.* and
# DIR/migrate-dst.* (.meta, .data, .meta.vol) for the kernel activation step
# (tests/frontends/kernel/workflows_dmthin.sh).
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

RANDOM=$SEED
A=$T/a B=$T/b SIZE=$((4 << 20))
new_pools "$A" "$B"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pb() { thinp "$1" -m "$B.meta" -d "$B.data" "${@:2}"; }
mig() { pa migrate --to-meta "$B.meta" --to-data "$B.data" --checkpoint 256k "$@"; }
# mig in the background as its own process ($! is thinp, for signals).
mig_bg() {
	exec "$THINP" migrate -m "$A.meta" -d "$A.data" --to-meta "$B.meta" --to-data "$B.data" \
		--checkpoint 256k "$@"
}
# Random writes and discards on device $1 of A.
scribble() {
	local i off
	for i in $(seq "${2:-4}"); do
		off=$((RANDOM % 60 * 65536 + RANDOM % 2 * RANDOM))
		case $((RANDOM % 4)) in
		0) pa discard "$1" $((RANDOM % 60 * 65536)) 65536 || fail "discard $1" ;;
		*) head -c $((RANDOM * 4 + 1)) /dev/urandom | pa write "$1" $off || fail "write $1" ;;
		esac
	done
}
ndev() { thinp ls -m "$1.meta" --no-headers | wc -l; }
has_dev() { thinp ls -m "$1.meta" --no-headers | awk -v d="$2" '$1 == d { f = 1 } END { exit !f }'; }
used() { thinp status -m "$1.meta" | cut -d' ' -f3 | cut -d/ -f1; }

step "live rounds, writes between them, then --final"
pa create --size $SIZE 1 || fail "create 1"
scribble 1 8
mig --rounds 2 1 2>"$T/err" || fail "live rounds: $(cat "$T/err")"
grep -q "run again with --final" "$T/err" || fail "no hint after live rounds: $(cat "$T/err")"
has_dev "$A" 1 || fail "device 1 left A before the switch"
scribble 1 6
want=$(dsum "$A" 1)
mapped=$(thinp ls -m "$A.meta" --no-headers | awk '$1 == 1 { print $2 }')
id=$(mig --final 1) || fail "final"
[ "$(dsum "$B" "$id")" = "$want" ] || fail "device 1's copy differs"
got=$(thinp ls -m "$B.meta" --no-headers | awk -v d="$id" '$1 == d { print $2 }')
[ "$got" = "$mapped" ] || fail "the copy maps $got blocks, the source $mapped (holes must stay holes)"
has_dev "$A" 1 && fail "device 1 still in A after the switch"
[ "$(ndev "$A")" -eq 0 ] || fail "A keeps devices: $(thinp ls -m "$A.meta")"
check_image "$A.meta"
check_image "$B.meta"
mig --final 1 2>/dev/null && fail "a second migration of a gone device succeeded"

step "a family: device 3 and its snapshots 4, 5"
pa create --size $SIZE 3 || fail "create 3"
scribble 3 8
pa create --snapshot-of 3 4 || fail "snapshot 4"
scribble 3 4
pa create --snapshot-of 3 5 || fail "snapshot 5"
scribble 3 4
declare -A want=([3]=$(dsum "$A" 3) [4]=$(dsum "$A" 4) [5]=$(dsum "$A" 5))
before_used=$(used "$B") a_used=$(used "$A")
id=$(mig --family --final 3) || fail "family"
[ "$(dsum "$B" "$id")" = "${want[3]}" ] || fail "device 3's copy differs"
sums=$(thinp ls -m "$B.meta" --no-headers | while read -r d _; do dsum "$B" "$d"; done)
for s in 4 5; do
	echo "$sums" | grep -qx "${want[$s]}" || fail "no copy of snapshot $s in B"
done
[ "$(ndev "$A")" -eq 0 ] || fail "A keeps family devices: $(thinp ls -m "$A.meta")"
# Shared blocks stay shared: B grew by no more than A used for the family.
[ $(($(used "$B") - before_used)) -le "$a_used" ] ||
	fail "B grew by $(($(used "$B") - before_used)) blocks, the family used $a_used in A"
check_image "$A.meta"
check_image "$B.meta"

step "SIGTERM stops at a consistent point; the rerun finishes"
pa create --size $SIZE 7 || fail "create 7"
head -c $SIZE /dev/urandom | pa write 7 0 || fail "write 7"
want7=$(dsum "$A" 7)
(mig_bg --final --rate 1m 7 >"$T/out7" 2>"$T/err7") &
pid=$!
sleep 1
kill -TERM $pid
wait $pid && echo "note: migration finished before SIGTERM"
if has_dev "$A" 7; then
	grep -q "run the same command again" "$T/err7" || fail "no hint after SIGTERM: $(cat "$T/err7")"
	check_image "$A.meta"
	check_image "$B.meta"
	id=$(mig --final 7) || fail "rerun after SIGTERM"
else
	id=$(cat "$T/out7")
fi
[ "$(dsum "$B" "$id")" = "$want7" ] || fail "device 7's copy differs"
check_image "$A.meta"
check_image "$B.meta"

step "refusals"
pa create --size $SIZE 8 || fail "create 8"
truncate -s 8M "$T/c.meta"; truncate -s 64M "$T/c.data"
thinp format -m "$T/c.meta" -b 128k -n 512 || fail "format c"
pa migrate --to-meta "$T/c.meta" --to-data "$T/c.data" --final 8 2>"$T/err8" &&
	fail "migrated between block sizes"
grep -q "block sizes differ" "$T/err8" || fail "block size refusal: $(cat "$T/err8")"
mig --final --rounds 2 8 2>/dev/null
[ $? -eq 2 ] || fail "--final --rounds accepted"

if [ -n "${THINP_WORKFLOW_POOLS:-}" ]; then
	mkdir -p "$THINP_WORKFLOW_POOLS"
	for p in src:$A dst:$B; do
		for ext in meta data meta.vol; do
			cp --sparse=always "${p#*:}.$ext" "$THINP_WORKFLOW_POOLS/migrate-${p%%:*}.$ext"
		done
	done
fi
echo "PASS"
