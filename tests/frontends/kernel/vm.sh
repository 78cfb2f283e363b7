#!/bin/bash
# Boot Debian 12's own kernel in qemu (software emulation) with a throwaway
# busybox initramfs, run one guest script in it, and hand back its output.
#
#   vm.sh [options] GUEST_SCRIPT LOG [DISK...]
#
# Each DISK (a raw image on the host) becomes a virtio disk, /dev/vda,
# /dev/vdb... in that order. The guest script runs under busybox sh as root
# with /proc, /sys and /dev (devtmpfs) mounted and the modules loaded; what it
# prints goes to LOG (the serial console, kernel messages included). vm.sh
# exits with the guest script's status, 77 (skip) when the host cannot run a
# VM (no qemu, busybox-static, kmod, cpio, or no Debian kernel package), and
# 124 when the VM did not finish in time.
#
# Options:
#   --module NAME   load this kernel module and its dependencies (modules.dep
#                   order; repeatable). virtio_pci and virtio_blk always are.
#   --bin PATH      copy a host binary into the initramfs at the same path,
#                   with the shared libraries ldd names (repeatable)
#   --ko FILE       an out-of-tree module to copy to /ko/ (the guest insmods it)
#   --timeout S     hard limit on the whole VM run (THINP_VM_TIMEOUT, 150)
#   vm.sh --kabi    only print the kernel ABI a run would boot (for building
#                   modules against linux-headers-ABI) and exit
#
# Environment: THINP_VM_KABI picks the kernel ABI (default: what Debian's
# linux-image-amd64 depends on, e.g. 6.1.0-57-amd64); THINP_VM_CACHE is where
# the kernel package is downloaded and unpacked (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/libthinp-vm), reused by later runs. An
# installed package (/boot/vmlinuz-ABI and /lib/modules/ABI) is used as is.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}
die() {
	echo "vm.sh: $*" >&2
	exit 1
}

modules=(virtio_pci virtio_blk)
bins=()
kos=()
timeout_s=${THINP_VM_TIMEOUT:-150}
print_kabi=
while [ $# -gt 0 ]; do
	case $1 in
	--module) modules+=("$2"); shift 2 ;;
	--bin) bins+=("$2"); shift 2 ;;
	--ko) kos+=("$2"); shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--kabi) print_kabi=1; shift ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ -n "$print_kabi" ] || [ $# -ge 2 ] || die "usage: vm.sh [options] GUEST_SCRIPT LOG [DISK...]"

for cmd in qemu-system-x86_64 cpio gzip depmod timeout; do
	command -v "$cmd" >/dev/null || skip "$cmd not found (apt-get install qemu-system-x86 cpio kmod)"
done
busybox=$(command -v busybox) || skip "busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox would need its libraries in the initramfs too.
if ldd "$busybox" >/dev/null 2>&1; then
	[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 && busybox=/bin/busybox ||
		skip "busybox is not the static one (apt-get install busybox-static)"
fi

# The kernel: an installed Debian package, else one downloaded and unpacked
# into the cache (apt-get download needs no root and changes nothing).
kabi=${THINP_VM_KABI:-$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: linux-image-\(6[^ ]*-amd64\)$/\1/p' | head -n 1)}
[ -n "$kabi" ] || skip "no Debian kernel package known (apt-cache depends linux-image-amd64)"
[ -n "$print_kabi" ] && { echo "$kabi"; exit 0; }
guest=$1 log=$2
shift 2
# Debian installs vmlinuz readable by root only: then use a download.
if [ -r "/boot/vmlinuz-$kabi" ] && [ -d "/lib/modules/$kabi/kernel" ]; then
	kroot=
else
	cache=${THINP_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/libthinp-vm}
	kroot=$cache/$kabi
	if [ ! -f "$kroot/boot/vmlinuz-$kabi" ]; then
		mkdir -p "$cache" || skip "cannot create $cache"
		(cd "$cache" && rm -f linux-image-"$kabi"_*.deb &&
			apt-get download "linux-image-$kabi" >/dev/null 2>&1) ||
			skip "cannot download linux-image-$kabi"
		rm -rf "$kroot.tmp" && mkdir "$kroot.tmp" &&
			dpkg-deb -x "$cache"/linux-image-"$kabi"_*.deb "$kroot.tmp" &&
			rm -f "$cache"/linux-image-"$kabi"_*.deb &&
			rm -rf "$kroot" && mv "$kroot.tmp" "$kroot" || die "cannot unpack linux-image-$kabi"
	fi
fi
kernel=$kroot/boot/vmlinuz-$kabi
moddir=$kroot/lib/modules/$kabi
[ -r "$kernel" ] || skip "$kernel is not readable"
# The package ships no modules.dep (its postinst runs depmod): make one.
if [ ! -s "$moddir/modules.dep" ]; then
	depmod -b "${kroot:-/}" "$kabi" || die "depmod failed for $moddir"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/thinp-vm.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules,ko}

# Modules in load order: for "m: d1 d2 d3" in modules.dep, modprobe loads
# d3, d2, d1, then m. Soft dependencies are not in modules.dep: libcrc32c
# asks the crypto API for "crc32c", which a running modprobe would load, so
# crc32c_generic goes first explicitly.
order=()
add_module() {
	local name=$1 line path deps d i
	line=$(grep -E "(^|/)${name//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n 1)
	[ -n "$line" ] || die "module $name not in $moddir/modules.dep"
	path=${line%%:*}
	for d in "${order[@]}"; do
		[ "$d" = "$path" ] && return 0
	done
	read -r -a deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		add_module "$(basename "${deps[i]%%.ko*}")"
	done
	order+=("$path")
}
for m in "${modules[@]}"; do
	case $m in libcrc32c | dm-persistent-data | dm_persistent_data | dm-thin-pool | dm_thin_pool | ext4)
		add_module crc32c_generic ;;
	esac
	add_module "$m"
done
: >"$root/modules.order"
for p in "${order[@]}"; do
	case $p in
	*.ko) cp "$moddir/$p" "$root/lib/modules/" ;;
	*.ko.xz) xz -dc "$moddir/$p" >"$root/lib/modules/$(basename "${p%.xz}")" ;;
	*.ko.zst) zstd -qdc "$moddir/$p" >"$root/lib/modules/$(basename "${p%.zst}")" ;;
	*) die "unknown module format $p" ;;
	esac || die "cannot copy module $p"
	basename "${p%%.ko*}" >>"$root/modules.order"
done

cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
copy_with_libs() {
	local f
	for f in "$1" $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f" || die "cannot copy $f"
	done
}
for b in "${bins[@]}"; do
	copy_with_libs "$b"
done
for k in "${kos[@]}"; do
	cp "$k" "$root/ko/" || die "cannot copy $k"
done
cp "$guest" "$root/guest.sh"

# /init: the guest script's status is printed on the last line the host
# parses; poweroff -f needs no init system.
cat >"$root/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/mapper
while read -r m; do
	insmod "/lib/modules/$m.ko" || echo "THINP-VM: insmod $m failed"
done </modules.order
# No udev: libdevmapper makes the /dev/mapper nodes itself.
export DM_DISABLE_UDEV=1
echo "THINP-VM-START $(cut -d' ' -f1 /proc/uptime)"
sh /guest.sh
rc=$?
sync
echo "THINP-VM-EXIT $rc $(cut -d' ' -f1 /proc/uptime)"
poweroff -f
EOF
chmod +x "$root/init" "$root/guest.sh"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd" ||
	die "cannot build the initramfs"

drives=()
for d in "$@"; do
	[ -f "$d" ] || die "disk $d does not exist"
	drives+=(-drive "file=$d,format=raw,if=virtio,cache=writeback,discard=unmap")
done
: >"$log"
t0=$(date +%s)
timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -m 1G -smp 1 -no-reboot -nodefaults -no-user-config \
	-display none -monitor none -serial "file:$log" -net none \
	-kernel "$kernel" -initrd "$work/initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init" \
	"${drives[@]}" </dev/null
qrc=$?
echo "vm.sh: kernel $kabi, VM ran $(($(date +%s) - t0)) s (qemu exit $qrc), console in $log"
[ $qrc -eq 124 ] || [ $qrc -eq 137 ] && { echo "vm.sh: VM timed out after $timeout_s s"; exit 124; }
rc=$(sed -n 's/^THINP-VM-EXIT \([0-9]*\).*/\1/p' "$log" | tail -n 1)
[ -n "$rc" ] || { echo "vm.sh: the guest did not finish (qemu exit $qrc); last lines:"; tail -n 30 "$log"; exit 1; }
exit "$rc"
