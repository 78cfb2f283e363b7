# Shared by the tool's interop scripts; source it first.
#
# Finds thinp (THINP, else tools/thinp under the build directory the test runs
# in) and the thin-provisioning-tools oracle; exits 77 (skip) with a reason
# when the oracle is missing. Gives each script a scratch directory (removed
# on exit), a seed (THINP_TEST_SEED or random, printed), and helpers that fail
# the test with a message.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

# make check exports THINP_BUILDDIR/THINP_SRCDIR and the tools configure
# found (THIN_CHECK... empty when missing); by hand, PATH is searched.
THINP=${THINP:-${THINP_BUILDDIR:-$PWD}/tools/thinp}
srcdir=${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}
GEN="$srcdir/tests/tool/gen_pool_xml.py"
# tools/thinp in a build tree is libtool's wrapper script, which costs more
# than the command itself on a loaded machine; run the real binary.
if [ -x "$(dirname "$THINP")/.libs/thinp" ] && grep -qs libtool "$THINP"; then
	export LD_LIBRARY_PATH="$(cd "$(dirname "$THINP")/.." && pwd)/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	THINP=$(dirname "$THINP")/.libs/thinp
fi

for t in THIN_CHECK:thin_check THIN_DUMP:thin_dump THIN_RESTORE:thin_restore; do
	var=${t%%:*} name=${t#*:}
	if [ -z "${!var+set}" ]; then
		printf -v "$var" '%s' "$(command -v "$name" 2>/dev/null)"
	fi
	if [ -z "${!var}" ] || [ ! -x "${!var}" ]; then
		echo "SKIP: $name not found (install thin-provisioning-tools 0.9.0)"
		exit 77
	fi
done
thin_check() { "$THIN_CHECK" "$@"; }
thin_dump() { "$THIN_DUMP" "$@"; }
thin_restore() { "$THIN_RESTORE" "$@"; }
if [ ! -x "$THINP" ]; then
	echo "FAIL: thinp not found at $THINP"
	exit 1
fi

SEED=${THINP_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "seed $SEED (replay with THINP_TEST_SEED=$SEED)"
LONG=${THINP_TEST_LONG:-}
# THINP_TEST_SHORT (make distcheck's run): fewer random cases.
SHORT=${THINP_TEST_SHORT:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/thinp-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
	echo "FAIL: $*"
	echo "(seed $SEED, scratch files kept in $T)"
	trap - EXIT
	exit 1
}

step() {
	echo "== $*"
}

thinp() {
	"$THINP" "$@"
}

# Pools for the stream tests: PREFIX.meta (8 MiB) and PREFIX.data (64 MiB,
# 64 KiB blocks) for each PREFIX given, formatted.
new_pools() {
	local p
	for p in "$@"; do
		truncate -s 8M "$p.meta"
		truncate -s 64M "$p.data"
		"$THINP" format -m "$p.meta" -b 64k -n 1024 || fail "format $p"
	done
}

# The md5 of the first SIZE bytes of device $2 of pool $1 (PREFIX as above).
dsum() {
	"$THINP" read -m "$1.meta" -d "$1.data" "$2" 0 "$SIZE" | md5sum | cut -d' ' -f1
}

# thin_check passes (exit 0 and nothing about errors in its output), and so
# does thinp check, without even a warning (images thinp wrote).
check_image() {
	local out
	out=$(thin_check "$@" 2>&1) || fail "thin_check $* failed: $out"
	if echo "$out" | grep -qiE 'error|corrupt|bad |differ|leak|missing'; then
		fail "thin_check $* complained: $out"
	fi
	out=$("$THINP" check -m "$1" 2>&1) || fail "thinp check $1 failed: $out"
	[ -z "$out" ] || fail "thinp check $1 said something: $out"
}

# For images thin_restore wrote: thin_check passes, and so does thinp check
# (exit 0); the only thing it may say is the warning about the artefact
# FORMAT.md 15 documents (thin_restore leaves the metadata space map's
# nr_allocated one above the blocks in use).
check_restored_image() {
	local out
	out=$(thin_check "$1" 2>&1) || fail "thin_check $1 failed: $out"
	out=$("$THINP" check -m "$1" 2>&1) || fail "thinp check of a thin_restore image failed: $out"
	echo "$out" | grep -v '^thinp check: .*: warning: metadata space map: nr_allocated is ' |
		grep -q . && fail "thinp check of a thin_restore image: $out"
	[ -n "$out" ] && echo "ok: $out"
	return 0
}

# thin_dump and thinp dump agree byte for byte (optionally -m [BLOCK]).
same_dump() {
	local img=$1 snap=${2:-} want=$T/want.xml got=$T/got.xml
	if [ -z "$snap" ]; then
		thin_dump "$img" >"$want" || fail "thin_dump $img failed"
		"$THINP" dump -m "$img" >"$got" || fail "thinp dump $img failed"
	elif [ "$snap" = held ]; then
		thin_dump -m "$img" >"$want" || fail "thin_dump -m $img failed"
		"$THINP" dump -m "$img" --metadata-snap >"$got" || fail "thinp dump --metadata-snap $img failed"
	else
		thin_dump --metadata-snap="$snap" "$img" >"$want" || fail "thin_dump -m $snap $img failed"
		"$THINP" dump -m "$img" --metadata-snap="$snap" >"$got" ||
			fail "thinp dump --metadata-snap=$snap $img failed"
	fi
	cmp -s "$want" "$got" || fail "dumps differ for $img ${snap:+(snapshot $snap)}: $(diff "$want" "$got" | head -5)"
}

# Both checks and the dump comparison, after every step of a scenario.
verify() {
	check_image "$1"
	same_dump "$1"
}

sum() {
	md5sum <"$1" | cut -d' ' -f1
}

# The held root from `thinp status` (field 4), "-" when none.
held_root() {
	"$THINP" status -m "$1" | cut -d' ' -f4
}
