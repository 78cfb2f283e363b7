#!/bin/bash
# thinp replicate between two pools over loopback TCP and over a pipe: the
# source written between cycles, each acknowledged replica equal to the
# source byte for byte, the sender keeping one snapshot, failover giving a
# writable device equal to the newest replica, thin_check and thinp check
# clean on both pools. With THINP_WORKFLOW_POOLS=DIR set, the pools are left
# as DIR/replicate-src.{meta,data} and DIR/replicate-dst.{meta,data}.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

RANDOM=$SEED
A=$T/a B=$T/b SIZE=$((4 << 20))
new_pools "$A" "$B"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pb() { thinp "$1" -m "$B.meta" -d "$B.data" "${@:2}"; }
change() {
	for i in $(seq $((RANDOM % 6 + 2))); do
		case $((RANDOM % 4)) in
		0) pa discard 1 $((RANDOM % 60 * 65536)) 65536 || fail "discard" ;;
		*) head -c $((RANDOM * 4 + 1)) /dev/urandom |
			pa write 1 $((RANDOM % 60 * 65536 + RANDOM)) || fail "write" ;;
		esac
	done
}
# The sender's snapshots: catalog entries flagged for replication.
snapshots() { thinp ls -m "$A.meta" --no-headers | wc -l; }

step "cycles over loopback TCP"
pa create --size $SIZE 1 || fail "create 1"
PORT=$((20000 + RANDOM % 20000))
pb replicate receive --listen 127.0.0.1:$PORT --connections 3 >"$T/published" 2>"$T/receiver.err" &
rpid=$!
for c in 1 2 3; do
	change
	pa replicate send --to 127.0.0.1:$PORT --cycles 1 --retries 20 --checkpoint 256k 1 ||
		fail "send cycle $c"
	[ "$(snapshots)" = 2 ] || fail "the sender keeps $(snapshots) devices, not the source and one snapshot"
done
wait $rpid || fail "receiver: $(cat "$T/receiver.err")"
[ "$(wc -l <"$T/published")" = 3 ] || fail "published: $(cat "$T/published")"
id=$(tail -n1 "$T/published" | cut -d' ' -f2)
[ "$(dsum "$B" "$id")" = "$(dsum "$A" 1)" ] || fail "replica $id differs from the source"

step "a cycle over a pipe"
change
mkfifo "$T/to_b" "$T/to_a"
pb replicate receive --pipe <"$T/to_b" >"$T/to_a" 2>"$T/published2" &
rpid=$!
# Opened in this order, the two ends of both fifos meet (no deadlock).
pa replicate send --pipe --cycles 1 1 >"$T/to_b" <"$T/to_a" || fail "send over the pipe"
wait $rpid || fail "receiver over the pipe"
id=$(tail -n1 "$T/published2" | cut -d' ' -f2)
[ "$(dsum "$B" "$id")" = "$(dsum "$A" 1)" ] || fail "replica $id (pipe) differs from the source"

step "failover"
fo=$(pb replicate failover "$id") || fail "failover"
[ "$(dsum "$B" "$fo")" = "$(dsum "$A" 1)" ] || fail "failover device differs"
head -c 4096 /dev/urandom | pb write "$fo" 0 || fail "write the failover device"
[ "$(dsum "$B" "$id")" = "$(dsum "$A" 1)" ] || fail "writing the failover device changed the replica"
"$THINP" replicate failover -m "$B.meta" -d "$B.data" "$fo" 2>/dev/null && fail "failover of a non-replica"

step "thin_check"
check_image "$A.meta"
check_image "$B.meta"
if [ -n "${THINP_WORKFLOW_POOLS:-}" ]; then
	mkdir -p "$THINP_WORKFLOW_POOLS"
	for f in meta data; do
		cp --sparse=always "$A.$f" "$THINP_WORKFLOW_POOLS/replicate-src.$f"
		cp --sparse=always "$B.$f" "$THINP_WORKFLOW_POOLS/replicate-dst.$f"
	done
fi
echo "ok"
