#!/bin/bash
# The plugin with nbdinfo and qemu-io: exports and their flags, reads and
# writes checked by pattern, write-zeroes with and without unmap, discard,
# the allocation map (holes where nothing is provisioned), a read-only
# device, an unknown export, the pool clean afterwards.
. "$(dirname "$0")/common.sh"
requires nbdinfo qemu-io

new_pool 65536 512
thinp create -m "$M" -d "$D" --size 8M 1 || fail "create 1"
thinp create -m "$M" -d "$D" --size 3M -r 2 || fail "create 2"
thinp message -m "$M" create_thin 3 || fail "create_thin 3"

step "nbdinfo --list: devices with an entry, sizes from the catalog"
serve -- 'nbdinfo --list --json "$uri"' >"$T/list.json" || fail "nbdinfo --list"
python3 - "$T/list.json" <<'PY' || fail "export list: $(cat "$T/list.json")"
import json, sys
j = json.load(open(sys.argv[1]))
e = {x["export-name"]: x for x in j["exports"]}
assert sorted(e) == ["1", "2"], sorted(e)
assert e["1"]["export-size"] == 8 << 20 and e["2"]["export-size"] == 3 << 20
assert e["1"]["can_multi_conn"] and e["1"]["can_fast_zero"] and e["1"]["can_fua"]
assert e["1"]["can_trim"] and e["1"]["can_zero"] and not e["1"]["is_read_only"]
assert e["2"]["is_read_only"], "device 2 has the read-only flag"
assert e["1"]["block_size_preferred"] == 4096
PY
serve -- 'nbdinfo --size "$uri"' | grep -qx $((8 << 20)) || fail "default export is not device 1"
serve export=2 -- 'nbdinfo --size "$uri"' | grep -qx $((3 << 20)) || fail "export=2 default"
serve -- 'nbdinfo "nbd+unix:///3?socket=$unixsocket"' >/dev/null 2>&1 &&
	fail "device 3 has no entry and no size: it must not be served"
serve -- 'nbdinfo "nbd+unix:///9?socket=$unixsocket"' >/dev/null 2>&1 && fail "export 9 exists?"

step "qemu-io patterns"
serve -- 'qemu-io -f raw \
	-c "write -P 0xab 0 256k" -c "write -P 0xcd 100000 5000" -c "write -P 0x11 8323072 65536" \
	-c "read -P 0xab 0 100000" -c "read -P 0xcd 100000 5000" -c "read -P 0xab 105000 157144" \
	-c "read -P 0 262144 65536" -c "read -P 0x11 8323072 65536" \
	-c "write -z 64k 64k" -c "read -P 0 64k 64k" -c "read -P 0xab 128k 128k" \
	-c "write -z -u 128k 128k" -c "read -P 0 64k 192k" \
	-c "discard 0 64k" -c "read -P 0 0 64k" -c flush \
	"nbd+unix:///1?socket=$unixsocket"' >"$T/qio.out" 2>&1 || fail "qemu-io: $(cat "$T/qio.out")"
grep -qi "pattern verification failed\|error" "$T/qio.out" && fail "qemu-io: $(cat "$T/qio.out")"

step "allocation map: block 1 zeroed without unmap stays data, the rest are holes"
serve -- 'nbdinfo --map "nbd+unix:///1?socket=$unixsocket"' | awk '{ print $1, $2, $3 }' >"$T/map"
printf '%s\n' "0 65536 3" "65536 65536 0" "131072 8192000 3" "8323072 65536 0" >"$T/map.want"
diff "$T/map.want" "$T/map" || fail "map differs"
thinp ls -m "$M" --no-headers | awk '$1 == 1 { print $2 }' | grep -qx 2 ||
	fail "device 1 should map 2 blocks: $(thinp ls -m "$M")"

step "read-only: device 2 refuses writes, nbdkit -r too"
serve -- 'qemu-io -f raw -c "write 0 4k" "nbd+unix:///2?socket=$unixsocket"' 2>&1 |
	grep -qi "read-only\|permission\|not permitted\|EPERM\|EROFS" || fail "write to read-only device 2"
NBDKIT_OPTS=-r serve -- 'nbdinfo --is read-only "nbd+unix:///1?socket=$unixsocket"' ||
	fail "nbdkit -r: device 1 not read-only"

step "fast zero: refused over a provisioned partial block, allowed otherwise; FUA writes"
serve -- 'nbdinfo --can fast-zero "$uri"' || fail "fast zero not advertised"
serve -- 'qemu-io -f raw -c "write -P 0x33 65536 65536" -c "write -z -n 65636 1000" \
	"nbd+unix:///1?socket=$unixsocket"' \
	>"$T/fz.out" 2>&1
grep -qi "not supported" "$T/fz.out" || fail "fast zero into provisioned block 1: $(cat "$T/fz.out")"
serve -- 'qemu-io -f raw -c "write -z -n -u 2000000 3000000" -c "read -P 0 2000000 3000000" \
	-c "write -f -P 0x22 4096 4096" -c "read -P 0x22 4096 4096" -c "read -P 0x33 65536 65536" \
	"nbd+unix:///1?socket=$unixsocket"' >"$T/fz.out" 2>&1 || fail "qemu-io: $(cat "$T/fz.out")"
grep -qi "failed\|error\|not supported" "$T/fz.out" && fail "fast zero / FUA: $(cat "$T/fz.out")"
thinp ls -m "$M" --no-headers | awk '$1 == 1 { print $2 }' | grep -qx 3 ||
	fail "device 1 should map 3 blocks now: $(thinp ls -m "$M")"

step "external origin: unprovisioned blocks read the origin, writes go to the pool"
head -c 2M /dev/zero | tr '\0' '\167' >"$T/origin.img"
thinp create -m "$M" -d "$D" --size 4M --origin "$T/origin.img" 4 || fail "create 4"
serve -- 'u="nbd+unix:///4?socket=$unixsocket"
	nbdinfo --map "$u" | awk "{ print \$1, \$2, \$3 }"
	qemu-io -f raw -c "read -P 0x77 0 2M" -c "read -P 0 2M 2M" -c "write -P 0x12 100000 1000" \
		-c "read -P 0x77 0 100000" -c "read -P 0x12 100000 1000" -c "read -P 0x77 101000 30072" \
		-c "write -z -n 1M 64k" "$u"' >"$T/origin.out" 2>&1
grep -qx "0 4194304 0" "$T/origin.out" || fail "origin map is not all data: $(cat "$T/origin.out")"
[ "$(grep -c "verification failed" "$T/origin.out")" = 0 ] || fail "origin reads: $(cat "$T/origin.out")"
grep -qi "not supported" "$T/origin.out" || fail "fast zero over an origin: $(cat "$T/origin.out")"
cmp -s "$T/origin.img" <(head -c 2M /dev/zero | tr '\0' '\167') || fail "the origin was written"

step "stopping nbdkit commits what no client flushed (commit_interval=0: no periodic commits)"
head -c 65536 /dev/urandom >"$T/unflushed"
thinp create -m "$M" -d "$D" --size 64K 5 || fail "create 5"
serve commit_interval=0 -- 'nbdcopy "'"$T/unflushed"'" "nbd+unix:///5?socket=$unixsocket"' ||
	fail "nbdcopy into device 5"
thinp ls -m "$M" --no-headers | awk '$1 == 5 { print $2 }' | grep -qx 1 ||
	fail "device 5 should map 1 block after nbdkit stopped: $(thinp ls -m "$M")"
serve -- 'nbdcopy "nbd+unix:///5?socket=$unixsocket" -' | cmp -s - "$T/unflushed" ||
	fail "device 5 does not hold what was written"

check_pool
echo ok
