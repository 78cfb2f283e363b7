#!/bin/bash
# thinp.ko (frontends/kernel) serves thin volumes of a pool thinp made, in a
# VM (vm.sh: Debian 12's kernel under qemu TCG), and leaves a pool that
# thin-provisioning-tools, thinp and the kernel's own dm-thin all read alike.
#
# Host: thinp.ko is built with Kbuild against linux-headers for the VM's
# kernel (vermagic checked); thinp formats a pool (64 KiB blocks) with a
# catalog, creates thin 0 (32 MiB, empty) and thin 2 (16 MiB) and writes
# random data to thin 2, and creates thin 3 read-only in the catalog.
# Guest, module phase: insmod thinp.ko on the virtio disks (meta, data,
# catalog); through /dev/thinp-control: open 0 (size from the catalog),
# mkfs.ext4, mount, files a and b, umount; create_snap 1 0 (a second one
# must fail with EEXIST); mount 0 again, overwrite the start of a, add c,
# umount; open 1 and 2; thin 2 must read what the host wrote; raw writes to
# thin 2 (dd conv=fsync: flushes), a blkdiscard of one whole pool block,
# which then reads zeroes; e2fsck -fn of thins 0 and 1; md5 of each volume;
# a close of a volume held open fails with EBUSY; thin 3 is served
# read-only (a write fails); close all, open 0 again, rmmod with it served
# (the last commit). Then, in the same VM, the kernel's dm-thin activates the same two
# disks and must read the same md5s.
# Host again: thin_check and thinp check pass and thin_dump equals thinp
# dump; thinp ls lists 0 1 2 3; thinp read of each volume has the guest's md5;
# thin 2 equals the expected image byte for byte; in the images of thins 0
# and 1, e2fsck -fn passes and a, b, c (debugfs) are the payload bytes each
# must hold (the snapshot has the old a and no c).
#
# Run by scripts/test-all.sh (step kernel-vm) or by hand, as root on Debian 12:
#   THINP_BUILDDIR=build bash tests/frontends/kernel/kmod_pool.sh
# Skips (77) without a VM (vm.sh), linux-headers for its kernel (THINP_KDIR
# overrides the directory), thin-provisioning-tools or e2fsprogs/dmsetup.
# THINP_VM_KEEP=1 keeps the scratch directory.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tool/common.sh"
[ -n "${THINP_VM_KEEP:-}" ] && trap - EXIT
for b in dmsetup mkfs.ext4 e2fsck debugfs; do
	command -v $b >/dev/null || { echo "SKIP: $b not found (apt-get install dmsetup e2fsprogs)"; exit 77; }
done
kabi=$("$here/vm.sh" --kabi) || exit $?
kdir=${THINP_KDIR:-/usr/src/linux-headers-$kabi}
[ -f "$kdir/Makefile" ] || { echo "SKIP: no $kdir (apt-get install linux-headers-$kabi)"; exit 77; }

step "build thinp.ko against $kdir"
"$here/../../../frontends/kernel/build.sh" "$kdir" "$T/kmod" -j2 >"$T/build.log" 2>&1 ||
	{ tail -n 40 "$T/build.log"; fail "module build"; }
modinfo -F vermagic "$T/kmod/thinp.ko" | grep -q "^$kabi " || fail "vermagic is not $kabi"

MIB=$((1024 * 1024))
KIB=1024
M=$T/meta D=$T/data C=$T/meta.vol P=$T/payload
truncate -s 8M "$M"
truncate -s 64M "$D"
truncate -s 1M "$C"
head -c $((4 * MIB)) /dev/urandom >"$P"
# cut_file FILE OFFSET LENGTH: bytes of FILE (4 KiB aligned).
cut_file() {
	dd if="$1" bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) status=none
}
psum() {
	cut_file "$P" "$1" "$2" | md5sum | cut -d' ' -f1
}

step "host: pool with a catalog, thin 0 (empty), thin 2 (data)"
thinp format -m "$M" --block-size 64k --data-blocks 1024 || fail "format"
thinp create -m "$M" -d "$D" --size 32M 0 || fail "create 0"
thinp create -m "$M" -d "$D" --size 16M 2 || fail "create 2"
thinp create -m "$M" -d "$D" --size 4M --read-only 3 || fail "create 3"
truncate -s 16M "$T/exp2"
head -c $((3 * MIB)) /dev/urandom >"$T/host"
thinp write -m "$M" -d "$D" 2 $MIB <"$T/host" || fail "thinp write 2"
dd if="$T/host" of="$T/exp2" bs=4096 seek=256 conv=notrunc status=none
host2=$(sum "$T/exp2")
verify "$M"
# What the guest does to thin 2, mirrored: 100 KiB of payload at 3 MiB + 8 KiB
# (inside a block the host mapped), 64 KiB at 10 MiB (unmapped), then a
# discard of the pool block at 2 MiB (mapped by the host).
cut_file "$P" $((3 * MIB)) $((100 * KIB)) |
	dd of="$T/exp2" bs=4096 seek=$(((3 * MIB + 8 * KIB) / 4096)) conv=notrunc status=none
cut_file "$P" $((3 * MIB + 512 * KIB)) $((64 * KIB)) |
	dd of="$T/exp2" bs=4096 seek=$((10 * MIB / 4096)) conv=notrunc status=none
dd if=/dev/zero of="$T/exp2" bs=4096 seek=$((2 * MIB / 4096)) count=16 conv=notrunc status=none
want2=$(sum "$T/exp2")
zero64k=$(head -c $((64 * KIB)) /dev/zero | md5sum | cut -d' ' -f1)

cat >"$T/guest.sh" <<EOF
ok() { "\$@" || { echo "GUEST-FAIL: \$*"; exit 1; }; }
check() { [ "\$2" = "\$3" ] || { echo "GUEST-FAIL: \$1: got \$2, expected \$3"; exit 1; }; }
msg() { echo "\$1" >/dev/thinp-control || { echo "GUEST-FAIL: message \$1"; exit 1; }; }
md5() { md5sum <"\$1" | cut -d' ' -f1; }
ok insmod /ko/thinp.ko meta=/dev/vda data=/dev/vdb catalog=/dev/vdc
echo "GUEST-TAINT \$(cat /proc/sys/kernel/tainted)"
msg "open 0"
check size0 "\$(cat /sys/block/thinp0/size)" $((32 * MIB / 512))
check discard_granularity "\$(cat /sys/block/thinp0/queue/discard_granularity)" 65536
ok mkfs.ext4 -q -F /dev/thinp0
mkdir -p /mnt
ok mount -t ext4 /dev/thinp0 /mnt
ok dd if=/dev/vdd of=/mnt/a bs=4096 count=128 conv=fsync
ok dd if=/dev/vdd of=/mnt/b bs=4096 skip=128 count=200 conv=fsync
ok umount /mnt
msg "create_snap 1 0"
echo "create_snap 1 0" >/dev/thinp-control 2>/dev/null && { echo "GUEST-FAIL: a second create_snap 1 succeeded"; exit 1; }
ok mount -t ext4 /dev/thinp0 /mnt
ok dd if=/dev/vdd of=/mnt/a bs=4096 skip=328 count=16 conv=notrunc,fsync
ok dd if=/dev/vdd of=/mnt/c bs=4096 skip=344 count=64 conv=fsync
ok umount /mnt
msg "open 1"
msg "open 2"
check size1 "\$(cat /sys/block/thinp1/size)" $((32 * MIB / 512))
check host2 "\$(md5 /dev/thinp2)" $host2
ok dd if=/dev/vdd of=/dev/thinp2 bs=4096 skip=768 count=25 seek=770 conv=fsync
ok dd if=/dev/vdd of=/dev/thinp2 bs=4096 skip=896 count=16 seek=2560 conv=fsync
ok blkdiscard -o $((2 * MIB)) -l $((64 * KIB)) /dev/thinp2
echo 3 >/proc/sys/vm/drop_caches
check discarded "\$(dd if=/dev/thinp2 bs=4096 skip=512 count=16 2>/dev/null | md5sum | cut -d' ' -f1)" $zero64k
check thin2 "\$(md5 /dev/thinp2)" $want2
ok e2fsck -fn /dev/thinp0
ok e2fsck -fn /dev/thinp1
for d in 0 1 2; do echo "GUEST-SUM kmod \$d \$(md5 /dev/thinp\$d)"; done
ok mount -t ext4 -o ro /dev/thinp1 /mnt
echo "close 1" >/dev/thinp-control 2>/dev/null && { echo "GUEST-FAIL: close of a mounted volume succeeded"; exit 1; }
ok umount /mnt
msg "open 3"
check ro3 "\$(cat /sys/block/thinp3/ro)" 1
dd if=/dev/vdd of=/dev/thinp3 bs=4096 count=1 conv=fsync 2>/dev/null &&
	{ echo "GUEST-FAIL: a write to read-only thin 3 succeeded"; exit 1; }
for d in 0 1 2 3; do msg "close \$d"; done
[ -e /sys/block/thinp0 ] && { echo "GUEST-FAIL: /dev/thinp0 still there after close"; exit 1; }
msg "open 0"
ok rmmod thinp
[ -e /dev/thinp-control ] && { echo "GUEST-FAIL: /dev/thinp-control still there"; exit 1; }
# The kernel's own dm-thin on the same two disks.
ok dmsetup create pool --table "0 $((64 * MIB / 512)) thin-pool /dev/vda /dev/vdb 128 16"
ok dmsetup create thin0 --table "0 $((32 * MIB / 512)) thin /dev/mapper/pool 0"
ok dmsetup create thin1 --table "0 $((32 * MIB / 512)) thin /dev/mapper/pool 1"
ok dmsetup create thin2 --table "0 $((16 * MIB / 512)) thin /dev/mapper/pool 2"
echo "GUEST-STATUS \$(dmsetup status pool)"
for d in 0 1 2; do echo "GUEST-SUM dm \$d \$(md5 /dev/mapper/thin\$d)"; done
for d in 2 1 0; do ok dmsetup remove thin\$d; done
ok dmsetup remove pool
echo GUEST-OK
EOF

step "guest: thinp.ko serves the pool, then dm-thin reads it"
"$here/vm.sh" --timeout 400 --ko "$T/kmod/thinp.ko" --module libcrc32c --module ext4 \
	--module dm-thin-pool --bin "$(command -v dmsetup)" --bin "$(command -v mkfs.ext4)" \
	--bin "$(command -v e2fsck)" "$T/guest.sh" "$T/console.log" "$M" "$D" "$C" "$P"
rc=$?
[ $rc -eq 77 ] && exit 77
grep -E '^(GUEST-|THINP-VM)|thinp' "$T/console.log"
[ $rc -eq 0 ] && grep -q '^GUEST-OK' "$T/console.log" || fail "guest failed (vm.sh exit $rc)"
for i in 0 1 2; do
	kmod[i]=$(sed -n "s/^GUEST-SUM kmod $i \([0-9a-f]*\).*/\1/p" "$T/console.log")
	dm=$(sed -n "s/^GUEST-SUM dm $i \([0-9a-f]*\).*/\1/p" "$T/console.log")
	[ -n "${kmod[i]}" ] && [ "$dm" = "${kmod[i]}" ] ||
		fail "thin $i: dm-thin reads $dm, thinp.ko served ${kmod[i]}"
done

step "host: the pool thinp.ko left"
verify "$M"
ids=$(thinp ls -m "$M" --no-headers | awk '{ print $1 }' | tr '\n' ' ')
[ "$ids" = "0 1 2 3 " ] || fail "thinp ls lists devices: $ids"
for i in 0 1 2; do
	size=$((i == 2 ? 16 * MIB : 32 * MIB))
	thinp read -m "$M" -d "$D" $i 0 $size >"$T/img$i" || fail "thinp read $i"
	[ "$(sum "$T/img$i")" = "${kmod[i]}" ] || fail "thinp read of thin $i differs from what the guest read"
done
cmp "$T/img2" "$T/exp2" || fail "thin 2 differs from the expected image"
for i in 0 1; do
	e2fsck -fn "$T/img$i" >"$T/fsck$i.log" 2>&1 || { cat "$T/fsck$i.log"; fail "e2fsck of thin $i"; }
done
fsum() {
	debugfs -R "cat /$2" "$T/img$1" 2>/dev/null | md5sum | cut -d' ' -f1
}
a_new=$( (cut_file "$P" $((328 * 4096)) $((16 * 4096)); cut_file "$P" $((16 * 4096)) $((112 * 4096))) |
	md5sum | cut -d' ' -f1)
[ "$(fsum 1 a)" = "$(psum 0 $((128 * 4096)))" ] || fail "snapshot's a is not the old a"
[ "$(fsum 1 b)" = "$(psum $((128 * 4096)) $((200 * 4096)))" ] || fail "snapshot's b"
debugfs -R "stat /c" "$T/img1" 2>&1 | grep -q "not found" || fail "the snapshot has c"
[ "$(fsum 0 a)" = "$a_new" ] || fail "thin 0's a is not the overwritten a"
[ "$(fsum 0 b)" = "$(psum $((128 * 4096)) $((200 * 4096)))" ] || fail "thin 0's b"
[ "$(fsum 0 c)" = "$(psum $((344 * 4096)) $((64 * 4096)))" ] || fail "thin 0's c"
echo "PASS: thinp.ko served a pool thinp made; thinp, thin_check and dm-thin agree on what it wrote"
