# Helpers for the shell tests under tests/build/ (sourced, not run).
#
# The tests run from `make check` (AM_TESTS_ENVIRONMENT in tests/Makefile.inc
# exports THINP_SRCDIR, THINP_BUILDDIR, CC, CXX, THINP_PUBLIC_HEADERS, ...).
# Exit codes follow automake's test driver: 0 pass, 77 skip, 99 hard error,
# anything else a failure.

_thinp_failed=0

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*" >&2; _thinp_failed=$((_thinp_failed + 1)); }

# finish: exit 1 if any not_ok was recorded, else 0.
finish() {
	if [ $_thinp_failed -ne 0 ]; then
		echo "$_thinp_failed check(s) failed" >&2
		exit 1
	fi
	exit 0
}

# make_tmpdir: sets $tmp to a scratch directory removed when the script exits
# (call it directly, not in $(...): the trap belongs to this shell).
make_tmpdir() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/thinp-build-test.XXXXXX") || exit 99
	[ -n "${THINP_KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
}
