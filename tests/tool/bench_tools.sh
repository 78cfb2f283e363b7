#!/bin/bash
# Benchmark: thinp check / thinp dump against thin_check / thin_dump 0.9.0 on
# the same large image written by thin_restore. Not part of make check.
#
#   tests/tool/bench_tools.sh [BUILD_DIR] [--10m]
#
# BUILD_DIR holds tools/thinp (default: the current directory). Runs the
# 1 M-mapping image, and with --10m also a 10 M one. Each command runs three
# times on a warm page cache; the best time counts. Prints seconds and the
# ratio thinp/thin (below 1: thinp is faster). Dumps are also compared.
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

best() { # best of three wall-clock seconds of "$@"
	local b= t
	for i in 1 2 3; do
		local s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }
		t=$(echo "$(date +%s.%N) - $s" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	printf '%.3f' "$b"
}

ratio() { echo "scale=2; $1 / $2" | bc; }

printf '%-10s %-8s %10s %10s %8s\n' mappings command thin_tool thinp ratio
for n in $sizes; do
	m=$T/meta.$n
	gen "$n" >"$T/pool.xml"
	truncate -s $(( n / 1000000 * 256 + 64 ))M "$m"
	thin_restore -i "$T/pool.xml" -o "$m" >/dev/null || { echo "thin_restore failed"; exit 1; }
	rm -f "$T/pool.xml"
	thin_dump "$m" >"$T/a.xml"; "$THINP" dump -m "$m" >"$T/b.xml"
	cmp -s "$T/a.xml" "$T/b.xml" || { echo "dumps differ at $n mappings"; exit 1; }
	rm -f "$T/a.xml" "$T/b.xml"
	tc=$(best thin_check "$m"); pc=$(best "$THINP" check -m "$m")
	printf '%-10s %-8s %10s %10s %8s\n' "$n" check "$tc" "$pc" "$(ratio "$pc" "$tc")"
	td=$(best thin_dump "$m"); pd=$(best "$THINP" dump -m "$m")
	printf '%-10s %-8s %10s %10s %8s\n' "$n" dump "$td" "$pd" "$(ratio "$pd" "$td")"
	rm -f "$m"
done
