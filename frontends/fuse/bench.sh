#!/bin/bash
# Benchmark (not a test): the same fio jobs on a thinp-fuse volume file and
# on a raw file in the same directory (same file system), then the ratios.
#
#   frontends/fuse/bench.sh BUILDDIR [DIR]     (root; DIR defaults to /tmp)
#
# Environment: SIZE (file size, default 512M), RUNTIME (seconds per job,
# default 8), FIO_DIRECT (1: O_DIRECT on both files, the default when DIR's
# file system takes it; 0: buffered, end_fsync on writes), FUSE_OPTS (extra
# -o options for thinp-fuse, e.g. page_cache).
#
# Jobs, in this order on each file: 64 KiB sequential write (on the volume:
# provisioning every block), 4 KiB random write (overwriting), 4 KiB random
# read, 64 KiB sequential read; psync, one job, queue depth 1, and the
# 4 KiB jobs again with libaio at queue depth 16. fio does not drop the
# page cache between jobs (invalidate=0): with direct=0 both files are read
# from memory (the volume's data file, the raw file), so the ratio is the
# cost of FUSE and the pool; with direct=1 the raw file goes to the disk
# while the pool's data file still uses the page cache (the pool opens it
# buffered), which flatters the volume.
set -eu
build=$(cd "${1:?usage: bench.sh BUILDDIR [DIR]}" && pwd)
dir=${2:-/tmp}
SIZE=${SIZE:-512M}
RUNTIME=${RUNTIME:-8}
export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
THINP=$build/tools/.libs/thinp
THINP_FUSE=$build/frontends/fuse/.libs/thinp-fuse
[ -x "$THINP" ] || THINP=$build/tools/thinp
[ -x "$THINP_FUSE" ] || THINP_FUSE=$build/frontends/fuse/thinp-fuse
command -v fio >/dev/null || { echo "fio not found" >&2; exit 1; }

T=$(mktemp -d "$dir/thinp-fuse-bench.XXXXXX")
pid=
cleanup() {
	mountpoint -q "$T/mnt" && fusermount3 -u "$T/mnt"
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

bytes=$(numfmt --from=iec "$SIZE")
if [ -z "${FIO_DIRECT:-}" ]; then
	FIO_DIRECT=0
	dd if=/dev/zero of="$T/probe" bs=4k count=1 oflag=direct status=none 2>/dev/null && FIO_DIRECT=1
	rm -f "$T/probe"
fi

# The pool: room for the volume and a little more.
blocks=$((bytes / 65536 + 256))
truncate -s 64M "$T/meta"
truncate -s $((blocks * 65536)) "$T/data"
"$THINP" format -m "$T/meta" --block-size 64k --data-blocks $blocks >/dev/null
"$THINP" create -m "$T/meta" -d "$T/data" --size "$bytes" 0
mkdir "$T/mnt"
"$THINP_FUSE" -m "$T/meta" -d "$T/data" -f ${FUSE_OPTS:+-o "$FUSE_OPTS"} "$T/mnt" &
pid=$!
for _ in $(seq 100); do mountpoint -q "$T/mnt" && break; sleep 0.1; done
mountpoint -q "$T/mnt" || { echo "thinp-fuse did not mount" >&2; exit 1; }
truncate -s "$bytes" "$T/raw"

# run FILE NAME RW BS ENGINE DEPTH: prints "IOPS MiB/s".
run() {
	local sync=
	[ "$FIO_DIRECT" = 1 ] || case $3 in *write) sync=--end_fsync=1 ;; esac
	fio --name="$2" --filename="$1" --rw="$3" --bs="$4" --ioengine="$5" --iodepth="$6" \
		--direct="$FIO_DIRECT" $sync --size="$bytes" --runtime="$RUNTIME" --time_based \
		--invalidate=0 --randrepeat=1 --norandommap --output-format=json 2>/dev/null |
		python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
op = j["write"] if j["write"]["io_bytes"] else j["read"]
print("%.0f %.1f" % (op["iops"], op["bw"] / 1024))'
}

jobs="seqwrite-64k:write:64k:psync:1 randwrite-4k:randwrite:4k:psync:1
randread-4k:randread:4k:psync:1 seqread-64k:read:64k:psync:1
randwrite-4k-qd16:randwrite:4k:libaio:16 randread-4k-qd16:randread:4k:libaio:16"

echo "fio on $dir ($(df -T "$dir" | awk 'NR == 2 { print $2 }')), size $SIZE, ${RUNTIME}s per job," \
	"direct=$FIO_DIRECT, thinp-fuse ${FUSE_OPTS:-direct_io}"
printf '%-20s %12s %12s %12s %12s %8s\n' job "raw IOPS" "raw MiB/s" "fuse IOPS" "fuse MiB/s" ratio
for j in $jobs; do
	IFS=: read -r name rw bs engine depth <<<"$j"
	read -r riops rbw <<<"$(run "$T/raw" "$name" "$rw" "$bs" "$engine" "$depth")"
	read -r fiops fbw <<<"$(run "$T/mnt/0" "$name" "$rw" "$bs" "$engine" "$depth")"
	printf '%-20s %12s %12s %12s %12s %8s\n' "$name" "$riops" "$rbw" "$fiops" "$fbw" \
		"$(python3 -c "print('%.2f' % ($fiops / $riops if $riops else 0))")"
done
fusermount3 -u "$T/mnt"
wait "$pid"
pid=
"$THINP" check -m "$T/meta" >/dev/null && echo "pool checked clean after the run"
