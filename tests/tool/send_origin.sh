#!/bin/bash
# thinp send / thinp receive of devices with an external origin: a chain made
# with `thinp create --origin` in A goes to B, which holds a copy of the
# origin file. Without the origin named, with another origin guid, or with a
# file of another size, the receive is refused and B does not change; with
# `thinp receive --origin COPY=GUID` the full stream lands, the incremental
# finds the origin in B's catalog, and every received device reads as in A
# (origin bytes where nothing is provisioned, zeroes where zeroes were
# written over the origin). Both pools stay clean for thin_check.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

RANDOM=$SEED
A=$T/a B=$T/b SIZE=$((4 << 20))
new_pools "$A" "$B"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pb() { thinp "$1" -m "$B.meta" -d "$B.data" "${@:2}"; }
# Device $2 of pool $1 read through origin $3.
osum() { thinp read -m "$1.meta" -d "$1.data" --origin "$3" "$2" 0 "$SIZE" | md5sum | cut -d' ' -f1; }
bstate() { thinp ls -m "$B.meta" --no-headers | md5sum; }

step "an origin, its copy for B, and a chain over it in A"
head -c $((3 << 20)) /dev/urandom >"$T/origin" && head -c 1536 /dev/urandom >>"$T/origin"
cp "$T/origin" "$T/origin.copy"
head -c $((3 << 20)) /dev/urandom >"$T/short"
pa create --size $SIZE --origin "$T/origin" 1 || fail "create 1 --origin"
head -c 70000 /dev/urandom | pa write --origin "$T/origin" 1 100000 || fail "write"
head -c 131072 /dev/zero | pa write --origin "$T/origin" 1 $((5 * 65536)) || fail "write zeroes"
pa create --snapshot-of 1 2 || fail "snapshot 2"
head -c 9000 /dev/urandom | pa write --origin "$T/origin" 1 $((20 * 65536 + 7)) || fail "write"
pa discard 1 $((5 * 65536)) 65536 || fail "discard"
pa create --snapshot-of 1 3 || fail "snapshot 3"
[ "$(osum "$A" 2 "$T/origin")" != "$(dsum "$A" 2)" ] || fail "the origin does not show through device 2"

step "refusals: no origin, another guid, another size"
pa send 2 >"$T/s2" || fail "send 2"
before=$(bstate)
out=$(pb receive <"$T/s2" 2>&1) && fail "received without an origin"
echo "$out" | grep -q "no origin here" || fail "no clear message: $out"
guid=$(echo "$out" | grep -oE '[0-9a-f]{32}' | head -1)
[ ${#guid} -eq 32 ] || fail "the message names no origin guid: $out"
out=$(pb receive --origin "$T/origin.copy=ffffffffffffffffffffffffffffffff" <"$T/s2" 2>&1) &&
	fail "received with another origin guid"
echo "$out" | grep -q "origin guid" || fail "no clear message: $out"
out=$(pb receive --origin "$T/short" <"$T/s2" 2>&1) && fail "received with an origin of another size"
echo "$out" | grep -q "bytes" || fail "no clear message: $out"
[ "$(bstate)" = "$before" ] || fail "a refused receive changed B"

step "receive --origin COPY=GUID, then the incremental"
got2=$(pb receive --origin "$T/origin.copy=$guid" <"$T/s2") || fail "receive 2"
pa send 3 --from 2 >"$T/s3" || fail "send 3"
got3=$(pb receive <"$T/s3") || fail "receive 3 (origin from B's catalog)"
[ "$(osum "$A" 2 "$T/origin")" = "$(osum "$B" "$got2" "$T/origin.copy")" ] || fail "device 2 differs in B"
[ "$(osum "$A" 3 "$T/origin")" = "$(osum "$B" "$got3" "$T/origin.copy")" ] || fail "device 3 differs in B"
check_image "$A.meta"
check_image "$B.meta"

step "an origin named for a stream without one is refused"
pa create --size $SIZE 9 || fail "create 9"
pa send 9 >"$T/s9" || fail "send 9"
out=$(pb receive --origin "$T/origin.copy" <"$T/s9" 2>&1) && fail "received with a needless origin"
echo "$out" | grep -q "no external origin" || fail "no clear message: $out"
pb receive <"$T/s9" >/dev/null || fail "receive 9"
echo "ok"
