#!/bin/sh
# Build thinp.ko: build.sh KDIR OUT
#   KDIR  the kernel's build tree, e.g. /usr/src/linux-headers-6.1.0-57-amd64
#   OUT   a scratch folder; it receives a copy of the sources (Kbuild writes
#         its objects beside them) and, on success, OUT/thinp.ko
# Extra arguments go to make (e.g. V=1).
set -eu
[ $# -ge 2 ] || { echo "usage: build.sh KDIR OUT [make args]" >&2; exit 2; }
kdir=$1 out=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/../.." && pwd)
mkdir -p "$out/lib" "$out/include" "$out/std"
cp "$src"/Kbuild "$src"/*.c "$src"/*.h "$out/"
# The public headers include <stdint.h> and three more: the freestanding
# check's stand-ins, which are the OS layer's (os_linux.h under __KERNEL__).
cp "$top"/tests/os/freestanding-include/*.h "$out/std/"
cp -R "$top/include/libthinp" "$out/include/"
for d in "$top"/lib/*/; do
	mkdir -p "$out/lib/$(basename "$d")"
	cp "$d"*.[ch] "$out/lib/$(basename "$d")/"
done
make -C "$kdir" M="$out" "$@" modules
