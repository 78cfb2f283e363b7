#!/bin/bash
# thinp merge: a device's blocks onto its external origin file, the device
# reading the same before and after; a sibling on the same origin refused,
# then hydrated with --hydrate-siblings; a merge killed half way (kill -9,
# rate-limited) run again to the same end; thin_check clean throughout.
# With THINP_WORKFLOW_POOLS=DIR the pool is left as DIR/merge.{meta,data,origin}.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

P=$T/pool O=$T/origin SIZE=$((4 << 20))
new_pools "$P"
head -c $SIZE /dev/urandom >"$O"
mapped() { thinp ls -m "$P.meta" --no-headers | awk -v d="$1" '$1 == d { print $2 }'; }
rd() { thinp read -m "$P.meta" -d "$P.data" --origin "$O" "$1" 0 $SIZE; }
scribble() { # DEV COUNT: COUNT random writes of up to 200k
	local i off len
	for ((i = 0; i < $2; i++)); do
		off=$((RANDOM * 97 % (SIZE - 200000))) len=$((1 + RANDOM * 7 % 200000))
		head -c $len /dev/urandom |
			thinp write -m "$P.meta" -d "$P.data" --origin "$O" "$1" $off || fail "write $1"
	done
}

step "merge a device into its origin"
thinp create -m "$P.meta" -d "$P.data" --size $SIZE --origin "$O" 1 || fail "create 1"
scribble 1 12
rd 1 >"$T/want1"
[ "$(mapped 1)" -gt 0 ] || fail "nothing mapped"
thinp merge -m "$P.meta" -d "$P.data" --batch 3 1 || fail "merge"
[ "$(mapped 1)" = 0 ] || fail "still mapped after the merge: $(mapped 1)"
cmp -s "$O" "$T/want1" || fail "the origin is not what device 1 read"
rd 1 | cmp -s - "$T/want1" || fail "device 1 reads something else after the merge"
check_image "$P.meta"

step "a sibling on the same origin: refused, then hydrated"
thinp create -m "$P.meta" -d "$P.data" --snapshot-of 1 2 || fail "snapshot 2"
scribble 1 8
rd 1 >"$T/want1"
rd 2 >"$T/want2"
cp "$O" "$T/origin.before"
"$THINP" merge -m "$P.meta" -d "$P.data" 1 2>"$T/err" && fail "merge with a sibling accepted"
grep -q "device 2 also reads origin" "$T/err" || fail "refusal: $(cat "$T/err")"
cmp -s "$O" "$T/origin.before" || fail "the refused merge changed the origin"
thinp merge -m "$P.meta" -d "$P.data" --hydrate-siblings 1 || fail "merge --hydrate-siblings"
rd 1 | cmp -s - "$T/want1" || fail "device 1 after the merge"
rd 2 | cmp -s - "$T/want2" || fail "the sibling's contents changed"
[ "$(mapped 1)" = 0 ] || fail "device 1 still mapped"
check_image "$P.meta"

step "a merge killed half way, run again"
thinp message -m "$P.meta" delete 2 || fail "delete 2"
scribble 1 20
rd 1 >"$T/want1"
"$THINP" merge -m "$P.meta" -d "$P.data" --batch 2 --rate 512k 1 2>/dev/null &
pid=$!
sleep 1
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ "$(mapped 1)" -gt 0 ] || fail "the merge finished before the kill"
rd 1 | cmp -s - "$T/want1" || fail "device 1 reads differently after the kill"
thinp merge -m "$P.meta" -d "$P.data" 1 || fail "merge rerun"
cmp -s "$O" "$T/want1" || fail "the origin after the rerun"
rd 1 | cmp -s - "$T/want1" || fail "device 1 after the rerun"
[ "$(mapped 1)" = 0 ] || fail "device 1 still mapped after the rerun"
check_image "$P.meta"

if [ -n "${THINP_WORKFLOW_POOLS:-}" ]; then
	mkdir -p "$THINP_WORKFLOW_POOLS"
	cp "$P.meta" "$THINP_WORKFLOW_POOLS/merge.meta"
	cp "$P.data" "$THINP_WORKFLOW_POOLS/merge.data"
	cp "$O" "$THINP_WORKFLOW_POOLS/merge.origin"
fi
echo PASS
