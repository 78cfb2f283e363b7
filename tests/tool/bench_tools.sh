#!/bin/bash
# Benchmark: thinp check / thinp dump against thin_check / thin_dump 0.9.0 on
# the same large image written by thin_restore. Not part of make check.
#
#   tests/tool/bench_tools.sh [BUILD_DIR] [--10m]
#
# BUILD_DIR holds tools/thinp (default: the current directory). Runs the
# 1 M-mapping image, and with --10m also a 10 M one. Each command runs three
# times on a warm page cache; the fastest run counts. Prints wall-clock and
# CPU (user+sys) seconds and the ratios thinp/thin (below 1: thinp is
# faster). The two dumps are compared first. The real binary is run, not
# libtool's wrapper script.
set -u
export PATH="$PATH:/usr/sbin:/sbin" LC_ALL=C
build=.
sizes="1000000"
for a in "$@"; do
	case $a in
	--10m) sizes="1000000 10000000" ;;
	*) build=$a ;;
	esac
done
THINP=$build/tools/thinp
[ -x "$THINP" ] || { echo "no thinp at $THINP"; exit 1; }
if [ -x "$build/tools/.libs/thinp" ]; then
	export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	THINP=$build/tools/.libs/thinp
fi
T=$(mktemp -d "${TMPDIR:-/var/tmp}/thinp-bench.XXXXXX")
trap 'rm -rf "$T"' EXIT

# A pool of 100 devices: every other device shares most data blocks with its
# neighbour (like restored snapshots); runs of 1..64 blocks with gaps, so the
# dump has a realistic mix of single and range mappings. Streamed, so 10 M
# mappings need no memory.
gen() {
	python3 - "$1" <<'PY'
import random, sys
n = int(sys.argv[1]); rng = random.Random(42); ndev = 100; per = n // ndev
out = sys.stdout; w = out.write
w('<superblock uuid="" time="5" transaction="1" data_block_size="128" nr_data_blocks="%d">\n' % (n + ndev * 64))
data = 0
for dev in range(ndev):
    w('  <device dev_id="%d" mapped_blocks="0" transaction="1" creation_time="0" snap_time="1">\n' % dev)
    shared = dev % 2 == 1
    if not shared:
        base = data
    v = 0; done = 0; d = base
    r2 = random.Random(dev // 2)   # the pair replays the same layout
    while done < per:
        k = min(per - done, r2.choice([1, 1, 2, r2.randint(1, 64)]))
        v += r2.randint(0, 3)
        dd = d
        if shared and rng.random() < 0.1:
            dd = data; data += k       # overwritten after the snapshot
        t = 0 if dd == d else 2
        if k == 1:
            w('    <single_mapping origin_block="%d" data_block="%d" time="%d"/>\n' % (v, dd, t))
        else:
            w('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>\n' % (v, dd, k, t))
        v += k; d += k; done += k
    if not shared:
        data = d
    w('  </device>\n')
w('</superblock>\n')
PY
}

# best_of3 CMD...: "wall cpu" seconds of the fastest of three runs (cpu =
# user + sys; on a loaded machine it is the steadier figure). Any failure
# stops the benchmark.
best_of3() {
	local bw= bc= out rc w u s
	for i in 1 2 3; do
		out=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$T/err"; } 2>&1 )
		rc=$?
		if [ $rc != 0 ]; then
			echo "FAILED: $*: $(head -3 "$T/err")" >&2
			exit 1
		fi
		read -r w u s <<<"$(echo "$out" | tail -1)"
		if [ -z "$bw" ] || [ "$(echo "$w < $bw" | bc)" = 1 ]; then
			bw=$w
			bc=$(echo "$u + $s" | bc)
		fi
	done
	echo "$bw $bc"
}

ratio() { echo "scale=2; $1 / $2" | bc | sed 's/^\./0./'; }

printf '%-9s %-6s %9s %9s %6s   %9s %9s %6s\n' mappings cmd thin_wall thinp_wall ratio thin_cpu thinp_cpu ratio
row() { # n cmd "wall cpu"(thin) "wall cpu"(thinp)
	local tw tc pw pc
	[ -n "$3" ] && [ -n "$4" ] || exit 1
	read -r tw tc <<<"$3"
	read -r pw pc <<<"$4"
	printf '%-9s %-6s %9s %9s %6s   %9s %9s %6s\n' "$1" "$2" "$tw" "$pw" "$(ratio "$pw" "$tw")" \
		"$tc" "$pc" "$(ratio "$pc" "$tc")"
}
for n in $sizes; do
	m=$T/meta.$n
	gen "$n" >"$T/pool.xml"
	truncate -s $(( n / 1000000 * 256 + 64 ))M "$m"
	thin_restore -i "$T/pool.xml" -o "$m" >/dev/null || { echo "thin_restore failed"; exit 1; }
	rm -f "$T/pool.xml"
	thin_dump "$m" >"$T/a.xml"; "$THINP" dump -m "$m" >"$T/b.xml"
	cmp -s "$T/a.xml" "$T/b.xml" || { echo "dumps differ at $n mappings"; exit 1; }
	rm -f "$T/a.xml" "$T/b.xml"
	row "$n" check "$(best_of3 thin_check "$m")" "$(best_of3 "$THINP" check -m "$m")"
	row "$n" dump "$(best_of3 thin_dump "$m")" "$(best_of3 "$THINP" dump -m "$m")"
	rm -f "$m"
done
