#!/bin/bash
# Devices a receive keeps out of sight are not served: the anchor `thinp
# receive` takes of a published device (THINP_CATALOG_ANCHOR) and a device
# whose resumable receive was interrupted (THINP_CATALOG_PARTIAL) are neither
# listed nor opened, and the control socket does not snapshot them.
. "$(dirname "$0")/common.sh"
requires nbdinfo

. "$(dirname "$0")/../hidden_devices.sh"

new_pool 65536 1024
hidden_devices "$M" "$D"
CTL=$T/ctl
export CTL THINP

step "only the received device is listed and opened"
serve control="$CTL" -- "
	nbdinfo --list --json \"\$uri\" | grep '\"export-name\"'
	for h in ${hidden[*]}; do
		nbdinfo --size \"nbd+unix:///\$h?socket=\$unixsocket\" && echo \"served \$h\"
		\"\$THINP\" control \"\$CTL\" create_snap 9\$h \$h
	done
	nbdinfo --size \"nbd+unix:///$got?socket=\$unixsocket\"
	\"\$THINP\" control \"\$CTL\" ls
	" >"$T/out" 2>&1
cat "$T/out"
[ "$(grep -c '"export-name"' "$T/out")" = 1 ] || fail "exports listed: $(grep export-name "$T/out")"
grep -q "\"export-name\": \"$got\"" "$T/out" || fail "the received device is not listed"
grep -q "^served" "$T/out" && fail "a hidden device was served"
grep -q "is not served: an anchor" "$T/out" || fail "no word about the anchor"
grep -q "is not served: a receive into it is not finished" "$T/out" ||
	fail "no word about the partial device"
[ "$(grep -c '^error: create_snap: ' "$T/out")" = 2 ] || fail "hidden devices snapshotted"
grep -qx 4194304 "$T/out" || fail "the received device's size"
[ "$(thinp ls -m "$M" --no-headers | wc -l)" = 3 ] || fail "the pool's devices changed"
check_pool
echo ok
