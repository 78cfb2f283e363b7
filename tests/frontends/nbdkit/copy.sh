#!/bin/bash
# Copies through the plugin with Debian's clients: nbdcopy from a sparse
# source into a thin device and from the device into a file (content equal,
# allocation kept: the device provisions exactly the blocks holding the
# source's data, the file holds exactly the source's data and has a hole
# wherever the device has one), qemu-img convert
# both ways with qemu-img compare, and the pool clean afterwards.
. "$(dirname "$0")/common.sh"
requires nbdcopy nbdinfo qemu-img qemu-io python3

BS=65536
new_pool $BS 2048
thinp create -m "$M" -d "$D" --size 96M 1 || fail "create 1"
thinp create -m "$M" -d "$D" --size 20M 2 || fail "create 2"
SRC=(sparse-random 96M seed=4242 percent=25 runlength=524288 random-content=true)

# map_json URI OUT: base:allocation extents as JSON.
map_json() {
	nbdinfo --map --json "$1" >"$2" || fail "nbdinfo --map $1"
}

step "nbdcopy: sparse source -> thin device 1"
serve -- 'nbdcopy -- [ nbdkit '"${SRC[*]}"' ] "nbd+unix:///1?socket=$unixsocket" &&
	nbdinfo --map --json "nbd+unix:///1?socket=$unixsocket" >'"$T/dev.map"' &&
	nbdcopy "nbd+unix:///1?socket=$unixsocket" - | sha256sum >'"$T/dev.sum" ||
	fail "copy into the device"
nbdkit -U - "${SRC[@]}" --run 'nbdinfo --map --json "$uri" >'"$T/src.map"'; nbdcopy "$uri" - | sha256sum' \
	>"$T/src.sum" || fail "read the source"
cmp -s "$T/src.sum" "$T/dev.sum" || fail "content differs after nbdcopy into the device"
python3 - "$T/src.map" "$T/dev.map" $BS <<'PY' || fail "allocation not kept"
import json, sys
src, dev, bs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
blocks = set()
for e in src:
    if e["type"] == 0:
        blocks.update(range(e["offset"] // bs, (e["offset"] + e["length"] - 1) // bs + 1))
data = sum(e["length"] for e in dev if e["type"] == 0)
assert data == len(blocks) * bs, (data, len(blocks) * bs)
assert 0 < data < 96 << 20
print("device data %d bytes in %d blocks" % (data, len(blocks)))
PY
mapped=$(thinp ls -m "$M" --no-headers | awk '$1 == 1 { print $2 }')
python3 -c "import json,sys; d=json.load(open('$T/dev.map')); sys.exit(sum(e['length'] for e in d if e['type']==0) != $mapped*$BS)" ||
	fail "thinp ls mapped blocks ($mapped) disagree with the map: $(thinp ls -m "$M" 2>&1)"

step "nbdcopy: thin device 1 -> sparse file"
serve -- 'nbdcopy "nbd+unix:///1?socket=$unixsocket" '"$T/out.raw" || fail "copy out of the device"
sha256sum <"$T/out.raw" | cmp -s - "$T/dev.sum" || fail "file content differs"
nbdkit -U - file "$T/out.raw" --run 'nbdinfo --map --json "$uri"' >"$T/file.map" ||
	fail "map of the file"
# nbdcopy skips the zeroes inside provisioned blocks: the file holds the
# source's data exactly, and a hole wherever the device has one.
python3 - "$T/src.map" "$T/dev.map" "$T/file.map" <<'PY' || fail "file allocation is not the source's"
import json, sys
src, dev, f = (json.load(open(p)) for p in sys.argv[1:4])
def data(m):
    return sum(e["length"] for e in m if e["type"] == 0)
assert data(f) == data(src), (data(f), data(src))
def holes(m):
    return [(e["offset"], e["offset"] + e["length"]) for e in m if e["type"] & 1]
fh = holes(f)
for a, b in holes(dev):
    assert any(x <= a and b <= y for x, y in fh), ("device hole not a file hole", a, b)
PY

step "qemu-img convert: qcow2 -> thin device 2 -> qcow2"
qemu-img create -q -f qcow2 "$T/src.qcow2" 20M || fail "qemu-img create"
qemu-io -f qcow2 -c "write -P 0x5a 0 1M" -c "write -P 0xa5 5M 3M" -c "write -P 0x01 19M 512k" \
	"$T/src.qcow2" >/dev/null || fail "qemu-io on the qcow2"
serve -- 'qemu-img convert -n -f qcow2 -O raw '"$T/src.qcow2"' "nbd+unix:///2?socket=$unixsocket" &&
	qemu-img compare -f qcow2 -F raw '"$T/src.qcow2"' "nbd+unix:///2?socket=$unixsocket" &&
	qemu-img convert -f raw -O qcow2 "nbd+unix:///2?socket=$unixsocket" '"$T/back.qcow2"' &&
	qemu-io -f raw -c "read -P 0x5a 0 1M" -c "read -P 0 1M 4M" -c "read -P 0xa5 5M 3M" \
		-c "read -P 0x01 19M 512k" "nbd+unix:///2?socket=$unixsocket"' >"$T/qimg.out" 2>&1 ||
	fail "qemu-img convert/compare: $(cat "$T/qimg.out")"
grep -qi "fail" "$T/qimg.out" && fail "patterns: $(cat "$T/qimg.out")"
qemu-img compare -q "$T/src.qcow2" "$T/back.qcow2" || fail "qcow2 round trip differs"
mapped=$(thinp ls -m "$M" --no-headers | awk '$1 == 2 { print $2 }')
[ "$mapped" -le 72 ] || fail "device 2 maps $mapped blocks for 4.5 MiB of data"

check_pool
echo ok
