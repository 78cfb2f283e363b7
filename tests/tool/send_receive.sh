#!/bin/bash
# thinp send / thinp receive between two pools: a random snapshot chain sent
# full and then incrementally reads back identically on the other side, with
# both pools clean for thin_check and thinp check and the received chain
# sharing its blocks; a flipped byte, a truncated stream, the wrong base and
# a replay each leave the receiving pool's devices exactly as they were.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

RANDOM=$SEED
A=$T/a B=$T/b SIZE=$((4 << 20))
new_pools "$A" "$B"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pb() { thinp "$1" -m "$B.meta" -d "$B.data" "${@:2}"; }
# Every device of B with its contents: what a failed receive must not change.
bstate() { thinp ls -m "$B.meta" --no-headers | while read -r id _; do echo "$id $(dsum "$B" "$id")"; done; }

step "a random chain in A"
pa create --size $SIZE 1 || fail "create 1"
for s in 2 3 4 5; do
	for i in $(seq $((RANDOM % 6 + 2))); do
		off=$((RANDOM % 60 * 65536 + RANDOM % 2 * RANDOM))
		case $((RANDOM % 4)) in
		0) pa discard 1 $((RANDOM % 60 * 65536)) $((RANDOM % 4 * 65536 + 65536)) ||
			fail "discard" ;;
		*) head -c $((RANDOM * 4 + 1)) /dev/urandom | pa write 1 $off || fail "write" ;;
		esac
	done
	pa create --snapshot-of 1 $s || fail "snapshot $s"
done

step "send full and incrementals, receive into B"
pa send 2 >"$T/s2" || fail "send 2"
got2=$(pb receive <"$T/s2") || fail "receive 2"
declare -A map=([2]=$got2)
for s in 3 4 5; do
	pa send $s --from $((s - 1)) >"$T/s$s" || fail "send $s"
	map[$s]=$(pb receive <"$T/s$s") || fail "receive $s"
done
for s in 2 3 4 5; do
	[ "$(dsum "$A" $s)" = "$(dsum "$B" "${map[$s]}")" ] || fail "device $s differs in B"
done
[ "$(stat -c %s "$T/s5")" -lt "$(stat -c %s "$T/s2")" ] || echo "note: incremental not smaller"
check_image "$A.meta"
check_image "$B.meta"
# Received snapshots share: B uses no more data blocks than the chain in A maps.
mapped=$(thinp ls -m "$A.meta" --no-headers | awk '$1 >= 2 && $1 <= 5 { print $1 }' | while read -r d; do
	for v in $(seq 0 63); do echo "$d $v"; done; done | thinp lookup -m "$A.meta" |
	awk '$3 != "-" { print $3 }' | sort -u | wc -l)
used=$(thinp status -m "$B.meta" | cut -d' ' -f3 | cut -d/ -f1)
[ "$used" -eq "$mapped" ] || fail "B uses $used data blocks, A's chain maps $mapped"

step "damage: nothing in B changes"
before=$(bstate)
[ -n "$before" ] || fail "no devices listed in B"
pa create --snapshot-of 1 6 || fail "snapshot 6"
echo x | pa write 1 0 || fail "write"
pa create --snapshot-of 1 7 || fail "snapshot 7"
pa send 7 --from 5 >"$T/s7" || fail "send 7"
len=$(stat -c %s "$T/s7")
for i in 1 2 3 4 5 6; do
	cp "$T/s7" "$T/bad"
	pos=$((RANDOM * 32768 % len + RANDOM % len))
	pos=$((pos % len))
	printf "$(printf '\\%03o' $(( ($(od -An -tu1 -j$pos -N1 "$T/s7") ^ 16) )))" |
		dd of="$T/bad" bs=1 seek=$pos conv=notrunc status=none
	pb receive <"$T/bad" 2>"$T/err" && fail "a flipped byte at $pos was received"
	grep -q . "$T/err" || fail "no message for a flipped byte"
	head -c $((RANDOM * 32768 % len)) "$T/s7" | pb receive 2>/dev/null &&
		fail "a truncated stream was received"
done
[ "$(bstate)" = "$before" ] || fail "B changed after damaged streams"
check_image "$B.meta"

step "wrong base, replay"
pa send 7 --from 6 | pb receive 2>"$T/err" && fail "a stream for a base B lacks was received"
grep -q "base guid" "$T/err" || fail "wrong base message: $(cat "$T/err")"
[ "$(pb receive <"$T/s3")" = "${map[3]}" ] || fail "a replay did not name the device"
[ "$(bstate)" = "$before" ] || fail "B changed after a wrong base or a replay"

step "a modified base is refused"
echo y | pb write "${map[5]}" 4096 || fail "write to B"
before=$(bstate)
[ -n "$before" ] || fail "no devices listed in B"
pb receive <"$T/s7" 2>"$T/err" && fail "an incremental onto a modified base was received"
grep -q "modified" "$T/err" || fail "modified base message: $(cat "$T/err")"
[ "$(bstate)" = "$before" ] || fail "B changed after a refused stream"
check_image "$B.meta"

step "an interrupted resumable receive, resumed"
C=$T/c
new_pools "$C"
pc() { thinp "$1" -m "$C.meta" -d "$C.data" "${@:2}"; }
pa send 5 --checkpoint 128k >"$T/r5" || fail "send 5 with checkpoints"
head -c $(($(stat -c %s "$T/r5") * 2 / 3)) "$T/r5" | pc receive --resumable 2>"$T/err" &&
	fail "a truncated stream was received"
token=$(sed -n 's/.*--resume \(thinp1-[0-9a-f]*\).*/\1/p' "$T/err")
[ -n "$token" ] || fail "no resume token: $(cat "$T/err")"
[ "$(thinp ls -m "$C.meta" --no-headers | wc -l)" -eq 1 ] || fail "the partial device is not kept"
pa send 4 --resume "$token" >/dev/null 2>&1 && fail "a token sent for another device"
id=$(pa send 5 --resume "$token" | pc receive --resumable) || fail "the resumed stream"
[ "$(dsum "$A" 5)" = "$(dsum "$C" "$id")" ] || fail "the resumed device differs"
check_image "$C.meta"

step "a device without a catalog entry is given a guid, sent by its mapped size"
thinp message -m "$A.meta" create_thin 9 || fail "create_thin 9"
head -c 100000 /dev/urandom | pa write 9 65536 || fail "write 9"
id=$(pa send 9 | pc receive) || fail "send/receive 9"
[ "$(pa read 9 0 196608 | md5sum)" = "$(pc read "$id" 0 196608 | md5sum)" ] ||
	fail "device 9 differs"
[ "$(thinp ls -m "$C.meta" --no-headers | awk -v d="$id" '$1 == d { print $6 }')" = 196608 ] ||
	fail "device 9's size in C: $(thinp ls -m "$C.meta")"
[ "$(pa send 9 | pc receive)" = "$id" ] || fail "the guid given to 9 changed between sends"

step "an anchor whose device was deleted behind the library's back is pruned"
n0=$(thinp ls -m "$C.meta" --no-headers | wc -l)
thinp message -m "$C.meta" delete "$id" || fail "delete $id"
[ "$(pc receive --prune)" = 1 ] || fail "prune did not drop the anchor of $id"
[ "$(thinp ls -m "$C.meta" --no-headers | wc -l)" -eq $((n0 - 2)) ] ||
	fail "devices left: $(thinp ls -m "$C.meta")"
[ "$(pc receive --prune)" = 0 ] || fail "a second prune dropped more"
check_image "$C.meta"

step "export to a sparse image, import it back"
pa export 5 "$T/img" || fail "export"
[ "$(stat -c %s "$T/img")" -eq $SIZE ] || fail "image size $(stat -c %s "$T/img")"
[ "$(md5sum <"$T/img" | cut -d' ' -f1)" = "$(dsum "$A" 5)" ] || fail "the image differs"
[ "$(du -k "$T/img" | cut -f1)" -le $(( $(thinp ls -m "$A.meta" --no-headers |
	awk '$1 == 5 { print $2 }') * 64 + 64 )) ] || fail "the image is not sparse"
pc import "$T/img" 40 || fail "import"
[ "$(dsum "$C" 40)" = "$(dsum "$A" 5)" ] || fail "the imported device differs"
mapped() { thinp ls -m "$1.meta" --no-headers | awk -v d="$2" '$1 == d { print $2 }'; }
[ "$(mapped "$C" 40)" -le "$(mapped "$A" 5)" ] || fail "import provisioned zero blocks"
check_image "$C.meta"
echo "ok"
