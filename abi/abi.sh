#!/bin/bash
# The libthinp ABI gate (CONVENTIONS.md, "The ABI gate that works").
#
#   abi.sh check    LIB HEADERS_DIR BASELINE SUPPR   compare LIB with BASELINE
#   abi.sh baseline LIB HEADERS_DIR BASELINE         write BASELINE from LIB
#
# The baseline (abi/libthinp.abi) is the ABI of the last release, written by
# `make abi-baseline` on purpose at release time, together with a copy of the
# public headers it was made from (abi/include/, used by the old-client test).
#
# Two settings make compatible changes pass: --no-added-syms (a new function
# is fine) and the suppression file (a member appended at the end of a
# public struct is fine: every one begins with struct_size). Everything else
# abidiff finds fails.
#
# Two ways the gate could pass without comparing, both guarded against:
#  - abidiff passes silently on a library without debug info: the gate first
#    insists on .debug_info (the build keeps -g);
#  - libabigail 2.2 by default ties a function to its ELF symbol through the
#    first DWARF DIE it meets, which for a function the library also calls
#    internally (thinp_io_new from memory.c) is a declaration: the function
#    then drops out of the corpus and a changed parameter type passes.
#    --exported-interfaces-only (abidw and abidiff) builds the corpus from the
#    exported symbols instead; the gate also counts that every exported
#    function is in the corpus. tests/build/abi-selftest.sh found this.
set -u

die() { echo "abi.sh: $*" >&2; exit 2; }

have_debug_info() {
	readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'
}

mode=${1:-}
lib=${2:-}
hdrs=${3:-}
baseline=${4:-}
[ -n "$mode" ] && [ -n "$lib" ] && [ -n "$hdrs" ] && [ -n "$baseline" ] ||
	die "usage: abi.sh check|baseline LIB HEADERS_DIR BASELINE [SUPPR]"
[ -f "$lib" ] || die "no library at $lib (build first; a --disable-shared build has no ABI)"
[ -d "$hdrs" ] || die "no headers directory $hdrs"
have_debug_info "$lib" ||
	die "$lib has no .debug_info: abidiff would pass without comparing anything (keep -g in CFLAGS)"

ABIDW=${ABIDW:-abidw}
ABIDIFF=${ABIDIFF:-abidiff}

# complete LIB XML: every function LIB exports is a function-decl tied to its
# symbol in the ABI XML (the output of abidw).
complete() {
	local exported described
	exported=$(nm -D --defined-only "$1" | awk '$2 ~ /^[TtWi]$/' | wc -l)
	described=$(grep '<function-decl ' "$2" | grep -c "elf-symbol-id=")
	[ "$exported" -eq "$described" ] && return 0
	echo "abi.sh: $1 exports $exported functions but its ABI corpus describes $described:" >&2
	echo "  libabigail did not see them all, so the gate cannot compare them" >&2
	return 1
}

case $mode in
baseline)
	"$ABIDW" --exported-interfaces-only --headers-dir "$hdrs" --no-corpus-path \
		--no-comp-dir-path --out-file "$baseline" "$lib" || die "abidw failed"
	complete "$lib" "$baseline" || die "incomplete baseline"
	# The headers the baseline describes, for programs built "against the
	# last release" (tests/build/old-client.sh).
	snap=$(dirname "$baseline")/include/libthinp
	rm -rf "$snap" && mkdir -p "$snap" && cp "$hdrs"/*.h "$snap"/ ||
		die "could not copy the headers to $snap"
	echo "wrote $baseline and $snap/ from $lib"
	echo "commit them: the gate now compares every build with this ABI"
	;;
check)
	suppr=${5:-}
	[ -f "$baseline" ] || die "no baseline $baseline (make abi-baseline)"
	[ -f "$suppr" ] || die "no suppression file $suppr"
	tmpxml=$(mktemp) || die mktemp
	"$ABIDW" --exported-interfaces-only --headers-dir "$hdrs" --out-file "$tmpxml" "$lib" &&
		complete "$lib" "$tmpxml"
	rc=$?
	rm -f "$tmpxml"
	[ $rc -eq 0 ] || die "cannot check $lib"
	out=$("$ABIDIFF" --exported-interfaces-only --no-added-syms --suppressions "$suppr" \
		--hd2 "$hdrs" "$baseline" "$lib" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		printf '%s\n' "$out"
		echo "abi.sh: ABI CHANGED against $baseline (abidiff exit $rc)" >&2
		echo "  A released interface must not change: add a new symbol (a _v2 twin)," >&2
		echo "  append members only at the end of *_ops/*_options structs." >&2
		echo "  Before a release only, an intended change is recorded with" >&2
		echo "  'make abi-baseline' and committing abi/." >&2
		exit 1
	fi
	echo "abi.sh: $lib is compatible with $baseline"
	;;
*)
	die "unknown mode $mode"
	;;
esac
