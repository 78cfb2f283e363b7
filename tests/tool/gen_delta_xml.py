#!/usr/bin/env python3
"""Seeded generator of thin pools whose devices are related, as snapshots
are: each device after the first starts as a copy of an earlier one (same
data blocks) and then has runs overwritten (to contiguous or scattered new
data blocks), removed, and added (also past the other devices' ends). The
XML is in thin_dump's order, so thin_restore 0.9.0 takes it as it is.

Besides what a delta must get right - every kind, runs that touch, data
blocks that are not contiguous, blocks at the very end - a few devices are
empty, one maps a single block far beyond the rest, and mapping times vary
(thin_delta ignores them).
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_pool_xml import runs_of  # noqa: E402  (thin_dump's coalescing)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mappings", type=int, default=3000, help="about this many in the first device")
    ap.add_argument("--devices", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    space = max(16, a.mappings * 2)
    nxt = [0]

    def alloc(n, scattered):
        if scattered:
            # Each block picked inside a span of its own: scattered, never
            # one data block twice (thin_restore 0.9.0 fails some pools
            # whose blocks are shared that way: "ref count not in tree").
            return [alloc(3, False)[rng.randrange(0, 3)] for _ in range(n)]
        if rng.random() < 0.3:
            nxt[0] += rng.randrange(1, 50)
        b = nxt[0]
        nxt[0] += n
        return list(range(b, b + n))

    def fill(m, v, n, time, scattered):
        for off, d in enumerate(alloc(n, scattered)):
            m[v + off] = (d, time)

    devs = []
    first = {}
    while len(first) < a.mappings:
        fill(first, rng.randrange(space), rng.randrange(1, 64), 0, rng.random() < 0.2)
    devs.append(first)
    for i in range(1, a.devices):
        kind = rng.random()
        if kind < 0.1:
            devs.append({})
            continue
        m = dict(devs[rng.randrange(len(devs))])
        time = i
        for _ in range(rng.randrange(1, 40)):
            op = rng.random()
            v, n = rng.randrange(space), rng.randrange(1, 40)
            if op < 0.5:
                fill(m, v, n, time, rng.random() < 0.3)
            elif op < 0.8:
                for k in range(v, v + n):
                    m.pop(k, None)
            else:
                fill(m, space + rng.randrange(space), n, time, False)
        if rng.random() < 0.2:
            m[space * 50 + rng.randrange(1000)] = (alloc(1, False)[0], time)
        devs.append(m)
    nr_data = nxt[0] + 1024
    with open(a.out, "w") as f:
        f.write('<superblock uuid="" time="%d" transaction="1" data_block_size="128" '
                'nr_data_blocks="%d">\n' % (a.devices, nr_data))
        for i, m in enumerate(devs):
            f.write('  <device dev_id="%d" mapped_blocks="%d" transaction="0" '
                    'creation_time="0" snap_time="%d">\n' % (i, len(m), a.devices))
            for v, d, n, t in runs_of(m):
                if n == 1:
                    f.write('    <single_mapping origin_block="%d" data_block="%d" '
                            'time="%d"/>\n' % (v, d, t))
                else:
                    f.write('    <range_mapping origin_begin="%d" data_begin="%d" '
                            'length="%d" time="%d"/>\n' % (v, d, n, t))
            f.write('  </device>\n')
        f.write('</superblock>\n')


if __name__ == "__main__":
    main()
