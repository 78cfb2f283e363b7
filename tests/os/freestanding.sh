#!/bin/bash
# The core builds with nothing but the compiler and the OS layer: every lib/
# .c file except the host-specific ones named below compiles with
# -ffreestanding -nostdinc -DTHINP_OS_FREESTANDING, against lib/os/os.h and
# its os_freestanding.h alone. The public headers' <stdint.h>, <stddef.h>,
# <stdbool.h> and <stdarg.h> resolve to stand-ins that include os/os.h
# (tests/os/freestanding-include/); any other libc, pthread or system
# include, or a call to a libc function os.h does not list, fails the build.
# Negative controls: the same flags must reject <stdlib.h>, and a real lib/
# file with <pthread.h> added, or the check would prove nothing.
set -u
srcdir=${THINP_SRCDIR:-$(dirname "$0")/../..}
cc=${CC:-cc}

# Host-specific, and the only lib/ files allowed libc and system headers
# (docs/ARCHITECTURE.md, "OS layer"): the POSIX backend of the OS layer and
# the file I/O backend it carries, and the kernel backend (kernel headers;
# frontends/kernel/build.sh compiles it).
excluded=(
	lib/os/os_linux.c
	lib/os/os_posix.c
	lib/os/posix/crc32c_sse42.c
	lib/os/posix/file.c
)

flags=(-std=gnu11 -ffreestanding -nostdinc -DTHINP_OS_FREESTANDING
	-I"$srcdir/tests/os/freestanding-include" -I"$srcdir/include" -I"$srcdir/lib"
	-Wall -Wextra -Werror -Wno-unused-parameter -fsyntax-only)
# config.h holds only macros (package version, feature switches).
[ -n "${THINP_BUILDDIR:-}" ] && flags+=(-I"$THINP_BUILDDIR")

fail=0
for f in "${excluded[@]}"; do
	[ -f "$srcdir/$f" ] || { echo "FAIL: excluded $f does not exist: update the list"; fail=1; }
done

n=0
while read -r f; do
	skip=0
	for e in "${excluded[@]}"; do
		[ "$f" = "$e" ] && skip=1
	done
	[ $skip = 1 ] && continue
	n=$((n + 1))
	if ! out=$($cc "${flags[@]}" "$srcdir/$f" 2>&1); then
		echo "FAIL: $f does not build freestanding:"
		echo "$out" | head -20
		fail=1
	fi
done < <(cd "$srcdir" && find lib -name '*.c' | LC_ALL=C sort)
[ $n -gt 50 ] || { echo "FAIL: only $n lib/ files found under $srcdir"; fail=1; }

if echo '#include <stdlib.h>' | $cc "${flags[@]}" -x c - 2>/dev/null; then
	echo "FAIL: -nostdinc did not hide libc headers: the check is void"
	fail=1
fi
if { echo '#include <pthread.h>'; cat "$srcdir/lib/util/log.c"; } |
	$cc "${flags[@]}" -I"$srcdir/lib/util" -x c - 2>/dev/null; then
	echo "FAIL: a lib/ file including <pthread.h> built freestanding: the check is void"
	fail=1
fi
if { echo 'void *leak(void); void *leak(void) { return malloc(1); }'; } |
	$cc "${flags[@]}" -include os/os.h -x c - 2>/dev/null; then
	echo "FAIL: a call to malloc() built freestanding: the check is void"
	fail=1
fi
[ $fail = 0 ] || exit 1
echo "PASS: $n lib/ files build freestanding (${#excluded[@]} host-specific files excluded)"
