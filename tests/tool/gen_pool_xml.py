#!/usr/bin/env python3
"""Seeded generator of random thin pools as thin_dump/thin_restore XML.

Writes three things:
  --out FILE         the pool as XML with the grammar's freedoms (devices and
                     runs in random order, runs split, attributes shuffled,
                     ' or " quotes, odd whitespace, comments, version sometimes
                     absent, mapped_blocks wrong: restore must ignore it);
  --normalized FILE  the same pool exactly as thin_dump 0.9.0 prints it;
  --probes FILE      lookups "DEV VBLOCK DATA TIME" (mapped) and
                     "DEV VBLOCK -" (unmapped, or no such device).

The pool: devices that own fresh mappings (runs of consecutive data blocks
and scattered singles), and "snapshots" that copy an earlier device's
mappings (so data blocks are shared by several devices, as after
thin_restore of a pool with snapshots) and then overwrite, drop and add some.
The seed is printed on stderr so a failure can be replayed.
"""
import argparse
import random
import sys

MAX_TIME = (1 << 24) - 1


class Pool:
    def __init__(self, rng, target):
        self.rng = rng
        self.time = rng.randint(1, 60)
        self.transaction = rng.choice([0, 1, rng.randint(0, 1 << 64 - 1)])
        self.block_size = rng.choice([128, 256, 1024, 2097152])
        self.next_data = rng.randint(0, 50)
        self.devices = {}  # id -> dict(details, maps: vblock -> (data, time))
        self.target = target

    def alloc(self, n):
        """n consecutive fresh data blocks, with random gaps between runs."""
        start = self.next_data
        self.next_data += n + (self.rng.randint(1, 5) if self.rng.random() < 0.3 else 0)
        return start

    def fresh_runs(self, maps, count, t_lo):
        rng = self.rng
        base = rng.choice([0, rng.randint(0, 1 << 20), rng.randint(0, 1 << 44)])
        done = 0
        while done < count:
            n = min(count - done, rng.choice([1, 1, 2, 3, rng.randint(1, 300)]))
            v = base + rng.randint(0, 4 * count + 10)
            d = self.alloc(n)
            t = rng.randint(t_lo, self.time)
            for i in range(n):
                if v + i not in maps:
                    maps[v + i] = (d + i, t)
                    done += 1
            base = v + n if rng.random() < 0.5 else base

    def new_id(self):
        rng = self.rng
        while True:
            dev = rng.choice([rng.randint(0, 64), rng.randint(0, (1 << 24) - 1),
                              rng.randint(0, (1 << 32) - 1) if rng.random() < 0.05 else 1])
            if dev not in self.devices:
                return dev

    def add_device(self, share):
        rng = self.rng
        dev = self.new_id()
        creation = rng.randint(0, self.time)
        snap = rng.randint(creation, self.time)
        maps = {}
        per_dev = max(1, self.target // 8)
        if share and self.devices:
            origin = rng.choice(list(self.devices))
            maps = dict(self.devices[origin]['maps'])
            keys = list(maps)
            for v in rng.sample(keys, len(keys) // 5):  # overwritten later
                maps[v] = (self.alloc(1), rng.randint(0, self.time))
            for v in rng.sample(keys, len(keys) // 10):  # discarded
                del maps[v]
            self.fresh_runs(maps, rng.randint(0, per_dev // 4), creation)
        elif rng.random() > 0.1:  # a few devices stay empty
            self.fresh_runs(maps, rng.randint(1, 2 * per_dev), creation)
        self.devices[dev] = dict(transaction=rng.choice([0, rng.randint(0, 1 << 40)]),
                                 creation=creation, snap=snap, maps=maps)

    def nr_mappings(self):
        return sum(len(d['maps']) for d in self.devices.values())


def runs_of(maps):
    """Maximal runs exactly as thin_dump coalesces them."""
    out = []
    for v in sorted(maps):
        d, t = maps[v]
        if out:
            v0, d0, n, t0 = out[-1]
            if v == v0 + n and d == d0 + n and t == t0:
                out[-1][2] += 1
                continue
        out.append([v, d, 1, t])
    return out


def normalized(pool, nr_data_blocks):
    lines = ['<superblock uuid="" time="%d" transaction="%d" flags="0" version="%d" '
             'data_block_size="%d" nr_data_blocks="%d">'
             % (pool.time, pool.transaction, pool.version, pool.block_size, nr_data_blocks)]
    for dev in sorted(pool.devices):
        d = pool.devices[dev]
        lines.append('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
                     'creation_time="%d" snap_time="%d">'
                     % (dev, len(d['maps']), d['transaction'], d['creation'], d['snap']))
        for v, b, n, t in runs_of(d['maps']):
            if n == 1:
                lines.append('    <single_mapping origin_block="%d" data_block="%d" time="%d"/>'
                             % (v, b, t))
            else:
                lines.append('    <range_mapping origin_begin="%d" data_begin="%d" length="%d" time="%d"/>'
                             % (v, b, n, t))
        lines.append('  </device>')
    lines.append('</superblock>')
    return '\n'.join(lines) + '\n'


class Scrambler:
    """Writes an element with the XML grammar's freedoms."""

    def __init__(self, rng, plain):
        self.rng = rng
        self.plain = plain

    def space(self):
        if self.plain:
            return ' '
        return self.rng.choice([' ', ' ', '  ', '\n    ', '\t'])

    def elem(self, name, attrs, close):
        rng = self.rng
        items = list(attrs)
        if not self.plain:
            rng.shuffle(items)
        parts = []
        for k, v in items:
            q = '"' if self.plain or rng.random() < 0.7 else "'"
            eq = '=' if self.plain or rng.random() < 0.9 else ' = '
            parts.append('%s%s%s%s%s' % (k, eq, q, v, q))
        s = '<' + name + ''.join(self.space() + p for p in parts)
        if close == 'self':
            return s + ('/>' if self.plain or rng.random() < 0.8 else ' />')
        if close == 'explicit':
            return s + '></' + name + '>'
        return s + '>'


def scrambled(pool, nr_data_blocks, rng, plain):
    sc = Scrambler(rng, plain)
    out = []
    if not plain and rng.random() < 0.5:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n<!-- generated -->')
    attrs = [('uuid', ''), ('time', pool.time), ('transaction', pool.transaction),
             ('data_block_size', pool.block_size), ('nr_data_blocks', nr_data_blocks)]
    if pool.version_given:
        attrs.append(('version', pool.version))
    if rng.random() < 0.5:
        attrs.append(('flags', 0))
    out.append(sc.elem('superblock', attrs, 'open'))
    devs = list(pool.devices)
    if not plain:
        rng.shuffle(devs)
    for dev in devs:
        d = pool.devices[dev]
        attrs = [('dev_id', dev), ('mapped_blocks', rng.randint(0, 99)),
                 ('transaction', d['transaction']), ('creation_time', d['creation']),
                 ('snap_time', d['snap'])]
        runs = []
        for v, b, n, t in runs_of(d['maps']):
            while n > 0:  # split runs at random points
                k = n if plain or rng.random() < 0.7 else rng.randint(1, n)
                runs.append((v, b, k, t))
                v, b, n = v + k, b + k, n - k
        if not runs and not plain and rng.random() < 0.5:
            out.append('  ' + sc.elem('device', attrs, 'self'))
            continue
        if not plain:
            rng.shuffle(runs)
        out.append('  ' + sc.elem('device', attrs, 'open'))
        for v, b, n, t in runs:
            close = 'self' if plain or rng.random() < 0.95 else 'explicit'
            if n == 1 and (plain or rng.random() < 0.8):
                out.append('    ' + sc.elem('single_mapping', [('origin_block', v), ('data_block', b),
                                                               ('time', t)], close))
            else:
                out.append('    ' + sc.elem('range_mapping', [('origin_begin', v), ('data_begin', b),
                                                              ('length', n), ('time', t)], close))
        out.append('  </device>')
    out.append('</superblock>')
    return '\n'.join(out) + '\n'


def probes(pool, rng, count):
    lines = []
    devs = list(pool.devices)
    for _ in range(count):
        dev = rng.choice(devs)
        maps = pool.devices[dev]['maps']
        if maps and rng.random() < 0.7:
            v = rng.choice(list(maps)) if len(maps) < 5000 else rng.choice(list(maps.keys())[:5000])
        else:
            v = rng.choice([0, rng.randint(0, 1 << 20), (1 << 64) - 1])
        if v in maps:
            lines.append('%d %d %d %d' % (dev, v, maps[v][0], maps[v][1]))
        else:
            lines.append('%d %d -' % (dev, v))
    missing = pool.new_id()
    lines.append('%d 0 -' % missing)
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--mappings', type=int, default=3000, help='about this many mappings')
    ap.add_argument('--devices', type=int, default=None)
    ap.add_argument('--plain', action='store_true', help='no scrambling: thin_dump-like input')
    ap.add_argument('--out', required=True)
    ap.add_argument('--normalized')
    ap.add_argument('--probes')
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print('gen_pool_xml.py: seed %d' % seed, file=sys.stderr)
    rng = random.Random(seed)
    pool = Pool(rng, args.mappings)
    ndev = args.devices or rng.randint(3, 24)
    for i in range(ndev):
        pool.add_device(share=rng.random() < 0.4)
    while pool.nr_mappings() < args.mappings * 0.8:
        pool.add_device(share=rng.random() < 0.4)
    pool.version_given = rng.random() < 0.6
    pool.version = rng.choice([1, 2]) if pool.version_given else 1
    used = max([b for d in pool.devices.values() for b, _ in d['maps'].values()] + [-1]) + 1
    nr_data_blocks = used + rng.choice([0, 1, rng.randint(0, 100000)])
    with open(args.out, 'w') as f:
        f.write(scrambled(pool, nr_data_blocks, rng, args.plain))
    if args.normalized:
        with open(args.normalized, 'w') as f:
            f.write(normalized(pool, nr_data_blocks))
    if args.probes:
        with open(args.probes, 'w') as f:
            f.write(probes(pool, rng, 300))
    print('gen_pool_xml.py: %d devices, %d mappings, %d data blocks'
          % (len(pool.devices), pool.nr_mappings(), nr_data_blocks), file=sys.stderr)


if __name__ == '__main__':
    main()
