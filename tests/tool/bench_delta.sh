#!/bin/bash
# Benchmark: thinp delta --changes-only against thin_delta 0.9.0 on the same
# metadata file. Not part of make check.
#
#   tests/tool/bench_delta.sh [BUILD_DIR] [--10m] [--scattered] [--baseline=DIR]
#
# Each pool is built by tests/thin/mk_delta_pool (made here if missing): a
# device of M mapped blocks and its snapshot (create_snap: they share every
# btree node), then 0.1 %, 1 % and 10 % of the snapshot's blocks remapped
# to new data blocks in runs of 128 (--scattered: single blocks at random
# places, the worst case: every change breaks sharing of its own leaf).
# M is 1 M, and with --10m also 10 M. Then, on a warm page cache, best of
# three runs each, by wall clock and by CPU time (user + system; on a loaded
# machine the wall clock of a short run is mostly waiting for a core):
#   thin_delta --snap1 1 --snap2 2            (0.9.0: walks both trees whole)
#   thinp delta --changes-only                (skips the shared subtrees)
#   thinp delta                               (thin_delta's output, byte for byte)
# The outputs are compared first (changes-only = thin_delta without <same>).
# thin_delta 0.9.0 reads with O_DIRECT (and libaio), thinp through the page
# cache (its --metadata-snap reads use O_DIRECT); neither cache is dropped.
# The ratio thin_delta / thinp --changes-only is printed per pool, and the
# thinp times show how the cost follows the changed blocks, not the mapped:
# 1 M mapped with 1 % changed and 10 M mapped with 0.1 % changed have the
# same 10 000 changed blocks, so their thinp_changes times should be close
# while thin_delta's grow tenfold. --baseline=DIR (another build, e.g. of the
# main branch) also times that build's thinp --changes-only on the same
# pools, in the same run (same load): columns base_changes and base_ratio.
set -u
export PATH="$PATH:/usr/sbin:/sbin" LC_ALL=C
build=.
base=
sizes="1000000"
run=128
for a in "$@"; do
	case $a in
	--10m) sizes="1000000 10000000" ;;
	--scattered) run=1 ;;
	--baseline=*) base=${a#--baseline=} ;;
	*) build=$a ;;
	esac
done
THINP=$build/tools/thinp
MK=$build/tests/thin/mk_delta_pool
[ -x "$THINP" ] || { echo "no thinp at $THINP"; exit 1; }
[ -x "$MK" ] || make -C "$build" tests/thin/mk_delta_pool >/dev/null || exit 1
if [ -x "$build/tools/.libs/thinp" ]; then
	export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	THINP=$build/tools/.libs/thinp
fi
[ -x "$build/tests/thin/.libs/mk_delta_pool" ] && MK=$build/tests/thin/.libs/mk_delta_pool
# The baseline's binary with its own library (not libtool's wrapper, whose
# start-up would be timed too).
base_thinp() {
	LD_LIBRARY_PATH="$base/.libs" "$base/tools/.libs/thinp" "$@"
}
if [ -n "$base" ] && [ ! -x "$base/tools/.libs/thinp" ]; then
	echo "no thinp at $base/tools/.libs"; exit 1
fi
command -v thin_delta >/dev/null || { echo "no thin_delta"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/thinp-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

# "WALL CPU": the best wall-clock and the best CPU (user + system) seconds
# of three runs of "$@" (output to $T/out). On a loaded machine the wall
# clock of a short run is mostly waiting for a core; CPU time is not.
best() {
	local i w=1e9 c=1e9 TIMEFORMAT='%R %U %S'
	for i in 1 2 3; do
		{ time "$@" >"$T/out" 2>"$T/err"; } 2>"$T/time" ||
			{ echo "failed: $*: $(cat "$T/err")" >&2; exit 1; }
		read -r w c < <(awk -v w="$w" -v c="$c" '{ u = $2 + $3;
			print ($1 < w ? $1 : w), (u < c ? u : c) }' "$T/time")
	done
	echo "$w $c"
}

# ratio A B: A / B to one decimal, B at least a millisecond
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / (b < 0.001 ? 0.001 : b) }'
}

printf '%-9s %-7s %-8s %21s %21s %15s %9s' mapped changed runs_out "thin_delta wall/cpu" \
	"thinp_changes w/cpu" "ratio wall/cpu" thinp_full
[ -n "$base" ] && printf ' %21s %15s' "base_changes w/cpu" "base_ratio w/cpu"
echo
for m in $sizes; do
	for permille in 1 10 100; do
		changed=$((m * permille / 1000))
		img=$T/pool.meta
		rm -f "$img"
		truncate -s $(( (m / 1000000 + 1) * 2 * 1024 ))M "$img"
		"$MK" "$img" "$m" "$changed" "$run" || exit 1
		thin_delta --snap1 1 --snap2 2 "$img" >"$T/want"
		"$THINP" delta -m "$img" --snap1 1 --snap2 2 | cmp -s - "$T/want" ||
			{ echo "thinp delta differs from thin_delta"; exit 1; }
		grep -v '^    <same ' "$T/want" >"$T/want.changes"
		"$THINP" delta -m "$img" --snap1 1 --snap2 2 --changes-only |
			cmp -s - "$T/want.changes" || { echo "--changes-only differs"; exit 1; }
		lines=$(($(wc -l <"$T/want.changes") - 4))
		read -r tdw tdc < <(best thin_delta --snap1 1 --snap2 2 "$img")
		read -r tcw tcc < <(best "$THINP" delta -m "$img" --snap1 1 --snap2 2 --changes-only)
		read -r tfw _ < <(best "$THINP" delta -m "$img" --snap1 1 --snap2 2)
		printf '%-9s %-7s %-8s %10.3fs/%8.3fs %10.3fs/%8.3fs %7s/%7s %8.3fs' "$m" \
			"$(awk -v p="$permille" 'BEGIN { printf "%.1f%%", p / 10 }')" "$lines" \
			"$tdw" "$tdc" "$tcw" "$tcc" "$(ratio "$tdw" "$tcw")" "$(ratio "$tdc" "$tcc")" \
			"$tfw"
		if [ -n "$base" ]; then
			base_thinp delta -m "$img" --snap1 1 --snap2 2 --changes-only |
				cmp -s - "$T/want.changes" || { echo "baseline differs"; exit 1; }
			read -r tbw tbc < <(best base_thinp delta -m "$img" --snap1 1 --snap2 2 \
				--changes-only)
			printf ' %10.3fs/%8.3fs %7s/%7s' "$tbw" "$tbc" "$(ratio "$tdw" "$tbw")" \
				"$(ratio "$tdc" "$tbc")"
		fi
		echo
	done
done
