#!/bin/bash
# thinp hydrate: the origin file copied into a device's holes, so that it
# reads the same without the origin and its catalog entry names none;
# origin blocks of zeroes stay holes; -ENOSPC refused before copying; a
# hydration killed half way (kill -9, rate-limited) run again; thin_check
# clean throughout. With THINP_WORKFLOW_POOLS=DIR the pool is left as
# DIR/hydrate.{meta,data,origin}.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

P=$T/pool O=$T/origin SIZE=$((4 << 20))
new_pools "$P"
head -c $SIZE /dev/urandom >"$O"
dd if=/dev/zero of="$O" bs=64k seek=5 count=3 conv=notrunc status=none # blocks 5-7: zeroes
mapped() { thinp ls -m "$P.meta" --no-headers | awk -v d="$1" '$1 == d { print $2 }'; }
rd() { thinp read -m "$P.meta" -d "$P.data" ${2:+--origin "$2"} "$1" 0 $SIZE; }

step "hydrate a device"
thinp create -m "$P.meta" -d "$P.data" --size $SIZE --origin "$O" 1 || fail "create 1"
head -c 300000 /dev/urandom | thinp write -m "$P.meta" -d "$P.data" --origin "$O" 1 1000000 ||
	fail "write"
thinp create -m "$P.meta" -d "$P.data" --snapshot-of 1 2 || fail "snapshot 2"
rd 1 "$O" >"$T/want"
thinp hydrate -m "$P.meta" -d "$P.data" --batch 5 1 || fail "hydrate"
rd 1 | cmp -s - "$T/want" || fail "device 1 without its origin differs"
[ "$(mapped 1)" = $((SIZE / 65536 - 3)) ] || fail "mapped after hydration: $(mapped 1)"
"$THINP" hydrate -m "$P.meta" -d "$P.data" 1 2>"$T/err" && fail "hydrate without an origin accepted"
grep -q "no external origin" "$T/err" || fail "second hydrate: $(cat "$T/err")"
thinp hydrate -m "$P.meta" -d "$P.data" --origin "$O" 1 || fail "hydrate again with --origin"
rd 2 "$O" | cmp -s - "$T/want" || fail "the snapshot changed"
check_image "$P.meta"

step "not enough free space: refused before copying"
Q=$T/small
truncate -s 8M "$Q.meta"
truncate -s 2M "$Q.data"
thinp format -m "$Q.meta" -b 64k -n 32 || fail "format small"
thinp create -m "$Q.meta" -d "$Q.data" --size $SIZE --origin "$O" 1 || fail "create small"
"$THINP" hydrate -m "$Q.meta" -d "$Q.data" 1 2>"$T/err" && fail "hydrate into a full pool accepted"
grep -q "free" "$T/err" || fail "no-space message: $(cat "$T/err")"
[ "$(thinp ls -m "$Q.meta" --no-headers | awk '{ print $2 }')" = 0 ] || fail "copied anyway"

step "a hydration killed half way, run again"
thinp create -m "$P.meta" -d "$P.data" --size $SIZE --origin "$O" 3 || fail "create 3"
head -c 70000 /dev/urandom | thinp write -m "$P.meta" -d "$P.data" --origin "$O" 3 20000 || fail "write 3"
rd 3 "$O" >"$T/want3"
"$THINP" hydrate -m "$P.meta" -d "$P.data" --batch 2 --rate 512k 3 2>/dev/null &
pid=$!
sleep 1
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ "$(mapped 3)" -lt $((SIZE / 65536 - 3)) ] || fail "the hydration finished before the kill"
rd 3 "$O" | cmp -s - "$T/want3" || fail "device 3 reads differently after the kill"
thinp hydrate -m "$P.meta" -d "$P.data" 3 || fail "hydrate rerun"
rd 3 | cmp -s - "$T/want3" || fail "device 3 without its origin after the rerun"
check_image "$P.meta"

if [ -n "${THINP_WORKFLOW_POOLS:-}" ]; then
	mkdir -p "$THINP_WORKFLOW_POOLS"
	cp "$P.meta" "$THINP_WORKFLOW_POOLS/hydrate.meta"
	cp "$P.data" "$THINP_WORKFLOW_POOLS/hydrate.data"
	cp "$O" "$THINP_WORKFLOW_POOLS/hydrate.origin"
fi
echo PASS
