#!/bin/bash
# thinp delta against thin_delta 0.9.0, byte for byte, default and --verbose:
#  - random pools of related devices (gen_delta_xml.py: snapshot-like copies
#    with runs overwritten, removed and added) and of unrelated ones
#    (gen_pool_xml.py), written by thin_restore: every pair of devices;
#  - the same pools with a held metadata snapshot while the live pool moves
#    on: -m and --metadata-snap=BLOCK against thinp delta --metadata-snap;
#  - a pool libthinp made itself, by snapshots and writes (thinp message and
#    thinp write), whose devices share btree nodes, live and held.
# Also: --changes-only is thin_delta's default output without its <same>
# lines, --format=json has one line per verbose range, a missing device
# fails; and all of it read in parts at once (--threads), whose seams cut
# runs that must come out whole.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

THIN_DELTA=${THIN_DELTA:-$(command -v thin_delta 2>/dev/null)}
if [ -z "$THIN_DELTA" ] || [ ! -x "$THIN_DELTA" ]; then
	echo "SKIP: thin_delta not found (install thin-provisioning-tools 0.9.0)"
	exit 77
fi
GEND="$srcdir/tests/tool/gen_delta_xml.py"
compared=0

# same_delta IMG A B [held|BLOCK]
same_delta() {
	local img=$1 a=$2 b=$3 snap=${4:-} td=() tp=() v
	case $snap in
	"") ;;
	held) td=(-m) tp=(--metadata-snap) ;;
	*) td=(--metadata-snap="$snap") tp=(--metadata-snap="$snap") ;;
	esac
	for v in "" --verbose; do
		"$THIN_DELTA" ${td[@]+"${td[@]}"} $v --snap1 "$a" --snap2 "$b" "$img" >"$T/want" 2>&1 ||
			fail "thin_delta ${td[*]:-} $v $a $b failed: $(head -3 "$T/want")"
		# Read in one part, and in three at once (seams joined).
		for p in "" "--threads 3"; do
			thinp delta -m "$img" ${tp[@]+"${tp[@]}"} $v $p --snap1 "$a" --snap2 "$b" \
				>"$T/got" || fail "thinp delta ${tp[*]:-} $v $p $a $b failed"
			cmp -s "$T/want" "$T/got" ||
				fail "delta ${tp[*]:-} $v $p $a $b differs: $(diff "$T/want" "$T/got" | head -6)"
			compared=$((compared + 1))
		done
	done
	# $T/want is thin_delta --verbose now
	thinp delta -m "$img" ${tp[@]+"${tp[@]}"} --format=json --snap1 "$a" --snap2 "$b" >"$T/json" ||
		fail "thinp delta --format=json $a $b failed"
	[ "$(grep -c '<range ' "$T/want")" = "$(wc -l <"$T/json")" ] ||
		fail "json $a $b: not one line per verbose range"
	"$THIN_DELTA" ${td[@]+"${td[@]}"} --snap1 "$a" --snap2 "$b" "$img" | grep -v '^    <same ' >"$T/want"
	for p in "" "--threads 5"; do
		thinp delta -m "$img" ${tp[@]+"${tp[@]}"} --changes-only $p --snap1 "$a" --snap2 "$b" \
			>"$T/got" || fail "thinp delta --changes-only $p $a $b failed"
		cmp -s "$T/want" "$T/got" ||
			fail "changes-only $p $a $b differs: $(diff "$T/want" "$T/got" | head -6)"
	done
}

devices() {
	thinp ls -m "$1" --no-headers ${2:+--metadata-snap} | awk '{ print $1 }'
}

# Every ordered pair of devices (at most 16 of them, seeded, unless
# THINP_TEST_LONG), from the live metadata or the held snapshot.
all_pairs() {
	local img=$1 snap=${2:-} a b pairs
	pairs=$(devices "$img" "$snap" | awk '{ d[NR] = $1 } END {
		for (i = 1; i <= NR; i++) for (j = 1; j <= NR; j++) print d[i], d[j] }')
	if [ -z "$LONG" ]; then
		pairs=$(echo "$pairs" | shuf -n 16 --random-source=<(yes "$SEED"))
	fi
	while read -r a b; do
		[ -n "$a" ] && same_delta "$img" "$a" "$b" "$snap"
	done <<<"$pairs"
}

restored_pool() {
	local gen=$1 seed=$2 mappings=$3 m=$T/meta
	step "$(basename "$gen") seed $seed, ~$mappings mappings"
	if [ "$gen" = "$GEN" ]; then
		python3 "$gen" --seed "$seed" --mappings "$mappings" --devices 4 --out "$T/x.xml" \
			--normalized "$T/pool.xml" || fail "generator"
	else
		python3 "$gen" --seed "$seed" --mappings "$mappings" --out "$T/pool.xml" || fail "generator"
	fi
	rm -f "$m"
	truncate -s 64M "$m"
	thin_restore -i "$T/pool.xml" -o "$m" || fail "thin_restore"
	all_pairs "$m"

	step "held snapshot, then the live pool changes"
	thinp message -m "$m" reserve_metadata_snap || fail "reserve"
	local first held
	first=$(devices "$m" | head -1)
	thinp message -m "$m" "create_snap 99999 $first" || fail "create_snap"
	thinp message -m "$m" "delete $first" || fail "delete"
	held=$(held_root "$m")
	all_pairs "$m" held
	same_delta "$m" 99999 "$(devices "$m" | tail -1)"
	local b=$(devices "$m" held | tail -1)
	same_delta "$m" "$first" "$b" "$held"
}

for i in 0 1 2; do
	restored_pool "$GEND" $((SEED + i)) $((500 + (SEED + i) % 4000))
done
restored_pool "$GEN" $((SEED + 3)) 2000

step "a pool made by libthinp's snapshots and writes"
M=$T/own.meta D=$T/own.data
truncate -s 16M "$M"
truncate -s 64M "$D"
thinp format -m "$M" --block-size 64k --data-blocks 1024 || fail "format"
thinp message -m "$M" "create_thin 1" || fail "create_thin"
head -c $((300 * 65536)) /dev/urandom >"$T/blob"
thinp write -m "$M" -d "$D" 1 0 <"$T/blob" || fail "write"
# One run of 300 blocks, contiguous on the data device: read in parts, its
# pieces are joined again at every seam.
thinp message -m "$M" "create_thin 50" || fail "create_thin"
for p in 1 2 7 16; do
	n=$(thinp delta -m "$M" --verbose --threads $p --snap1 1 --snap2 50 | grep -c '<range ')
	[ "$n" = 1 ] || fail "--threads $p: the 300-block run came out as $n ranges"
	n=$(thinp delta -m "$M" --format=json --threads $p --snap1 50 --snap2 1 | grep -c '"length": 300,')
	[ "$n" = 1 ] || fail "--threads $p: json has no 300-block run"
done
thinp message -m "$M" "delete 50" || fail "delete"
thinp message -m "$M" "create_snap 2 1" || fail "create_snap"
rng=$SEED
writes() {
	local dev=$1 n=$2 i off
	for i in $(seq "$n"); do
		rng=$(( (rng * 1103515245 + 12345) % 2147483648 ))
		off=$(( (rng >> 4) % 400 ))
		head -c $(( (1 + rng % 3) * 65536 )) /dev/urandom |
			thinp write -m "$M" -d "$D" "$dev" $((off * 65536)) || fail "write $dev $off"
	done
}
writes 2 6
thinp message -m "$M" "create_snap 3 2" || fail "create_snap"
writes 1 4
writes 3 4
thinp discard -m "$M" -d "$D" 3 $((100 * 65536)) $((7 * 65536)) || fail "discard"
all_pairs "$M"
thinp message -m "$M" reserve_metadata_snap || fail "reserve"
writes 2 5
thinp message -m "$M" "create_snap 4 3" || fail "create_snap"
writes 4 3
all_pairs "$M"
all_pairs "$M" held
same_delta "$M" 1 3 "$(held_root "$M")"

step "errors"
out=$(thinp delta -m "$M" --snap1 1 --snap2 77 2>&1) && fail "a missing device succeeded"
echo "$out" | grep -q "device 77" || fail "missing device: $out"
thinp message -m "$M" release_metadata_snap || fail "release"
out=$(thinp delta -m "$M" --snap1 1 --snap2 2 --metadata-snap 2>&1) && fail "-m without a held root"
echo "$out" | grep -q "no metadata snapshot is held" || fail "no held root: $out"
out=$(thinp delta -m "$M" --snap2 2 2>&1) && fail "no --snap1"
echo "$out" | grep -q -- "--snap1" || fail "no --snap1: $out"
echo "compared $compared outputs"
echo PASS
