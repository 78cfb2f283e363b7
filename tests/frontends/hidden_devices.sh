# Shared by the front-ends' hidden.sh tests; source it after their common.sh.
#
# hidden_devices META DATA: into the (formatted, empty) pool META/DATA,
# receive one device from a scratch pool, which leaves it and its anchor
# (THINP_CATALOG_ANCHOR), then half of another device's stream, which leaves
# a partial device (THINP_CATALOG_PARTIAL). Sets $got (the received id) and
# $hidden (the anchor's and the partial device's ids). Needs $T, $THINP, fail.
hidden_devices() {
	local a=$T/hidden-src ids i off
	truncate -s 8M "$a.meta"
	truncate -s 64M "$a.data"
	"$THINP" format -m "$a.meta" -b 64k -n 1024 >/dev/null || fail "format the source"
	"$THINP" create -m "$a.meta" -d "$a.data" --size 4M 1 || fail "create in the source"
	# Apart, so that the stream has several records and checkpoints between.
	for off in 0 1048576 2097152 3145728; do
		head -c 256k /dev/urandom | "$THINP" write -m "$a.meta" -d "$a.data" 1 $off ||
			fail "write in the source"
	done
	"$THINP" create -m "$a.meta" -d "$a.data" --snapshot-of 1 2 || fail "snapshot"
	"$THINP" send -m "$a.meta" -d "$a.data" 1 >"$a.s1" || fail "send 1"
	"$THINP" send -m "$a.meta" -d "$a.data" --checkpoint 128k 2 >"$a.s2" || fail "send 2"
	got=$("$THINP" receive -m "$1" -d "$2" <"$a.s1") || fail "receive"
	head -c $(($(stat -c %s "$a.s2") * 2 / 3)) "$a.s2" |
		"$THINP" receive -m "$1" -d "$2" --resumable 2>/dev/null &&
		fail "a truncated stream was received"
	mapfile -t ids < <("$THINP" ls -m "$1" --no-headers | awk '{ print $1 }')
	[ "${#ids[@]}" = 3 ] || fail "expected a device, its anchor and a partial one: ${ids[*]}"
	hidden=()
	for i in "${ids[@]}"; do [ "$i" = "$got" ] || hidden+=("$i"); done
}
