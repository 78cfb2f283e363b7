#!/bin/bash
# Scenarios driven by thinp (format, messages, restore): after every step the
# image passes thin_check and thinp check, and thin_dump equals thinp dump.
# Status and ls are compared with what the steps imply and with thin_ls.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

M=$T/meta

step "format"
truncate -s 16M "$M"
thinp format -m "$M" --block-size 64k --data-blocks 1000 || fail "format"
verify "$M"
dump=$(thinp dump -m "$M")
want='<superblock uuid="" time="0" transaction="0" flags="0" version="2" data_block_size="128" nr_data_blocks="1000">
</superblock>'
[ "$dump" = "$want" ] || fail "fresh pool dumps as: $dump"
# 16 MiB = 4096 blocks: reserve min(4096, 409), watermark min(1024, 1024).
set -- $(thinp status -m "$M")
[ "$1" = 0 ] && [ "${2#*/}" = 4096 ] && [ "$3" = 0/1000 ] && [ "$4" = - ] &&
	[ "$5 $6 $7 $8 $9" = "rw discard_passdown queue_if_no_space - 1024" ] ||
	fail "status of a fresh pool: $*"
used=${2%/*}
[ "$used" -gt 409 ] && [ "$used" -lt 440 ] || fail "used metadata $used: expected the reserve 409 plus a few blocks"

step "messages"
for msg in "create_thin 0" "create_thin 5" "create_snap 1 0" "CREATE_THIN 16777215" \
	"delete 5" "set_transaction_id 0 7" "create_snap 2 1"; do
	thinp message -m "$M" "$msg" || fail "message '$msg'"
	verify "$M"
done
thinp message -m "$M" create_thin 3 || fail "message given as separate words"
verify "$M"
got=$(thinp ls -m "$M" --no-headers | tr -s ' ' | sed 's/^ //')
want="0 0 0 0 1
1 0 0 1 2
2 0 7 2 2
3 0 7 2 2
16777215 0 0 1 1"
[ "$got" = "$want" ] || fail "ls after messages: $got"
[ "$(thinp status -m "$M" | cut -d' ' -f1)" = 7 ] || fail "transaction id not 7"

step "restore, then snapshot and delete on restored mappings"
cat >"$T/in.xml" <<'XML'
<superblock uuid="" time="3" transaction="5" data_block_size="128" nr_data_blocks="100000">
  <device dev_id="0" mapped_blocks="0" transaction="1" creation_time="0" snap_time="2">
    <range_mapping origin_begin="0" data_begin="0" length="10" time="1"/>
    <single_mapping origin_block="20" data_block="1000" time="3"/>
  </device>
  <device dev_id="1" mapped_blocks="0" transaction="1" creation_time="1" snap_time="2">
    <range_mapping origin_begin="0" data_begin="0" length="5" time="1"/>
  </device>
  <device dev_id="7" mapped_blocks="0" transaction="2" creation_time="2" snap_time="2">
  </device>
</superblock>
XML
thinp restore -m "$M" -i "$T/in.xml" || fail "restore"
verify "$M"
[ "$(thinp status -m "$M" | cut -d' ' -f3)" = 11/100000 ] || fail "used data after restore: $(thinp status -m "$M")"
thinp message -m "$M" "create_snap 9 0" || fail "create_snap of a restored device"
verify "$M"
[ "$(thin_dump "$M" | grep -c 'mapping')" = 5 ] || fail "snapshot does not show the origin's 2 runs"
thinp message -m "$M" "delete 0" || fail "delete origin"
verify "$M"
thinp message -m "$M" "delete 9" || fail "delete snapshot"
verify "$M"
[ "$(thinp status -m "$M" | cut -d' ' -f3)" = 5/100000 ] || fail "data blocks not released: $(thinp status -m "$M")"

step "ls agrees with thin_ls"
got=$(thinp ls -m "$M" | tr -s ' ' | sed 's/^ //; s/ $//')
want=$(thin_ls -o DEV,MAPPED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME "$M" | tr -s ' ' | sed 's/^ //; s/ $//')
[ "$got" = "$want" ] || fail "ls: '$got' vs thin_ls: '$want'"

step "lookups"
[ "$(thinp lookup -m "$M" 1 4)" = "1 4 4 1" ] || fail "lookup 1 4"
[ "$(thinp lookup -m "$M" 1 5)" = "1 5 -" ] || fail "lookup 1 5"
[ "$(printf '7 0\n1 0\n' | thinp lookup -m "$M")" = "7 0 -
1 0 0 1" ] || fail "lookups from stdin"

step "thin_restore output read by thinp; metadata larger than the format uses"
thin_restore -i "$T/in.xml" -o "$M" || fail "thin_restore"
check_restored_image "$M"
same_dump "$M"
truncate -s 17G "$T/big"
thinp format -m "$T/big" --block-size 1m --data-blocks 5 || fail "format of a 17 GiB file"
verify "$T/big"
[ "$(thinp status -m "$T/big" | cut -d' ' -f2 | cut -d/ -f2)" = 4161600 ] || fail "metadata not capped at 4161600 blocks"
rm -f "$T/big"

step "format --force over a pool; version 1 and needs_check survive restore"
thinp format -m "$M" --block-size 1g --data-blocks 3 --force || fail "format --force"
verify "$M"
sed 's/uuid=""/uuid="" flags="1"/' "$T/in.xml" >"$T/nc.xml"
thinp restore -m "$M" -i "$T/nc.xml" || fail "restore with needs_check"
verify "$M"
thin_dump "$M" | head -1 | grep -q 'flags="1" version="1"' || fail "flags/version not kept"
[ "$(thinp status -m "$M" | cut -d' ' -f5,8)" = "ro needs_check" ] || fail "status with needs_check: $(thinp status -m "$M")"
echo PASS
