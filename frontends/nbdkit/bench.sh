#!/bin/bash
# Benchmark (not a test): the same fio client (ioengine=nbd) against three
# servers on unix sockets, one after the other in one run:
#   thinp   nbdkit + this plugin, a pool on a metadata and a data file
#   file    nbdkit's file plugin on a raw file (the baseline)
#   qcow2   qemu-nbd serving a qcow2 image
# 4 KiB random and 64 KiB sequential reads and writes at queue depth 1 and 16,
# after a sequential fill (so every run overwrites or reads provisioned data;
# first writes are measured separately, before the fill). Prints the median
# IOPS and MiB/s per server and thinp's ratios to file and to qcow2.
#
#   bench.sh [BUILDDIR]      env: SIZE (default 512M), RUNTIME (s, default 5),
#                            ROUNDS (default 3; the median is printed),
#                            TMPDIR (where the images go)
set -eu
build=$(cd "${1:-.}" && pwd)
plugin=$build/frontends/nbdkit/.libs/nbdkit-thinp-plugin.so
thinp=$build/tools/.libs/thinp
export LD_LIBRARY_PATH=$build/.libs
SIZE=${SIZE:-512M}
RUNTIME=${RUNTIME:-5}
ROUNDS=${ROUNDS:-3}
for c in nbdkit qemu-nbd qemu-img fio python3; do
	command -v $c >/dev/null || { echo "bench: $c is not installed" >&2; exit 1; }
done
[ -f "$plugin" ] || { echo "bench: no plugin at $plugin (build with nbdkit-plugin-dev)" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/thinp-bench.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT
bytes=$(numfmt --from=iec "$SIZE")

# fio_run NAME URI RW BS DEPTH [RUNTIME]: "IOPS MiB/s" on stdout.
fio_run() {
	fio --name="$1" --ioengine=nbd --uri="$2" --rw="$3" --bs="$4" --iodepth="$5" \
		--size="$bytes" --runtime="${6:-$RUNTIME}" --time_based --ramp_time=1 \
		--output-format=json --output="$T/fio.json" >/dev/null 2>"$T/fio.err" || { cat "$T/fio.err" >&2; exit 1; }
	python3 - "$T/fio.json" "$3" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["write" if "write" in sys.argv[2] else "read"]
print("%.0f %.1f" % (d["iops"], d["bw_bytes"] / 1048576))
PY
}

fill() {
	fio --name=fill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 --size="$bytes" \
		>/dev/null 2>"$T/fio.err" || { cat "$T/fio.err" >&2; exit 1; }
}

wait_sock() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
	echo "bench: server did not start" >&2
	exit 1
}

runs="randread:4k:1 randread:4k:16 randwrite:4k:1 randwrite:4k:16 read:64k:1 read:64k:16 write:64k:1 write:64k:16"

# All three servers run at once; every measurement is taken on each server
# in turn, ROUNDS times, and the median kept, so that load from elsewhere
# on the machine hits all three alike.
truncate -s 64M "$T/meta"
truncate -s "$bytes" "$T/data"
"$thinp" format -m "$T/meta" -b 64k -n $((bytes / 65536)) >/dev/null
"$thinp" create -m "$T/meta" -d "$T/data" --size "$bytes" 1 >/dev/null
nbdkit -f -U "$T/s1" "$plugin" meta="$T/meta" data="$T/data" & pids=$!
truncate -s "$bytes" "$T/raw"
nbdkit -f -U "$T/s2" file "$T/raw" & pids="$pids $!"
qemu-img create -q -f qcow2 "$T/img.qcow2" "$bytes"
qemu-nbd -t -k "$T/s3" -f qcow2 "$T/img.qcow2" & pids="$pids $!"
pid=$pids
for s in s1 s2 s3; do wait_sock "$T/$s"; done
names=(thinp file qcow2)
uris=("nbd+unix:///1?socket=$T/s1" "nbd+unix:///?socket=$T/s2" "nbd+unix:///?socket=$T/s3")

: >"$T/results"
measure() { # RUNNAME RW BS QD RUNTIME
	local round i
	for round in $(seq "$ROUNDS"); do
		for i in 0 1 2; do
			echo "${names[$i]} $1 $(fio_run "${names[$i]}" "${uris[$i]}" "$2" "$3" "$4" "$5")" >>"$T/results"
		done
	done
}
# First writes (thin provisioning, qcow2 cluster allocation, file block
# allocation) on the fresh images: one short run each, since a second run
# would no longer write first.
ROUNDS=1 measure first-write:randwrite:4k:16 randwrite 4k 16 2
for i in 0 1 2; do fill "${uris[$i]}"; done
for r in $runs; do
	IFS=: read -r rw bs qd <<<"$r"
	measure "$rw:$bs:$qd" "$rw" "$bs" "$qd" "$RUNTIME"
done
kill $pids; wait $pids || true; pid=

python3 - "$T/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    srv, run, iops, mib = line.split()
    runs.setdefault(run, {}).setdefault(srv, []).append((float(iops), float(mib)))
res = {run: {s: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
             for s, v in r.items()} for run, r in runs.items()}
print("%-28s %16s %16s %16s %12s %12s" % ("run (rw:bs:qd)", "thinp IOPS MiB/s", "file IOPS MiB/s",
      "qcow2 IOPS MiB/s", "thinp/file", "thinp/qcow2"))
for run, r in res.items():
    cell = lambda s: "%8.0f %7.1f" % r[s] if s in r else "%16s" % "-"
    print("%-28s %16s %16s %16s %11.2fx %11.2fx" % (run, cell("thinp"), cell("file"), cell("qcow2"),
          r["thinp"][0] / r["file"][0], r["thinp"][0] / r["qcow2"][0]))
PY
