#!/bin/bash
# Benchmark: thinp.ko against the kernel's own dm-thin, in one VM (vm.sh:
# Debian 12's kernel under qemu TCG, so absolute figures mean little; the
# ratio compares the two kernel paths on the same emulated machine).
#
# Two fresh pools (64 KiB blocks, 128 MiB data), one per driver. In each, a
# new 64 MiB thin volume: a sequential write of 64 MiB (dd bs=1M
# conv=fsync: provisioning every block), the page cache dropped, a
# sequential read of it, then 4 KiB writes at 1024 random offsets (dd
# conv=fsync each 64: overwrites of provisioned blocks; one dd process per
# write, whose start-up both sides pay). Prints MiB/s (and writes/s) for
# each and the ratio thinp.ko / dm-thin (above 1: thinp.ko is faster).
#
#   THINP_BUILDDIR=build bash tests/frontends/kernel/bench_kmod.sh
# Not a test (no pass or fail beyond the runs working); skips (77) as
# kmod_pool.sh does.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../tool/common.sh"
[ -n "${THINP_VM_KEEP:-}" ] && trap - EXIT
kabi=$("$here/vm.sh" --kabi) || exit $?
kdir=${THINP_KDIR:-/usr/src/linux-headers-$kabi}
[ -f "$kdir/Makefile" ] || { echo "SKIP: no $kdir (apt-get install linux-headers-$kabi)"; exit 77; }
command -v dmsetup >/dev/null || { echo "SKIP: dmsetup not found"; exit 77; }
"$here/../../../frontends/kernel/build.sh" "$kdir" "$T/kmod" -j2 >"$T/build.log" 2>&1 ||
	{ tail -n 40 "$T/build.log"; fail "module build"; }

for p in a b; do
	truncate -s 16M "$T/$p.meta"
	truncate -s 128M "$T/$p.data"
done
truncate -s 1M "$T/a.vol"
thinp format -m "$T/a.meta" --block-size 64k --data-blocks 2048 || fail "format"
SECTORS=$((64 * 1024 * 1024 / 512))

cat >"$T/guest.sh" <<EOF
ok() { "\$@" || { echo "GUEST-FAIL: \$*"; exit 1; }; }
# Centiseconds since boot.
now() { read -r up _ </proc/uptime; cs=\${up#*.}; echo \$((\${up%.*} * 100 + \${cs#0})); }
# run NAME DEV: the three measurements on DEV.
run() {
	t0=\$(now)
	ok dd if=/dev/zero of=\$2 bs=1M count=64 conv=fsync 2>/dev/null
	t1=\$(now)
	echo 3 >/proc/sys/vm/drop_caches
	ok dd if=\$2 of=/dev/null bs=1M 2>/dev/null
	t2=\$(now)
	i=0 seed=12345
	while [ \$i -lt 16 ]; do
		j=0
		while [ \$j -lt 63 ]; do
			seed=\$(( (seed * 1103515245 + 12345) % 2147483648 ))
			dd if=/dev/zero of=\$2 bs=4096 count=1 seek=\$((seed % 16384)) conv=notrunc 2>/dev/null
			j=\$((j + 1))
		done
		dd if=/dev/zero of=\$2 bs=4096 count=1 seek=\$i conv=notrunc,fsync 2>/dev/null
		i=\$((i + 1))
	done
	t3=\$(now)
	echo "GUEST-BENCH \$1 \$((t1 - t0)) \$((t2 - t1)) \$((t3 - t2))"
}
ok insmod /ko/thinp.ko meta=/dev/vda data=/dev/vdb catalog=/dev/vdc
echo "create_thin 0 64m" >/dev/thinp-control || { echo "GUEST-FAIL: create_thin"; exit 1; }
echo "open 0" >/dev/thinp-control || { echo "GUEST-FAIL: open"; exit 1; }
run thinp.ko /dev/thinp0
echo "close 0" >/dev/thinp-control
ok rmmod thinp
ok dmsetup create pool --table "0 $((128 * 1024 * 1024 / 512)) thin-pool /dev/vdd /dev/vde 128 16"
ok dmsetup message pool 0 "create_thin 0"
ok dmsetup create thin0 --table "0 $SECTORS thin /dev/mapper/pool 0"
run dm-thin /dev/mapper/thin0
ok dmsetup remove thin0
ok dmsetup remove pool
echo GUEST-OK
EOF

"$here/vm.sh" --timeout 900 --ko "$T/kmod/thinp.ko" --module libcrc32c --module dm-thin-pool \
	--bin "$(command -v dmsetup)" "$T/guest.sh" "$T/console.log" \
	"$T/a.meta" "$T/a.data" "$T/a.vol" "$T/b.meta" "$T/b.data"
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] && grep -q '^GUEST-OK' "$T/console.log" || { grep GUEST "$T/console.log"; fail "guest failed (vm.sh exit $rc)"; }
read -r _ _ kw kr kx < <(grep '^GUEST-BENCH thinp.ko' "$T/console.log")
read -r _ _ dw dr dx < <(grep '^GUEST-BENCH dm-thin' "$T/console.log")
awk -v kw="$kw" -v kr="$kr" -v kx="$kx" -v dw="$dw" -v dr="$dr" -v dx="$dx" 'BEGIN {
	printf "%-28s %10s %10s %8s\n", "", "thinp.ko", "dm-thin", "ratio"
	printf "%-28s %10.1f %10.1f %8.2f\n", "seq write 64 MiB (MiB/s)", 6400 / kw, 6400 / dw, dw / kw
	printf "%-28s %10.1f %10.1f %8.2f\n", "seq read 64 MiB (MiB/s)", 6400 / kr, 6400 / dr, dr / kr
	printf "%-28s %10.1f %10.1f %8.2f\n", "4 KiB random writes (/s)", 102400 / kx, 102400 / dx, dx / kx
}'
