#!/bin/bash
# The kernel activates every pool the workflows touched (issue #12): runs each
# tests/workflow/*_cli.sh with THINP_WORKFLOW_POOLS set, so each leaves the
# pools it used as DIR/NAME.meta and DIR/NAME.data; then, in one VM boot
# (vm.sh: Debian 12's kernel under qemu TCG), activates each pool with the
# kernel's thin-pool target and checksums every device that has a size in
# the pool's catalog, which must equal what `thinp read` reads on the host.
# Afterwards thin_check and thinp check still pass on every pool.
#
# Run by scripts/test-all.sh (step kernel-vm-workflows) or by hand:
#   THINP_BUILDDIR=build bash tests/frontends/kernel/workflows_dmthin.sh
# Skips (77) where vm.sh cannot boot a VM or thin-provisioning-tools is
# missing. THINP_VM_KEEP=1 keeps the scratch directory.
here=$(cd "$(dirname "$0")" && pwd)
# common.sh finds the tree two levels up; this script is three levels down.
export THINP_SRCDIR=${THINP_SRCDIR:-$(cd "$here/../../.." && pwd)}
. "$here/../../tool/common.sh"
[ -n "${THINP_VM_KEEP:-}" ] && trap - EXIT
command -v dmsetup >/dev/null || { echo "SKIP: dmsetup not found (apt-get install dmsetup)"; exit 77; }

POOLS=$T/pools
mkdir -p "$POOLS"
step "the workflows' command-line tests, keeping their pools"
ran=0
for t in "$srcdir"/tests/workflow/*_cli.sh; do
	[ -e "$t" ] || continue
	ran=$((ran + 1))
	THINP_WORKFLOW_POOLS=$POOLS THINP="$THINP" bash "$t" >"$T/$(basename "$t").log" 2>&1
	rc=$?
	[ $rc -eq 77 ] && { echo "skip: $(basename "$t")"; continue; }
	[ $rc -eq 0 ] || fail "$(basename "$t") failed: $(tail -5 "$T/$(basename "$t").log")"
	echo "ok: $(basename "$t")"
done
[ $ran -gt 0 ] || fail "no tests/workflow/*_cli.sh under $srcdir"

# The guest script: for pool I on disks META DATA, its table length and
# block size from the metadata, each device with a size: one line
# "GUEST-SUM NAME DEV MD5" per device.
disks=() n=0 letters=abcdefghijklmnopqrstuvwxyz
: >"$T/want"
cat >"$T/guest.sh" <<'EOF2'
ok() { "$@" || { echo "GUEST-FAIL: $*"; exit 1; }; }
EOF2
for meta in "$POOLS"/*.meta; do
	[ -e "$meta" ] || continue
	name=$(basename "$meta" .meta) data=${meta%.meta}.data
	[ -e "$data" ] || fail "$name: no data file beside $meta"
	hdr=$(thinp dump -m "$meta" | head -1)
	bs=$(echo "$hdr" | sed -n 's/.*data_block_size="\([0-9]*\)".*/\1/p')
	nr=$(echo "$hdr" | sed -n 's/.*nr_data_blocks="\([0-9]*\)".*/\1/p')
	[ -n "$bs" ] && [ -n "$nr" ] || fail "$name: no superblock in thinp dump: $hdr"
	vm=${letters:$((2 * n)):1} vd=${letters:$((2 * n + 1)):1}
	disks+=("$meta" "$data")
	echo "ok dmsetup create p$n --table \"0 $((bs * nr)) thin-pool /dev/vd$vm /dev/vd$vd $bs 16\"" >>"$T/guest.sh"
	while read -r dev _ _ _ _ size; do
		[ "$size" = - ] || [ -z "$size" ] && continue
		sum=$(thinp read -m "$meta" -d "$data" "$dev" 0 "$size" | md5sum | cut -d' ' -f1)
		echo "$name $dev $sum" >>"$T/want"
		cat >>"$T/guest.sh" <<EOF2
ok dmsetup create t${n}_$dev --table "0 $((size / 512)) thin /dev/mapper/p$n $dev"
echo "GUEST-SUM $name $dev \$(md5sum </dev/mapper/t${n}_$dev | cut -d' ' -f1)"
ok dmsetup remove t${n}_$dev
EOF2
	done < <(thinp ls -m "$meta" --no-headers)
	echo "ok dmsetup remove p$n" >>"$T/guest.sh"
	n=$((n + 1))
done
echo "echo GUEST-OK" >>"$T/guest.sh"
[ $n -gt 0 ] || { echo "SKIP: no workflow left a pool (its tests skipped)"; exit 77; }
[ -s "$T/want" ] || fail "no device with a size in any pool"

step "guest: the kernel's dm-thin on $n pools"
"$here/vm.sh" --module dm-thin-pool --bin "$(command -v dmsetup)" \
	"$T/guest.sh" "$T/console.log" "${disks[@]}"
rc=$?
[ $rc -eq 77 ] && exit 77
grep -E '^(GUEST-|THINP-VM)' "$T/console.log"
[ $rc -eq 0 ] && grep -q '^GUEST-OK' "$T/console.log" || fail "guest failed (vm.sh exit $rc)"
while read -r name dev want; do
	got=$(sed -n "s/^GUEST-SUM $name $dev \([0-9a-f]*\).*/\1/p" "$T/console.log")
	[ "$got" = "$want" ] || fail "$name device $dev: dm-thin reads $got, thinp read $want"
done <"$T/want"

step "host: every pool after the kernel had it"
for meta in "$POOLS"/*.meta; do
	check_image "$meta"
done
echo "PASS: the kernel activated every workflow pool and read what thinp reads ($(wc -l <"$T/want") devices)"
