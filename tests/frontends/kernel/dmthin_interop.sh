#!/bin/bash
# Interop with the Linux kernel's own dm-thin, in a VM (vm.sh: Debian 12's
# kernel under qemu TCG).
#
# Host: thinp makes a pool (64 KiB blocks) and writes random data to thin 0,
# snapshots it as thin 1, then overwrites part of thin 0 (partial blocks, so
# thinp's copy-on-write is on the path); thin 2 stays empty.
# Guest: dmsetup activates the pool with the kernel's thin-pool target on the
# two virtio disks, checksums every volume (must equal the host's expected
# images), then writes through dm-thin: to the empty thin 2, to the snapshot
# (breaking sharing mid-block), takes a snapshot 3 of thin 0 with the pool
# message, writes to thin 0 after it, sets the transaction id, checksums again,
# creates thin 4 and puts an ext4 with one file on it, and removes everything
# (the kernel commits).
# Host again: thin_check and thinp check pass, thin_dump equals thinp dump,
# thinp ls lists the four devices, the transaction id is the guest's, and
# thinp read of every volume equals the expected image; thin 4 read by thinp
# passes e2fsck -fn and its file (debugfs) is the bytes the guest wrote.
# Last, the guest lets dm-thin format a pool on a zeroed metadata disk and
# writes to a thin of it; thin_check, thinp check and thinp dump/read agree.
#
# Run by scripts/test-all.sh (step kernel-vm) or by hand, as root on Debian 12:
#   THINP_BUILDDIR=build bash tests/frontends/kernel/dmthin_interop.sh
# Skips (77) where vm.sh cannot boot a VM or thin-provisioning-tools is
# missing. THINP_VM_KEEP=1 keeps the scratch directory.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tool/common.sh"
[ -n "${THINP_VM_KEEP:-}" ] && trap - EXIT
for b in dmsetup mkfs.ext4 e2fsck debugfs; do
	command -v $b >/dev/null || { echo "SKIP: $b not found (apt-get install dmsetup e2fsprogs)"; exit 77; }
done

MIB=$((1024 * 1024))
VOL=$((16 * MIB))        # every thin volume's size
SECTORS=$((VOL / 512))
M=$T/meta D=$T/data P=$T/payload M2=$T/meta2 D2=$T/data2
truncate -s 8M "$M" "$M2"
truncate -s 64M "$D"
truncate -s 32M "$D2"

# exp_write IMAGE OFFSET < DATA: what a write does to the expected image.
exp_write() {
	dd of="$1" bs=4096 seek=$(($2 / 4096)) conv=notrunc status=none
}
# cut_file FILE OFFSET LENGTH: bytes of FILE (4 KiB aligned).
cut_file() {
	dd if="$1" bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) status=none
}

step "host: pool, thin 0 with data, snapshot 1, overwrite thin 0, empty thin 2"
head -c $((6 * MIB)) /dev/urandom >"$T/host"
head -c $((2 * MIB)) /dev/urandom >"$P"
for i in 0 1 2 3; do truncate -s "$VOL" "$T/exp$i"; done
thinp format -m "$M" --block-size 64k --data-blocks 1024 || fail "format"
thinp message -m "$M" "create_thin 0" || fail "create_thin 0"
# write DEV OFFSET FILE FILE_OFFSET LENGTH: through thinp and in the expected image.
write() {
	cut_file "$3" "$4" "$5" | thinp write -m "$M" -d "$D" "$1" "$2" || fail "thinp write $*"
	cut_file "$3" "$4" "$5" | exp_write "$T/exp$1" "$2"
}
write 0 0 "$T/host" 0 $((4 * MIB))
write 0 $((10 * MIB)) "$T/host" $((4 * MIB)) $MIB
thinp message -m "$M" "create_snap 1 0" || fail "create_snap 1 0"
cp "$T/exp0" "$T/exp1"
# 100 KiB from 196 KiB: the tail of block 3 and the head of block 4.
write 0 $((196 * 1024)) "$T/host" $((5 * MIB)) $((100 * 1024))
thinp message -m "$M" "create_thin 2" || fail "create_thin 2"
verify "$M"
for i in 0 1 2; do
	[ "$(thinp read -m "$M" -d "$D" $i 0 $VOL | sum /dev/stdin)" = "$(sum "$T/exp$i")" ] ||
		fail "host: thinp read of thin $i differs from the expected image before the VM"
	before[i]=$(sum "$T/exp$i")
done

# What the guest writes, from the payload disk (/dev/vdc), mirrored into the
# expected images: 512 KiB to thin 2 at 3 MiB; 68 KiB to the snapshot thin 1
# at 0 (one whole shared block, then 4 KiB of the next); after snapshot 3 of
# thin 0, 64 KiB to thin 0 at 8 MiB (unmapped before: thin 3 must not see it).
cut_file "$P" 0 $((512 * 1024)) | exp_write "$T/exp2" $((3 * MIB))
cut_file "$P" $((512 * 1024)) $((68 * 1024)) | exp_write "$T/exp1" 0
cp "$T/exp0" "$T/exp3"
cut_file "$P" $MIB $((64 * 1024)) | exp_write "$T/exp0" $((8 * MIB))
for i in 0 1 2 3; do after[i]=$(sum "$T/exp$i"); done

cat >"$T/guest.sh" <<EOF
ok() { "\$@" || { echo "GUEST-FAIL: \$*"; exit 1; }; }
ok dmsetup create pool --table "0 $((64 * MIB / 512)) thin-pool /dev/vda /dev/vdb 128 16"
for d in 0 1 2; do ok dmsetup create thin\$d --table "0 $SECTORS thin /dev/mapper/pool \$d"; done
echo "GUEST-STATUS \$(dmsetup status pool)"
for d in 0 1 2; do echo "GUEST-SUM before \$d \$(md5sum </dev/mapper/thin\$d | cut -d' ' -f1)"; done
ok dd if=/dev/vdc of=/dev/mapper/thin2 bs=4096 skip=0 count=128 seek=768 conv=fsync
ok dd if=/dev/vdc of=/dev/mapper/thin1 bs=4096 skip=128 count=17 seek=0 conv=fsync
ok dmsetup suspend thin0
ok dmsetup message pool 0 "create_snap 3 0"
ok dmsetup resume thin0
ok dmsetup create thin3 --table "0 $SECTORS thin /dev/mapper/pool 3"
ok dd if=/dev/vdc of=/dev/mapper/thin0 bs=4096 skip=256 count=16 seek=2048 conv=fsync
ok dmsetup message pool 0 "set_transaction_id 0 7"
for d in 0 1 2 3; do echo "GUEST-SUM after \$d \$(md5sum </dev/mapper/thin\$d | cut -d' ' -f1)"; done
ok dmsetup message pool 0 "create_thin 4"
ok dmsetup create thin4 --table "0 $SECTORS thin /dev/mapper/pool 4"
ok mkfs.ext4 -q -F /dev/mapper/thin4
mkdir -p /mnt
ok mount -t ext4 /dev/mapper/thin4 /mnt
ok dd if=/dev/vdc of=/mnt/f bs=4096 skip=384 count=64 conv=fsync
ok umount /mnt
echo "GUEST-STATUS \$(dmsetup status pool)"
for d in 4 3 2 1 0; do ok dmsetup remove thin\$d; done
ok dmsetup remove pool
# A pool the kernel formats itself (zeroed metadata disk /dev/vdd).
ok dmsetup create pool2 --table "0 $((32 * MIB / 512)) thin-pool /dev/vdd /dev/vde 128 16"
ok dmsetup message pool2 0 "create_thin 0"
ok dmsetup create fresh --table "0 $SECTORS thin /dev/mapper/pool2 0"
ok dd if=/dev/vdc of=/dev/mapper/fresh bs=4096 skip=0 count=100 seek=5 conv=fsync
ok dmsetup remove fresh
ok dmsetup remove pool2
echo GUEST-OK
EOF

step "guest: the kernel's dm-thin on the same two files"
"$here/vm.sh" --module dm-thin-pool --module ext4 \
	--bin "$(command -v dmsetup)" --bin "$(command -v mkfs.ext4)" \
	"$T/guest.sh" "$T/console.log" "$M" "$D" "$P" "$M2" "$D2"
rc=$?
[ $rc -eq 77 ] && exit 77
grep -E '^(GUEST-|THINP-VM)' "$T/console.log"
[ $rc -eq 0 ] && grep -q '^GUEST-OK' "$T/console.log" || fail "guest failed (vm.sh exit $rc)"
for phase in before after; do
	for i in 0 1 2 3; do
		[ $phase = before ] && [ $i = 3 ] && continue
		eval "want=\${$phase[i]}"
		got=$(sed -n "s/^GUEST-SUM $phase $i \([0-9a-f]*\).*/\1/p" "$T/console.log")
		[ "$got" = "$want" ] || fail "guest: thin $i $phase the writes reads $got, expected $want"
	done
done

step "host: the pool the kernel left"
verify "$M"
ids=$(thinp ls -m "$M" --no-headers | awk '{ print $1 }' | tr '\n' ' ')
[ "$ids" = "0 1 2 3 4 " ] || fail "thinp ls lists devices: $ids"
[ "$(thinp status -m "$M" | cut -d' ' -f1)" = 7 ] || fail "transaction id: $(thinp status -m "$M")"
for i in 0 1 2 3; do
	[ "$(thinp read -m "$M" -d "$D" $i 0 $VOL | sum /dev/stdin)" = "${after[i]}" ] ||
		fail "host: thinp read of thin $i differs from what the guest wrote"
done
thinp read -m "$M" -d "$D" 4 0 $VOL >"$T/fs.img" || fail "thinp read of thin 4"
e2fsck -fn "$T/fs.img" || fail "e2fsck of the ext4 the guest made on thin 4"
[ "$(debugfs -R "cat /f" "$T/fs.img" 2>/dev/null | sum /dev/stdin)" = \
	"$(cut_file "$P" $((1536 * 1024)) $((256 * 1024)) | sum /dev/stdin)" ] ||
	fail "the file the guest wrote on thin 4's ext4 reads differently through thinp"
step "host: the pool the kernel formatted"
verify "$M2"
[ "$(thinp read -m "$M2" -d "$D2" 0 0 $VOL | sum /dev/stdin)" = \
	"$( (head -c $((5 * 4096)) /dev/zero; cut_file "$P" 0 $((100 * 4096));
	    head -c $((VOL - 105 * 4096)) /dev/zero) | sum /dev/stdin)" ] ||
	fail "thinp read of the kernel-formatted pool's thin 0"
echo "PASS: the kernel's dm-thin read thinp's pool and thinp reads the kernel's writes"
