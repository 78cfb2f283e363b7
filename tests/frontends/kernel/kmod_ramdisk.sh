#!/bin/bash
# The out-of-tree module frontends/kernel (thinp.ko) builds with Kbuild
# against Debian's linux-headers for the kernel vm.sh boots, loads in that
# VM, and serves a working block device:
# - /dev/thinp0 has the size the ram_mib parameter asks for, 4 KiB blocks;
# - bytes written (O_DIRECT-free dd + fsync, page cache dropped) read back;
# - blkdiscard zeroes the range; a write past the end fails;
# - mkfs.ext4, mount, a file, umount, e2fsck -fn clean, remount, same file;
# - rmmod unloads it.
# Run by scripts/test-all.sh (step kernel-vm) or by hand as root:
#   bash tests/frontends/kernel/kmod_ramdisk.sh
# Skips (77) without a VM (see vm.sh) or without linux-headers-ABI
# (THINP_KDIR overrides the headers directory).
set -u
export PATH="$PATH:/usr/sbin:/sbin"
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../../frontends/kernel
kabi=$("$here/vm.sh" --kabi) || exit $?
kdir=${THINP_KDIR:-/usr/src/linux-headers-$kabi}
[ -f "$kdir/Makefile" ] || { echo "SKIP: no $kdir (apt-get install linux-headers-$kabi)"; exit 77; }
for b in mkfs.ext4 e2fsck; do
	command -v $b >/dev/null || { echo "SKIP: $b not found (apt-get install e2fsprogs)"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/thinp-kmod.XXXXXX")
[ -n "${THINP_VM_KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
fail() {
	echo "FAIL: $* (files in $T)"
	trap - EXIT
	exit 1
}

echo "== build thinp.ko against $kdir"
mkdir "$T/kmod" && cp "$src"/Kbuild "$src"/*.c "$src"/*.h "$T/kmod/" || fail "copy the module sources"
make -C "$kdir" M="$T/kmod" modules >"$T/build.log" 2>&1 || { cat "$T/build.log"; fail "module build"; }
modinfo -F vermagic "$T/kmod/thinp.ko" | grep -q "^$kabi " || fail "vermagic is not $kabi"

MIB=$((1024 * 1024))
head -c $((2 * MIB)) /dev/urandom >"$T/payload"
want=$(head -c $MIB "$T/payload" | md5sum | cut -d' ' -f1)
zero=$(head -c $MIB /dev/zero | md5sum | cut -d' ' -f1)
file=$(tail -c $MIB "$T/payload" | md5sum | cut -d' ' -f1)
cat >"$T/guest.sh" <<EOF
ok() { "\$@" || { echo "GUEST-FAIL: \$*"; exit 1; }; }
check() { [ "\$2" = "\$3" ] || { echo "GUEST-FAIL: \$1: got \$2, expected \$3"; exit 1; }; }
region() { dd if=/dev/thinp0 bs=4096 skip=1024 count=256 2>/dev/null | md5sum | cut -d' ' -f1; }
ok insmod /ko/thinp.ko ram_mib=32
check size "\$(cat /sys/block/thinp0/size)" 65536
check block_size "\$(cat /sys/block/thinp0/queue/logical_block_size)" 4096
echo "GUEST-TAINT \$(cat /proc/sys/kernel/tainted)"
ok dd if=/dev/vda of=/dev/thinp0 bs=4096 count=256 seek=1024 conv=fsync
echo 3 >/proc/sys/vm/drop_caches
check readback "\$(region)" $want
ok blkdiscard -o $((4 * MIB)) -l $MIB /dev/thinp0
echo 3 >/proc/sys/vm/drop_caches
check discard "\$(region)" $zero
dd if=/dev/vda of=/dev/thinp0 bs=4096 count=1 seek=8192 conv=fsync 2>/dev/null &&
	{ echo "GUEST-FAIL: a write past the end succeeded"; exit 1; }
ok mkfs.ext4 -q -F /dev/thinp0
mkdir -p /mnt
ok mount -t ext4 /dev/thinp0 /mnt
ok dd if=/dev/vda of=/mnt/f bs=4096 skip=256 count=256 conv=fsync
ok umount /mnt
ok e2fsck -fn /dev/thinp0
ok mount -t ext4 -o ro /dev/thinp0 /mnt
check file "\$(md5sum </mnt/f | cut -d' ' -f1)" $file
ok umount /mnt
ok rmmod thinp
[ -e /sys/block/thinp0 ] && { echo "GUEST-FAIL: /dev/thinp0 still there"; exit 1; }
echo GUEST-OK
EOF

echo "== load it in the VM"
"$here/vm.sh" --ko "$T/kmod/thinp.ko" --module ext4 \
	--bin "$(command -v mkfs.ext4)" --bin "$(command -v e2fsck)" \
	"$T/guest.sh" "$T/console.log" "$T/payload"
rc=$?
[ $rc -eq 77 ] && exit 77
grep -E '^(GUEST-|THINP-VM)|thinp' "$T/console.log"
[ $rc -eq 0 ] && grep -q '^GUEST-OK' "$T/console.log" || fail "guest failed (vm.sh exit $rc)"
echo "PASS: thinp.ko built against $kabi, loaded, served /dev/thinp0, unloaded"
