#!/bin/bash
# The ABI gate on the library just built: `make check-abi` as a test.
set -u
. "${THINP_SRCDIR:?run me from make check}/tests/build/lib.sh"

so=$THINP_BUILDDIR/.libs/libthinp.so
[ -f "$so" ] || skip "no shared library (configured with --disable-shared?)"
command -v "${ABIDIFF:-abidiff}" >/dev/null || skip "abidiff not installed (abigail-tools)"
exec bash "$THINP_SRCDIR/abi/abi.sh" check "$so" "$THINP_SRCDIR/include/libthinp" \
	"$THINP_SRCDIR/abi/libthinp.abi" "$THINP_SRCDIR/abi/libthinp.suppr"
