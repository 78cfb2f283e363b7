#!/bin/bash
# Metadata snapshots: reserve with thinp message, change the pool, then
# thin_dump -m shows the held state while thin_dump shows the live one, and
# thinp dump --metadata-snap[=BLOCK] agrees with thin_dump -m [BLOCK].
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

M=$T/meta
truncate -s 32M "$M"
python3 "$GEN" --seed "$SEED" --mappings 2000 --out "$T/pool.xml" --normalized "$T/norm.xml" ||
	fail "generator"
thinp restore -m "$M" -i "$T/pool.xml" || fail "restore"
verify "$M"
first=$(thinp ls -m "$M" --no-headers | awk 'NR == 1 { print $1 }')
[ -n "$first" ] || fail "no devices"

step "reserve"
thinp message -m "$M" reserve_metadata_snap || fail "reserve_metadata_snap"
held=$(held_root "$M")
[ "$held" != - ] || fail "status shows no held root after reserve"
verify "$M"
check_image "$M" -m
same_dump "$M" held
same_dump "$M" "$held"
thin_dump -m "$M" >"$T/held.xml"
# The snapshot shows the live state of the moment, with nr_data_blocks 0.
sed 's/nr_data_blocks="[0-9]*"/nr_data_blocks="0"/' "$T/norm.xml" | cmp -s - "$T/held.xml" ||
	fail "held state differs from the pool at reserve time"

step "change the live pool"
thinp message -m "$M" "create_snap 16777000 $first" || fail "create_snap"
thinp message -m "$M" "delete $first" || fail "delete"
thinp message -m "$M" "create_thin $first" || fail "create_thin"
thinp message -m "$M" "set_transaction_id $(thinp status -m "$M" | cut -d' ' -f1) 424242" ||
	fail "set_transaction_id"
verify "$M"
check_image "$M" -m
same_dump "$M" held
same_dump "$M" "$held"
thin_dump -m "$M" | cmp -s - "$T/held.xml" || fail "held state changed with the live pool"
thin_dump "$M" | cmp -s - "$T/held.xml" && fail "live dump still equals the held state"
thin_dump "$M" | head -1 | grep -q 'transaction="424242"' || fail "live transaction id not shown"
[ "$(held_root "$M")" = "$held" ] || fail "held root moved"

step "a second reserve is refused and changes nothing"
before=$(sum "$M")
thinp message -m "$M" reserve_metadata_snap 2>"$T/err" && fail "second reserve succeeded"
[ "$(wc -l <"$T/err")" = 1 ] || fail "not one line: $(cat "$T/err")"
[ "$(sum "$M")" = "$before" ] || fail "refused reserve changed the file"

step "release"
thinp message -m "$M" release_metadata_snap || fail "release_metadata_snap"
verify "$M"
[ "$(held_root "$M")" = - ] || fail "held root still shown after release"
thin_dump -m "$M" >/dev/null 2>&1 && fail "thin_dump -m works without a snapshot"
thinp dump -m "$M" --metadata-snap >/dev/null 2>"$T/err" && fail "thinp dump --metadata-snap works without a snapshot"
grep -q "no metadata snapshot" "$T/err" || fail "unclear error: $(cat "$T/err")"

step "reserve again after release, on the changed pool"
thinp message -m "$M" reserve_metadata_snap || fail "reserve after release"
verify "$M"
same_dump "$M" held
thinp message -m "$M" release_metadata_snap || fail "release"
verify "$M"
echo PASS
