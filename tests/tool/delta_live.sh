#!/bin/bash
# A delta over the held metadata snapshot while another process changes the
# live pool: writers (thinp write) and snapshots/deletes (thinp message) run
# in a loop while thinp delta --metadata-snap reads the same metadata file
# (read-only, O_DIRECT) again and again; every delta must equal the one
# taken before the writer started, and thin_delta -m's, also when read in
# parts at once (--threads). thinp dump
# --metadata-snap (snapshot-only handle, O_DIRECT too) likewise.
. "${THINP_SRCDIR:-${srcdir:-$(dirname "$0")/../..}}/tests/tool/common.sh"

THIN_DELTA=${THIN_DELTA:-$(command -v thin_delta 2>/dev/null)}
[ -n "$THIN_DELTA" ] && [ -x "$THIN_DELTA" ] || { echo "SKIP: thin_delta not found"; exit 77; }

M=$T/meta D=$T/data
truncate -s 16M "$M"
truncate -s 128M "$D"
thinp format -m "$M" --block-size 64k --data-blocks 2048 || fail "format"
thinp message -m "$M" "create_thin 1" || fail "create_thin"
head -c $((400 * 65536)) /dev/urandom | thinp write -m "$M" -d "$D" 1 0 || fail "write"
thinp message -m "$M" "create_snap 2 1" || fail "create_snap"
for off in 3 50 51 52 200 399; do
	head -c 65536 /dev/urandom | thinp write -m "$M" -d "$D" 1 $((off * 65536)) || fail "write"
done
thinp message -m "$M" reserve_metadata_snap || fail "reserve"
held=$(held_root "$M")
for mode in "" --verbose --changes-only; do
	thinp delta -m "$M" --metadata-snap --snap1 2 --snap2 1 $mode >"$T/want$mode" ||
		fail "delta $mode before the writer"
done
"$THIN_DELTA" -m --snap1 2 --snap2 1 "$M" | cmp -s - "$T/want" || fail "thin_delta -m differs"
thinp dump -m "$M" --metadata-snap >"$T/want.dump" || fail "dump --metadata-snap before the writer"
grep -q '<different begin="50" length="3"/>' "$T/want" || fail "unexpected delta: $(cat "$T/want")"

step "writer running"
(
	i=0
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		head -c 65536 /dev/urandom | thinp write -m "$M" -d "$D" $((1 + i % 2)) $(( (i * 37 % 400) * 65536 )) ||
			{ echo "writer failed" >"$T/writer-failed"; exit 1; }
		if [ $((i % 5)) = 0 ]; then
			thinp message -m "$M" "create_snap $((100 + i)) 1" &&
				thinp message -m "$M" "delete $((100 + i))" ||
				{ echo "messages failed" >"$T/writer-failed"; exit 1; }
		fi
	done
) &
writer=$!
runs=0
for n in $(seq 40); do
	# Every other round in four parts at once, each on a handle of its
	# own on the held snapshot.
	par=
	[ $((n % 2)) = 0 ] && par="--threads 4"
	for mode in "" --verbose --changes-only; do
		thinp delta -m "$M" --metadata-snap --snap1 2 --snap2 1 $mode $par >"$T/got" ||
			{ touch "$T/stop"; wait $writer; fail "delta $mode failed while the pool changed"; }
		cmp -s "$T/want$mode" "$T/got" ||
			{ touch "$T/stop"; wait $writer; fail "delta $mode changed: $(diff "$T/want$mode" "$T/got" | head -4)"; }
		runs=$((runs + 1))
	done
	thinp delta -m "$M" --metadata-snap="$held" --snap1 2 --snap2 1 >"$T/got" &&
		cmp -s "$T/want" "$T/got" || { touch "$T/stop"; wait $writer; fail "delta at block $held"; }
	thinp dump -m "$M" --metadata-snap >"$T/got" && cmp -s "$T/want.dump" "$T/got" ||
		{ touch "$T/stop"; wait $writer; fail "dump --metadata-snap changed while the pool changed"; }
done
touch "$T/stop"
wait $writer
[ -e "$T/writer-failed" ] && fail "$(cat "$T/writer-failed")"
# The writer did change the live pool.
thinp delta -m "$M" --snap1 2 --snap2 1 | cmp -s - "$T/want" && fail "the live pool did not change"
"$THIN_DELTA" -m --snap1 2 --snap2 1 "$M" | cmp -s - "$T/want" || fail "thin_delta -m differs afterwards"
echo "$runs deltas while writing"
echo PASS
