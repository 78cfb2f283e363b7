#!/bin/bash
# thinp create and the catalog: devices and snapshots get entries (a
# snapshot inherits its origin's size and external origin), thinp ls shows
# the sizes and '-' for a device created without one, a device deleted
# behind the catalog is not listed, --catalog names another file, and the
# pool metadata stays clean for thin_check.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

M=$T/meta D=$T/data
truncate -s 8M "$M"
truncate -s 64M "$D"
thinp format -m "$M" -b 64k -n 1024 || fail "format"
sizes() { thinp ls -m "$M" --no-headers | awk '{ printf "%s=%s ", $1, $6 }'; }

step "create, snapshot, plain create_thin"
thinp create -m "$M" -d "$D" --size 10M 1 || fail "create 1"
thinp create -m "$M" -d "$D" --snapshot-of 1 2 || fail "snapshot 2 of 1"
thinp create -m "$M" -d "$D" --size 1g --origin /etc/hostname -r 3 || fail "create 3"
thinp create -m "$M" -d "$D" --snapshot-of 3 --size 2g 4 || fail "snapshot 4 of 3"
thinp message -m "$M" create_thin 5 || fail "create_thin 5"
[ -s "$M.vol" ] || fail "no catalog file beside the metadata"
got=$(sizes)
[ "$got" = "1=10485760 2=10485760 3=1073741824 4=2147483648 5=- " ] || fail "sizes: $got"
check_image "$M"

step "refusals leave the catalog alone"
thinp create -m "$M" -d "$D" --size 1M 1 2>/dev/null && fail "create of an existing id"
thinp create -m "$M" -d "$D" --snapshot-of 5 6 2>/dev/null &&
	fail "snapshot of a device without an entry, without --size"
thinp create -m "$M" -d "$D" 7 2>/dev/null && fail "create without --size"
[ "$(sizes)" = "$got" ] || fail "sizes changed: $(sizes)"

step "delete behind the catalog"
thinp message -m "$M" delete 2 || fail "delete 2"
thinp create -m "$M" -d "$D" --size 4k --catalog "$T/other.vol" 8 || fail "create 8 elsewhere"
got=$(sizes)
[ "$got" = "1=10485760 3=1073741824 4=2147483648 5=- 8=- " ] || fail "sizes after delete: $got"
thinp ls -m "$M" --catalog "$T/other.vol" --no-headers | grep -q '^8 .* 4096$' ||
	fail "ls --catalog"
thinp ls -m "$M" --catalog "$T/missing.vol" 2>/dev/null && fail "ls with a missing --catalog"
check_image "$M"
echo "ok"
