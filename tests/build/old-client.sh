#!/bin/bash
# An old client: tests/build/client.c compiled against the headers of the last
# release (abi/include/, written with the baseline by `make abi-baseline`) and
# run against the library just built. The ABI gate compares types; this runs
# the code, e.g. a thinp_io_ops of the old, smaller size handed to the new
# library.
set -u
. "${THINP_SRCDIR:?run me from make check}/tests/build/lib.sh"

so=$THINP_BUILDDIR/.libs/libthinp.so
old=$THINP_SRCDIR/abi/include
[ -f "$so" ] || skip "no shared library (configured with --disable-shared?)"
[ -f "$old/libthinp/thinp.h" ] || fail "no release headers in $old (make abi-baseline)"
make_tmpdir
# shellcheck disable=SC2086
${CC:-cc} -std=c99 -Wall -Werror ${THINP_SAN_FLAGS:-} -I"$old" \
	"$THINP_SRCDIR/tests/build/client.c" -o "$tmp/old-client" \
	-L"$THINP_BUILDDIR/.libs" -lthinp || fail "compile against $old"
LD_LIBRARY_PATH=$THINP_BUILDDIR/.libs "$tmp/old-client" || fail "old client against the new library"
ok "a client of the last release runs against this library"
finish
