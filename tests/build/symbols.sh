#!/bin/bash
# The exported symbol table of the built libthinp.so:
#   - every defined dynamic symbol is thinp_* (or a version node: LIBTHINP_1.N,
#     LIBTHINP_META_1.N or LIBTHINP_TESTING_1.N, one family per ABI tier);
#   - every thinp_* symbol carries a default version @@<node>, and the node it
#     carries is the node lib/libthinp.map lists it in;
#   - every function a header declares is in a node of that header's tier
#     (" * ABI tier: stable|metadata|testing" in the header);
#   - every symbol in lib/libthinp.map is defined;
#   - every function an installed header declares THINP_API and the library
#     defines is in the map (else the version script's `local: *` hides it
#     and clients fail to link).
set -u
. "${THINP_SRCDIR:?run me from make check}/tests/build/lib.sh"

so=$THINP_BUILDDIR/.libs/libthinp.so
[ -f "$so" ] || skip "no shared library (configured with --disable-shared?)"
map=$THINP_SRCDIR/lib/libthinp.map
make_tmpdir

nm -D --defined-only "$so" >"$tmp/nm" || fail "nm -D $so"

# "name node" for each symbol the map exports, in map order.
awk '
	/^[ \t]*LIBTHINP_[A-Z0-9_.]+[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); next }
	/^[ \t]*(global|local):/ { next }
	/^[ \t]*thinp_[a-z0-9_]*[ \t]*;/ { s = $1; sub(/;.*/, "", s); print s, node }
' "$map" >"$tmp/map"
[ -s "$tmp/map" ] || fail "no symbols found in $map"

# Symbols exported twice in the map.
dups=$(awk '{print $1}' "$tmp/map" | sort | uniq -d)
[ -z "$dups" ] && ok "no symbol listed twice in the map" ||
	not_ok "listed more than once in lib/libthinp.map: $dups"

bad=0
while read -r addr type name; do
	[ -n "$name" ] || { name=$type; type=$addr; }
	case $name in
	LIBTHINP_1.* | LIBTHINP_META_1.* | LIBTHINP_TESTING_1.*)
		[ "$type" = A ] || { not_ok "version node $name has type $type"; bad=1; }
		;;
	thinp_*@@LIBTHINP_*)
		sym=${name%%@@*}
		node=${name#*@@}
		want=$(awk -v s="$sym" '$1 == s { print $2 }' "$tmp/map")
		if [ -z "$want" ]; then
			not_ok "$sym is exported but not in lib/libthinp.map"; bad=1
		elif [ "$want" != "$node" ]; then
			not_ok "$sym is versioned $node but the map lists it in $want"; bad=1
		fi
		;;
	*)
		not_ok "unexpected exported symbol '$name' (type $type): only thinp_* symbols, each versioned @@LIBTHINP_[tier_]1.N, may be exported"
		bad=1
		;;
	esac
done <"$tmp/nm"
[ $bad = 0 ] && ok "every exported symbol is thinp_*@@LIBTHINP_[tier_]1.N, in the node the map says"

missing=
while read -r sym node; do
	grep -q " $sym@@$node\$" "$tmp/nm" || missing="$missing $sym"
done <"$tmp/map"
[ -z "$missing" ] && ok "every symbol in lib/libthinp.map is defined ($(wc -l <"$tmp/map"))" ||
	not_ok "in lib/libthinp.map but not defined in libthinp.so:$missing"

# Functions declared THINP_API in the installed headers (the declaration may
# span lines; the name is the identifier right before the first '('), as
# "name node-prefix" where the prefix is the one of the header's tier.
for path in ${THINP_PUBLIC_HEADERS:?}; do
	h=$THINP_SRCDIR/$path
	case $(sed -n 's/^ \* ABI tier: \([a-z]*\).*/\1/p' "$h" | head -n 1) in
	metadata) prefix=LIBTHINP_META_1. ;;
	testing) prefix=LIBTHINP_TESTING_1. ;;
	*) prefix=LIBTHINP_1. ;;
	esac
	awk -v prefix="$prefix" '
		/^[ \t]*#/ { next }
		/THINP_API/ { decl = ""; on = 1 }
		on { decl = decl " " $0
		     if (decl ~ /\(/) {
			sub(/\(.*/, "", decl); n = split(decl, w, /[ \t*]+/); print w[n], prefix; on = 0 } }
	' "$h"
done | sort -u >"$tmp/declared_tier"
awk '{ print $1 }' "$tmp/declared_tier" | sort -u >"$tmp/declared"
wrong_tier=
while read -r sym prefix; do
	node=$(awk -v s="$sym" '$1 == s { print $2 }' "$tmp/map")
	[ -z "$node" ] || case $node in "$prefix"*) ;; *) wrong_tier="$wrong_tier $sym($node)" ;; esac
done <"$tmp/declared_tier"
[ -z "$wrong_tier" ] && ok "every mapped function is in a node of its header's tier" ||
	not_ok "in a node of another tier than its header's:$wrong_tier"
# Declared but not in the map: hidden by the version script if the library
# defines it, missing altogether if not; either way a client cannot link it.
nm "$so" | awk '$2 ~ /^[Tt]$/ { print $3 }' | sort -u >"$tmp/defined"
hidden=
unimplemented=
while read -r sym; do
	awk -v s="$sym" '$1 == s { f = 1 } END { exit !f }' "$tmp/map" && continue
	if grep -qx "$sym" "$tmp/defined"; then
		hidden="$hidden $sym"
	else
		unimplemented="$unimplemented $sym"
	fi
done <"$tmp/declared"
[ -z "$unimplemented" ] && ok "every THINP_API function is defined in the library" ||
	not_ok "declared THINP_API but not defined in the library:$unimplemented"
[ -z "$hidden" ] && ok "every THINP_API function the library defines is in the map ($(wc -l <"$tmp/declared") declared)" ||
	not_ok "defined and declared THINP_API but missing from lib/libthinp.map, so hidden and clients cannot link:$hidden"

finish
