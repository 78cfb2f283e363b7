#!/bin/bash
# The data commands (write, read, discard, resize) through the pool, against
# a plain file holding what the volume should contain; and the command-line
# rules every command shares (--help for each command listed, required
# options, operand counts), which come from one table.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

M=$T/meta D=$T/data
truncate -s 4M "$M"
truncate -s 6400k "$D"
thinp format -m "$M" --block-size 64k --data-blocks 100 || fail "format"
thinp message -m "$M" create_thin 1 || fail "create_thin"

step "write, read back, snapshot, copy-on-write"
head -c 200000 /dev/urandom >"$T/a"
thinp write -m "$M" -d "$D" 1 4096 <"$T/a" || fail "write"
thinp read -m "$M" -d "$D" 1 4096 200000 >"$T/got" || fail "read"
cmp -s "$T/a" "$T/got" || fail "read back differs"
thinp read -m "$M" -d "$D" 1 0 4096 | cmp -s - <(head -c 4096 /dev/zero) || fail "unwritten bytes are not zero"
thinp message -m "$M" create_snap 2 1 || fail "create_snap"
head -c 1000 /dev/urandom >"$T/b"
thinp write -m "$M" -d "$D" 2 70000 <"$T/b" || fail "write to the snapshot"
thinp read -m "$M" -d "$D" 1 4096 200000 | cmp -s - "$T/a" || fail "the origin changed under its snapshot"
cp "$T/a" "$T/want"
dd if="$T/b" of="$T/want" bs=1 seek=$((70000 - 4096)) conv=notrunc status=none
thinp read -m "$M" -d "$D" 2 4096 200000 | cmp -s - "$T/want" || fail "snapshot contents"
verify "$M"

step "discard unmaps whole blocks only"
before=$(thinp status -m "$M" | cut -d' ' -f3)
thinp discard -m "$M" -d "$D" 1 64k 128k || fail "discard"
after=$(thinp status -m "$M" | cut -d' ' -f3)
[ "${before%/*}" -gt "${after%/*}" ] || fail "discard freed nothing ($before -> $after)"
cp "$T/a" "$T/want"
dd if=/dev/zero of="$T/want" bs=1 seek=$((65536 - 4096)) count=131072 conv=notrunc status=none
thinp read -m "$M" -d "$D" 1 4096 200000 | cmp -s - "$T/want" || fail "discarded range"
[ "$(thinp lookup -m "$M" 1 1)" = "1 1 -" ] || fail "block 1 still mapped"
verify "$M"

step "resize grows the data file and the pool"
thinp resize -m "$M" -d "$D" --data-blocks 150 || fail "resize"
[ "$(stat -c %s "$D")" = $((150 * 65536)) ] || fail "data file not grown"
thinp status -m "$M" | cut -d' ' -f3 | grep -q '/150$' || fail "pool not grown: $(thinp status -m "$M")"
"$THINP" resize -m "$M" -d "$D" --data-blocks 120 2>"$T/err" && fail "shrinking accepted"
[ "$(wc -l <"$T/err")" = 1 ] || fail "shrink: $(cat "$T/err")"
verify "$M"

step "errors: one line, exit 1 or 2"
expect() {
	local code=$1 rc
	shift
	"$THINP" "$@" </dev/null >/dev/null 2>"$T/err"
	rc=$?
	[ $rc = "$code" ] || fail "thinp $*: exit $rc, expected $code ($(cat "$T/err"))"
	[ "$(wc -l <"$T/err")" = 1 ] && grep -q "^thinp $1: " "$T/err" ||
		fail "thinp $*: not one 'thinp $1:' line: $(cat "$T/err")"
	echo "ok ($rc): thinp $* -> $(cat "$T/err")"
}
expect 2 write -m "$M" 1 0
expect 2 write -m "$M" -d "$D" 1
expect 2 write -m "$M" -d "$D" x 0
expect 2 read -m "$M" -d "$D" 1 0 4k extra
expect 2 read -m "$M" -d "$D" 1 0 12q
expect 2 discard -m "$M" -d "$D" --origin "$D" 1 0 4k
expect 2 resize -m "$M" -d "$D"
expect 2 resize -m "$M" -d "$D" --data-blocks 1099511627776
expect 1 read -m "$M" -d "$D" 7 0 4k
expect 1 write -m "$M" -d "$T/nonexistent" 1 0
expect 1 read -m "$T/nonexistent" -d "$D" 1 0 4k

step "every command has --help, and the man page describes it"
man=$srcdir/tools/thinp.1
cmds=$("$THINP" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "thinp --help lists no commands"
for c in $cmds; do
	"$THINP" "$c" --help >"$T/help" || fail "thinp $c --help failed"
	head -1 "$T/help" | grep -q "^Usage: thinp $c " || fail "thinp $c --help: $(head -1 "$T/help")"
	grep -q "^\.B $c " "$man" || fail "tools/thinp.1 has no entry for $c"
	for o in $(grep -o -- '--[a-z][a-z-]*' "$T/help" | sort -u); do
		[ "$o" = --help ] && continue
		sed -n "/^\\.B $c /,/^\\.TP/p" "$man" | sed 's/\\-/-/g' | grep -q -- "$o" ||
			fail "tools/thinp.1 does not mention $o under $c"
	done
	echo "ok: $c"
done
echo PASS
