#!/bin/bash
# Partial receives: thinp receive --list shows the devices interrupted
# resumable receives keep, --resume-token ID prints the very token the
# interrupted receive printed (from the catalog alone, later), with which
# thinp send --resume finishes the device; --abort ID deletes a partial
# device and its catalog entry, and refuses devices that are not partial.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

A=$T/a C=$T/c SIZE=$((4 << 20))
new_pools "$A" "$C"
pa() { thinp "$1" -m "$A.meta" -d "$A.data" "${@:2}"; }
pc() { thinp "$1" -m "$C.meta" -d "$C.data" "${@:2}"; }
# Receive the first 2/3 of stream $1 into C, resumable; the token printed.
cut_receive() {
	head -c $(($(stat -c %s "$1") * 2 / 3)) "$1" | pc receive --resumable 2>"$T/err" &&
		fail "a truncated stream was received"
	sed -n 's/.*--resume \(thinp1-[0-9a-f]*\).*/\1/p' "$T/err"
}

step "two interrupted receives"
pa create --size $SIZE 1 || fail "create 1"
# Every other block: many DATA records, a checkpoint between them.
for b in $(seq 0 2 62); do
	head -c 65536 /dev/urandom | pa write 1 $((b * 65536)) || fail "write 1"
done
pa create --snapshot-of 1 2 || fail "snapshot 2"
head -c 100000 /dev/urandom | pa write 1 500000 || fail "write 1 again"
pa create --snapshot-of 1 3 || fail "snapshot 3"
pa send 2 --checkpoint 128k >"$T/s2" || fail "send 2"
pa send 3 --checkpoint 128k >"$T/s3" || fail "send 3"
tok2=$(cut_receive "$T/s2")
tok3=$(cut_receive "$T/s3")
[ -n "$tok2" ] && [ -n "$tok3" ] || fail "no tokens: $(cat "$T/err")"

step "--list shows both, --resume-token gives their tokens again"
pc receive --list >"$T/list" || fail "--list"
[ "$(wc -l <"$T/list")" -eq 2 ] || fail "--list: $(cat "$T/list")"
read -r p2 next2 stream2 < <(sed -n 1p "$T/list")
read -r p3 _ _ < <(sed -n 2p "$T/list")
[ "$next2" -gt 0 ] && [ "${#stream2}" -eq 32 ] || fail "--list line: $(sed -n 1p "$T/list")"
[ "$(pc receive --resume-token "$p2")" = "$tok2" ] || fail "token of $p2 differs"
[ "$(pc receive --resume-token "$p3")" = "$tok3" ] || fail "token of $p3 differs"
thinp ls -m "$C.meta" --no-headers | grep -q "^$p3 " || fail "partial $p3 not in the pool"

step "--abort deletes a partial device and its entry"
pc receive --abort "$p3" || fail "abort $p3"
[ "$(pc receive --list | wc -l)" -eq 1 ] || fail "--list after the abort: $(pc receive --list)"
thinp ls -m "$C.meta" --no-headers | grep -q "^$p3 " && fail "device $p3 still in the pool"
pc receive --resume-token "$p3" 2>/dev/null && fail "a token for an aborted receive"
pc receive --abort "$p3" 2>/dev/null && fail "aborted twice"
pc receive --abort 99 2>/dev/null && fail "aborted a device that does not exist"

step "the token from --resume-token finishes the receive"
tok=$(pc receive --resume-token "$p2") || fail "--resume-token $p2"
id=$(pa send 2 --resume "$tok" | pc receive --resumable) ||
	fail "the resumed stream"
[ "$id" = "$p2" ] || fail "resumed into $id, not $p2"
[ "$(dsum "$A" 2)" = "$(dsum "$C" "$id")" ] || fail "the resumed device differs"
[ -z "$(pc receive --list)" ] || fail "--list after the resume: $(pc receive --list)"
pc receive --abort "$id" 2>"$T/err" && fail "aborted a published device"
grep -q "not a partial receive" "$T/err" || fail "message: $(cat "$T/err")"
pc receive --list --abort "$id" 2>/dev/null && fail "--list with --abort"

step "--progress reports on stderr, the stream is the same"
pa send 3 --progress >"$T/p3" 2>"$T/perr" || fail "send --progress"
cmp -s <(pa send 3 2>/dev/null | wc -c) <(wc -c <"$T/p3") || fail "send --progress: another size"
grep -q "thinp send: [0-9]* MiB" "$T/perr" || fail "send progress: $(cat "$T/perr")"
pc receive --progress <"$T/p3" >/dev/null 2>"$T/perr" || fail "receive --progress"
grep -q "thinp receive: [0-9]* MiB" "$T/perr" || fail "receive progress: $(cat "$T/perr")"
pa send 3 >"$T/q3" 2>"$T/perr" || fail "send"
[ ! -s "$T/perr" ] || fail "progress without --progress on a file: $(cat "$T/perr")"
thinp message -m "$A.meta" reserve_metadata_snap || fail "reserve"
thinp backup -m "$A.meta" -d "$A.data" --snap 3 --progress >/dev/null 2>"$T/perr" ||
	fail "backup --progress"
grep -q "thinp backup: [0-9]* of [0-9]* MiB" "$T/perr" || fail "backup progress: $(cat "$T/perr")"
thinp message -m "$A.meta" release_metadata_snap || fail "release"
check_image "$C.meta"
echo "ok"
