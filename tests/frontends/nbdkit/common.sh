# Shared by the nbdkit plugin's tests; source it first.
#
# Skips (exit 77, with the reason) when nbdkit, the plugin or a client is
# missing. Gives each script a scratch directory ($T, removed on exit), a
# pool in it (new_pool), the plugin ($PLUGIN) and the thinp tool ($THINP).
# Servers listen on unix sockets only (captive `nbdkit -U -`, or a socket in
# $T), never on TCP.
set -u
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

skip() {
	echo "SKIP: $*"
	exit 77
}

build=${THINP_BUILDDIR:-$PWD}
THINP=$build/tools/thinp
# Run the real binaries, not libtool's wrapper scripts.
if [ -x "$build/tools/.libs/thinp" ]; then
	THINP=$build/tools/.libs/thinp
fi
export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PLUGIN=$build/frontends/nbdkit/.libs/nbdkit-thinp-plugin.so

command -v nbdkit >/dev/null || skip "nbdkit not installed (apt-get install nbdkit)"
[ -f "$PLUGIN" ] || skip "the plugin was not built (configure did not find nbdkit-plugin-dev)"
[ -x "$THINP" ] || { echo "FAIL: thinp not found at $THINP"; exit 1; }

# Not in a sanitizer build: an ASan-built plugin cannot load into the
# uninstrumented nbdkit without preloading the ASan runtime, and a preload
# reaches the clients nbdkit runs too (qemu-io then hangs). The library code
# the plugin calls runs under the sanitizers in every other test.
[ -z "${THINP_SAN_FLAGS:-}" ] || skip "sanitizer build: nbdkit and its clients are not instrumented"

requires() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "$c not installed"
	done
}

T=$(mktemp -d "${TMPDIR:-/tmp}/thinp-nbdkit.XXXXXX")
cleanup_fns=()
on_exit() {
	local f
	for f in "${cleanup_fns[@]}"; do
		$f || true
	done
	rm -rf "$T"
}
trap on_exit EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

step() {
	echo "== $*"
}

thinp() {
	"$THINP" "$@"
}

# new_pool BLOCK_SIZE DATA_BLOCKS: $M, $D (and $M.vol once devices exist).
M=$T/meta D=$T/data
new_pool() {
	truncate -s 16M "$M"
	truncate -s $(( $1 * $2 )) "$D"
	thinp format -m "$M" -b "$1" -n "$2" || fail "format"
}

# serve ARGS... -- COMMAND: captive nbdkit on a private socket; COMMAND sees
# $uri, $unixsocket, $nbdkit_pid. Extra nbdkit options go before the plugin
# through NBDKIT_OPTS.
serve() {
	local args=()
	while [ "$1" != -- ]; do
		args+=("$1")
		shift
	done
	shift
	nbdkit ${NBDKIT_OPTS:-} -U - "$PLUGIN" meta="$M" data="$D" "${args[@]}" --run "$*"
}

# wait_served SOCKET: a background server on SOCKET answers. The socket
# exists before the plugin's after_fork has opened (and locked) the pool;
# a client's answer says it has.
wait_served() {
	for i in $(seq 100); do [ -S "$1" ] && break; sleep 0.1; done
	[ -S "$1" ] || fail "server did not start"
	nbdinfo --list "nbd+unix://?socket=$1" >/dev/null || fail "server does not answer"
}

# uri_of EXPORT SOCKET
uri_of() {
	echo "nbd+unix:///$1?socket=$2"
}

# The pool's metadata is clean for thinp check and thin_check (server stopped).
check_pool() {
	local out
	out=$(thinp check -m "$M" 2>&1) || fail "thinp check: $out"
	if command -v thin_check >/dev/null; then
		out=$(thin_check "$M" 2>&1) || fail "thin_check: $out"
	fi
}
