#!/bin/bash
# Snapshots of a served device through the control socket (thinp control),
# read back while the server keeps running; control errors; a second server
# on the same pool is refused; a kill -9 of the server keeps every write that
# was flushed; the pool clean afterwards.
. "$(dirname "$0")/common.sh"
requires qemu-io nbdinfo

new_pool 65536 1024
thinp create -m "$M" -d "$D" --size 32M 1 || fail "create 1"
CTL=$T/ctl
export THINP CTL

step "snapshot while served, then diverge"
serve control="$CTL" -- '
	u1="nbd+unix:///1?socket=$unixsocket" u2="nbd+unix:///2?socket=$unixsocket"
	set -e
	qemu-io -f raw -c "write -P 0xaa 0 4M" "$u1" >/dev/null
	"$THINP" control "$CTL" create_snap 2 1
	qemu-io -f raw -c "write -P 0xbb 0 2M" -c "write -P 0xcc 30M 1M" "$u1" >/dev/null
	qemu-io -f raw -c "read -P 0xaa 0 4M" -c "read -P 0 4M 28M" "$u2"
	qemu-io -f raw -c "read -P 0xbb 0 2M" -c "read -P 0xaa 2M 2M" -c "read -P 0xcc 30M 1M" "$u1"
	qemu-io -f raw -c "write -P 0xdd 1M 1M" "$u2" >/dev/null
	qemu-io -f raw -c "read -P 0xbb 1M 1M" "$u1"
	nbdinfo --size "$u2"
	"$THINP" control "$CTL" create_thin 3 5M
	nbdinfo --size "nbd+unix:///3?socket=$unixsocket"
	"$THINP" control "$CTL" ls
	' >"$T/snap.out" 2>&1 || fail "snapshot run: $(cat "$T/snap.out")"
grep -q "verification failed" "$T/snap.out" && fail "patterns: $(cat "$T/snap.out")"
grep -qx $((32 << 20)) "$T/snap.out" || fail "snapshot size: $(cat "$T/snap.out")"
grep -qx $((5 << 20)) "$T/snap.out" || fail "create_thin size: $(cat "$T/snap.out")"
grep -qx "ok 1:33554432 2:33554432 3:5242880" "$T/snap.out" || fail "ls: $(cat "$T/snap.out")"
thinp ls -m "$M" --no-headers | awk '{ print $1, $6 }' | tr '\n' ' ' | grep -qx "1 33554432 2 33554432 3 5242880 " ||
	fail "thinp ls after the server: $(thinp ls -m "$M")"
check_pool

step "control errors leave the pool alone"
serve control="$CTL" -- '
	"$THINP" control "$CTL" create_snap 4 9; echo "rc=$?"
	"$THINP" control "$CTL" create_thin 1 1M; echo "rc=$?"
	"$THINP" control "$CTL" create_thin 5 zero; echo "rc=$?"
	"$THINP" control "$CTL" frobnicate; echo "rc=$?"
	"$THINP" control "$CTL" delete 3; echo "rc=$?"
	"$THINP" control "$CTL" ls
	' >"$T/err.out" 2>&1
[ "$(grep -c '^error: ' "$T/err.out")" = 4 ] || fail "expected 4 errors: $(cat "$T/err.out")"
[ "$(grep -c '^rc=1$' "$T/err.out")" = 4 ] || fail "expected exit 1 four times: $(cat "$T/err.out")"
grep -qx "ok 1:33554432 2:33554432" "$T/err.out" || fail "after errors: $(cat "$T/err.out")"
[ -e "$CTL" ] && fail "control socket left behind"
check_pool

step "kill -9: flushed writes survive"
nbdkit -f -P "$T/pid" -U "$T/sock" "$PLUGIN" meta="$M" data="$D" commit_interval=0 &
wait_served "$T/sock"
nbdkit -U - "$PLUGIN" meta="$M" data="$D" --run true 2>"$T/second.err" &&
	fail "a second server opened the same pool"
grep -q "in use by another process" "$T/second.err" || fail "second server: $(cat "$T/second.err")"
qemu-io -f raw -c "write -P 0xee 8M 3M" -c flush -c "write -P 0x11 16M 1M" \
	"nbd+unix:///1?socket=$T/sock" >/dev/null || fail "write before the kill"
kill -9 "$(cat "$T/pid")"
wait
thinp read -m "$M" -d "$D" 1 8M 3M | cmp -s - <(head -c 3M /dev/zero | tr '\0' '\356') ||
	fail "flushed data lost after kill -9"
check_pool
echo ok
