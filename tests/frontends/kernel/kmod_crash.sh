#!/bin/bash
# thinp.ko (frontends/kernel) survives a crash: what a flush made durable is
# there afterwards, what was written after the last flush is not, and the
# metadata is consistent (thin_check, thinp check).
#
# Host: a pool with a catalog and thin 0 (16 MiB), made by thinp.
# Guest (vm.sh: Debian 12's kernel under qemu TCG): thinp.ko with
# commit_interval_ms=0 (commits only on flush), open 0; 1 MiB of payload at
# 0 and 1 MiB at 4 MiB, each with dd conv=fsync (a flush: a pool commit);
# then 1 MiB at 8 MiB with O_DIRECT (it reaches the module, which provisions
# its blocks) and no flush, and an immediate reboot (sysrq b: no unload, no
# commit), which ends the VM (qemu -no-reboot).
# Host again: thin_check and thinp check pass, and thin 0 reads the two
# flushed MiB and zeroes everywhere else: the unflushed write's blocks were
# provisioned in the uncommitted transaction only.
#
# Run by scripts/test-all.sh (step kernel-vm) or by hand, as root on Debian 12:
#   THINP_BUILDDIR=build bash tests/frontends/kernel/kmod_crash.sh
# Skips (77) as kmod_pool.sh does. THINP_VM_KEEP=1 keeps the scratch directory.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tool/common.sh"
[ -n "${THINP_VM_KEEP:-}" ] && trap - EXIT
kabi=$("$here/vm.sh" --kabi) || exit $?
kdir=${THINP_KDIR:-/usr/src/linux-headers-$kabi}
[ -f "$kdir/Makefile" ] || { echo "SKIP: no $kdir (apt-get install linux-headers-$kabi)"; exit 77; }

step "build thinp.ko against $kdir"
"$here/../../../frontends/kernel/build.sh" "$kdir" "$T/kmod" -j2 >"$T/build.log" 2>&1 ||
	{ tail -n 40 "$T/build.log"; fail "module build"; }

MIB=$((1024 * 1024))
M=$T/meta D=$T/data C=$T/meta.vol P=$T/payload
truncate -s 8M "$M"
truncate -s 64M "$D"
truncate -s 1M "$C"
head -c $((3 * MIB)) /dev/urandom >"$P"
thinp format -m "$M" --block-size 64k --data-blocks 1024 || fail "format"
thinp create -m "$M" -d "$D" --size 16M 0 || fail "create 0"
truncate -s 16M "$T/exp0"
dd if="$P" of="$T/exp0" bs=4096 count=256 conv=notrunc status=none
dd if="$P" of="$T/exp0" bs=4096 skip=256 seek=1024 count=256 conv=notrunc status=none

cat >"$T/guest.sh" <<EOF
ok() { "\$@" || { echo "GUEST-FAIL: \$*"; exit 1; }; }
ok insmod /ko/thinp.ko meta=/dev/vda data=/dev/vdb catalog=/dev/vdc commit_interval_ms=0
echo "open 0" >/dev/thinp-control || { echo "GUEST-FAIL: open 0"; exit 1; }
ok dd if=/dev/vdd of=/dev/thinp0 bs=4096 count=256 conv=fsync
ok dd if=/dev/vdd of=/dev/thinp0 bs=4096 skip=256 seek=1024 count=256 conv=fsync
# O_DIRECT: the write reaches the module, but nothing flushes it.
ok dd if=/dev/vdd of=/dev/thinp0 bs=4096 skip=512 seek=2048 count=256 oflag=direct
echo 1 >/proc/sys/kernel/sysrq
echo GUEST-CRASH
echo b >/proc/sysrq-trigger
EOF

step "guest: writes, flushes twice, writes once more, crashes"
"$here/vm.sh" --ko "$T/kmod/thinp.ko" --module libcrc32c \
	"$T/guest.sh" "$T/console.log" "$M" "$D" "$C" "$P"
rc=$?
[ $rc -eq 77 ] && exit 77
grep -E '^(GUEST-|THINP-VM)|thinp' "$T/console.log"
# The crash is the expected end: vm.sh then finds no exit status (1).
grep -q '^GUEST-CRASH' "$T/console.log" && ! grep -q '^GUEST-FAIL' "$T/console.log" &&
	! grep -q '^THINP-VM-EXIT' "$T/console.log" || fail "the guest did not reach the crash (vm.sh exit $rc)"

step "host: the pool after the crash"
verify "$M"
thinp read -m "$M" -d "$D" 0 0 $((16 * MIB)) >"$T/img0" || fail "thinp read 0"
cmp "$T/img0" "$T/exp0" || fail "thin 0 after the crash is not the flushed writes alone"
echo "PASS: after a crash the pool thinp.ko left holds what was flushed, and only that"
