#!/bin/bash
# Exclusive ownership through the tool: while a `thinp write` holds the pool
# open (blocked reading its standard input from a fifo), every other writer
# (`thinp message`, `thinp format`, `thinp restore`, a second `thinp write`)
# fails with "metadata device is in use by another writer" and changes
# nothing, while the read-only commands (dump, dump --metadata-snap, status,
# ls, check) keep working; once the writer is done, writers succeed again.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

M=$T/meta D=$T/data F=$T/fifo
truncate -s 4M "$M"
truncate -s 6400k "$D"
thinp format -m "$M" --block-size 64k --data-blocks 100 || fail "format"
thinp message -m "$M" "create_thin 1" || fail "create_thin 1"
thinp message -m "$M" "reserve_metadata_snap" || fail "reserve_metadata_snap"
thinp dump -m "$M" >"$T/before.xml" || fail "dump"

step "a writer holds the pool"
mkfifo "$F"
"$THINP" write -m "$M" -d "$D" 1 0 <"$F" &
writer=$!
exec 3>"$F"
# The pool is open once its OFD lock shows in /proc/locks (MAJ:MIN:INODE).
inode=$(stat -c %i "$M")
for _ in $(seq 300); do
	grep -qE "OFDLCK +ADVISORY +WRITE .*:$inode " /proc/locks && break
	kill -0 $writer 2>/dev/null || fail "thinp write exited early"
	sleep 0.1
done
grep -qE "OFDLCK +ADVISORY +WRITE .*:$inode " /proc/locks ||
	fail "thinp write never locked $M: $(cat /proc/locks)"

# busy ARGS...: thinp ARGS fails with the message and leaves META as it was.
busy() {
	local before rc
	before=$(sum "$M")
	"$THINP" "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	[ $rc = 1 ] || fail "thinp $*: exit $rc while the pool is held ($(cat "$T/err"))"
	grep -q "metadata device is in use by another writer" "$T/err" ||
		fail "thinp $*: unclear refusal: $(cat "$T/err")"
	[ "$(sum "$M")" = "$before" ] || fail "thinp $*: changed $M"
	echo "ok: thinp $* -> $(cat "$T/err")"
}
busy message -m "$M" "create_thin 2"
busy format -m "$M" --block-size 64k --data-blocks 100
busy restore -m "$M" -i "$T/before.xml"
busy write -m "$M" -d "$D" 1 4096

step "read-only commands work beside it"
thinp dump -m "$M" >"$T/live.xml" || fail "dump beside the writer"
cmp -s "$T/before.xml" "$T/live.xml" || fail "dump beside the writer differs"
thinp dump -m "$M" --metadata-snap >"$T/snap.xml" || fail "dump --metadata-snap beside the writer"
grep -q 'dev_id="1"' "$T/snap.xml" || fail "the held snapshot lacks device 1: $(cat "$T/snap.xml")"
thinp status -m "$M" >/dev/null || fail "status beside the writer"
thinp ls -m "$M" >/dev/null || fail "ls beside the writer"
thinp check -m "$M" || fail "check beside the writer"

step "the writer finishes; the pool is free again"
msg="written while others were refused"
printf '%s' "$msg" >&3
exec 3>&-
wait $writer || fail "thinp write failed"
thinp message -m "$M" "create_thin 2" || fail "create_thin 2 after the writer closed"
thinp read -m "$M" -d "$D" 1 0 ${#msg} >"$T/read" || fail "read back"
[ "$(cat "$T/read")" = "$msg" ] ||
	fail "read back: $(od -c "$T/read" | head)"
echo "PASS"
