#!/bin/bash
# Benchmark: thinp delta --changes-only against thin_delta 0.9.0 on the same
# metadata file. Not part of make check.
#
#   tests/tool/bench_delta.sh [BUILD_DIR] [--10m] [--scattered]
#
# Each pool is built by tests/thin/mk_delta_pool (made here if missing): a
# device of M mapped blocks and its snapshot (create_snap: they share every
# btree node), then 0.1 %, 1 % and 10 % of the snapshot's blocks remapped
# to new data blocks in runs of 128 (--scattered: single blocks at random
# places, the worst case: every change breaks sharing of its own leaf).
# M is 1 M, and with --10m also 10 M. Then, on a warm page cache, best of
# three wall-clock runs each:
#   thin_delta --snap1 1 --snap2 2            (0.9.0: walks both trees whole)
#   thinp delta --changes-only                (skips the shared subtrees)
#   thinp delta                               (thin_delta's output, byte for byte)
# The outputs are compared first (changes-only = thin_delta without <same>).
# The ratio thin_delta / thinp --changes-only is printed per pool, and the
# thinp times show how the cost follows the changed blocks, not the mapped.
set -u
export PATH="$PATH:/usr/sbin:/sbin" LC_ALL=C
build=.
sizes="1000000"
run=128
for a in "$@"; do
	case $a in
	--10m) sizes="1000000 10000000" ;;
	--scattered) run=1 ;;
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
command -v thin_delta >/dev/null || { echo "no thin_delta"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/var/tmp}/thinp-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

# best WALL_SECONDS of three runs of "$@" (output to $T/out)
best() {
	local i t0 t1 b=
	for i in 1 2 3; do
		t0=$(date +%s.%N)
		"$@" >"$T/out" || { echo "failed: $*" >&2; exit 1; }
		t1=$(date +%s.%N)
		b=$(echo "$t0 $t1 ${b:-1e9}" | awk '{ d = $2 - $1; print (d < $3 ? d : $3) }')
	done
	echo "$b"
}

printf '%-10s %-9s %-9s %12s %14s %10s %12s\n' mapped changed runs_out thin_delta \
	thinp_changes ratio thinp_full
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
		td=$(best thin_delta --snap1 1 --snap2 2 "$img")
		tc=$(best "$THINP" delta -m "$img" --snap1 1 --snap2 2 --changes-only)
		tf=$(best "$THINP" delta -m "$img" --snap1 1 --snap2 2)
		printf '%-10s %-9s %-9s %11.3fs %13.3fs %9.1fx %11.3fs\n' "$m" \
			"$(awk -v p="$permille" 'BEGIN { printf "%.1f%%", p / 10 }')" "$lines" \
			"$td" "$tc" "$(echo "$td $tc" | awk '{ print $1 / $2 }')" "$tf"
	done
done
