/*
 * bench_pool: the pool's data path against the raw file backend, in one run,
 * on one filesystem (files in $TMPDIR or the directory given as argv[1]).
 *
 *   1. sequential first writes in 64 KiB blocks, then a flush, vs the same
 *      writes to a raw file (target: >= 90 % of raw);
 *   2. 4 KiB random reads of provisioned blocks vs raw (>= 90 %);
 *   3. 4 KiB random overwrites of provisioned, unshared blocks vs raw;
 *   4. snapshot creation time vs the number of mapped blocks;
 *   5. 4 KiB random reads at snapshot depth 1000 vs depth 1.
 *
 * The pool runs on the real dm-thin metadata in a file (thinp_pool_format);
 * with --model, on the in-memory metadata model of the tests instead (to
 * separate the data path's cost from the metadata's). Not part of
 * `make check`.
 *
 * The data-path figures are medians over rounds in which raw and thin
 * alternate, so that a burst of load elsewhere on the machine, or the page
 * cache state one side leaves the other, does not decide the ratio.
 *
 * Usage: tests/pool/bench_pool [--model] [DIR] [SIZE_MIB]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>
#include "pool/bench_util.h"
#include "pool/md_model.h"
#include "pool/pool_internal.h"

#define BS (64u * 1024)
#define IO4K 4096u

typedef int (*write_fn)(void *h, const void *buf, uint64_t len, uint64_t off);
typedef int (*read_fn)(void *h, void *buf, uint64_t len, uint64_t off);

static int raw_write(void *h, const void *b, uint64_t l, uint64_t o)
{
	return thinp_io_write(h, b, l, o, 0);
}
static int raw_read(void *h, void *b, uint64_t l, uint64_t o)
{
	return thinp_io_read(h, b, l, o, 0);
}
static int thin_write(void *h, const void *b, uint64_t l, uint64_t o)
{
	return thinp_thin_write(h, b, l, o);
}
static int thin_read(void *h, void *b, uint64_t l, uint64_t o)
{
	return thinp_thin_read(h, b, l, o);
}

/* MiB/s of sequential BS writes over size bytes, flush included. */
static double seq_write(void *h, write_fn w, int (*flush)(void *), uint64_t size, void *buf)
{
	double t0 = bench_now();

	for (uint64_t off = 0; off < size; off += BS)
		if (w(h, buf, BS, off))
			bench_die("sequential write", -EIO);
	if (flush(h))
		bench_die("flush", -EIO);
	return size / (1024.0 * 1024) / (bench_now() - t0);
}

/* Operations per second of random 4 KiB I/O within size bytes. */
static double rand_io(void *h, read_fn rd, write_fn wr, uint64_t size, unsigned n, void *buf)
{
	uint64_t x = 88172645463325252ull;
	double t0 = bench_now();

	for (unsigned i = 0; i < n; i++) {
		uint64_t off;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		off = (x % (size / IO4K)) * IO4K;
		if (rd ? rd(h, buf, IO4K, off) : wr(h, buf, IO4K, off))
			bench_die("random io", -EIO);
	}
	return n / (bench_now() - t0);
}

static int raw_flush(void *h)
{
	return thinp_io_flush(h);
}
static int thin_flush(void *h)
{
	return thinp_thin_flush(h);
}

static thinp_thin *open_thin(thinp_pool *pool, uint64_t id, uint64_t size)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_thin *thin;
	int r;

	to.size = size;
	r = thinp_thin_open(&thin, pool, id, &to);
	if (r)
		bench_die("thin open", r);
	return thin;
}

/* One line of results: the medians over the rounds of raw, thin and their
 * per-round ratio. */
static void report(const char *what, const char *unit, double *raw, double *thin, unsigned n)
{
	double ratio[n];

	for (unsigned i = 0; i < n; i++)
		ratio[i] = thin[i] / raw[i];
	printf("%s: raw %.0f %s, thin %.0f %s, ratio %.2f (median of %u rounds)\n", what,
	       bench_median(raw, n), unit, bench_median(thin, n), unit, bench_median(ratio, n), n);
}

/* Snapshot creation time against the origin's mapped blocks (blocks are
 * provisioned with one byte each under skip_block_zeroing: the data file
 * stays sparse). */
static void bench_snapshots(const char *dir)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint64_t sizes[] = { 1024, 8192, 32768 };
	thinp_io *meta, *data;
	thinp_pool *pool;
	thinp_thin *thin;
	uint64_t mapped = 0, next_id = 1;
	int r;

	o.features = THINP_POOL_SKIP_BLOCK_ZEROING;
	meta = bench_open_file(dir, "bench-snap-meta", 64 << 20);
	data = bench_open_file(dir, "bench-snap-data", 32768ull * BS);
	r = thinp_pool_format(&pool, meta, data, &o);
	if (!r)
		r = thinp_pool_create_thin(pool, 0);
	if (r)
		bench_die("snapshot pool", r);
	thin = open_thin(pool, 0, 32768ull * BS);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double t0;

		for (; mapped < sizes[i]; mapped++)
			if (thinp_thin_write(thin, "x", 1, mapped * BS))
				bench_die("provision", -EIO);
		if (thinp_thin_flush(thin))
			bench_die("flush", -EIO);
		t0 = bench_now();
		r = thinp_pool_create_snap(pool, next_id++, 0);
		if (r)
			bench_die("create_snap", r);
		printf("snapshot of a volume with %6llu mapped blocks: %.2f ms (commit included)\n",
		       (unsigned long long)mapped, (bench_now() - t0) * 1e3);
	}
	thinp_thin_close(thin);
	thinp_pool_close(pool);
	thinp_io_close(meta);
	thinp_io_close(data);
}

/* Random 4 KiB reads on the volume at the top of a 1000-deep snapshot
 * chain against its first snapshot: the same blocks, shared by all; the two
 * alternate in rounds. */
static void bench_depth(const char *dir, uint64_t size, unsigned rounds, void *buf)
{
	double d1[rounds], dtop[rounds];
	thinp_io *meta, *data;
	thinp_pool *pool;
	thinp_thin *t1, *top;
	int r;

	meta = bench_open_file(dir, "bench-depth-meta", 64 << 20);
	data = bench_open_file(dir, "bench-depth-data", size);
	r = thinp_pool_format(&pool, meta, data, NULL);
	if (!r)
		r = thinp_pool_create_thin(pool, 0);
	if (r)
		bench_die("depth pool", r);
	t1 = open_thin(pool, 0, size);
	seq_write(t1, thin_write, thin_flush, size, buf);
	thinp_thin_close(t1);
	for (uint64_t d = 1; d <= 1000; d++)
		if ((r = thinp_pool_create_snap(pool, d, d - 1)))
			bench_die("create_snap", r);
	t1 = open_thin(pool, 1, size);
	top = open_thin(pool, 1000, size);
	rand_io(t1, thin_read, NULL, size, 20000, buf); /* warm both alike */
	rand_io(top, thin_read, NULL, size, 20000, buf);
	for (unsigned i = 0; i < rounds; i++) {
		d1[i] = rand_io(t1, thin_read, NULL, size, 50000, buf);
		dtop[i] = rand_io(top, thin_read, NULL, size, 50000, buf);
	}
	report("random reads 4 KiB, depth 1 (as raw) vs depth 1000 (as thin)", "IOPS", d1, dtop,
	       rounds);
	thinp_thin_close(t1);
	thinp_thin_close(top);
	thinp_pool_close(pool);
	thinp_io_close(meta);
	thinp_io_close(data);
}

/* A fresh pool with one thin volume 0 of size bytes, on file or model
 * metadata. */
struct bench_pool {
	thinp_io *data, *meta;
	struct md_store *store;
	thinp_pool *pool;
	thinp_thin *thin;
};

static void bench_pool_open(struct bench_pool *bp, const char *dir, bool model, uint64_t size)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	struct pool_md *md;
	int r;

	memset(bp, 0, sizeof(*bp));
	bp->data = bench_open_file(dir, "bench-data", size);
	if (model) {
		bp->store = md_store_new(BS >> 9, size / BS, 1 << 16);
		r = md_model_open(bp->store, &md);
		if (!r)
			r = pool_create(&bp->pool, md, NULL, bp->data, NULL);
	} else {
		bp->meta = bench_open_file(dir, "bench-meta", 64 << 20);
		r = thinp_pool_format(&bp->pool, bp->meta, bp->data, NULL);
	}
	if (!r)
		r = thinp_pool_create_thin(bp->pool, 0);
	to.size = size;
	if (!r)
		r = thinp_thin_open(&bp->thin, bp->pool, 0, &to);
	if (r)
		bench_die("pool setup", r);
}

static void bench_pool_close(struct bench_pool *bp)
{
	thinp_thin_close(bp->thin);
	thinp_pool_close(bp->pool);
	md_store_free(bp->store);
	thinp_io_close(bp->data);
	thinp_io_close(bp->meta);
}

/*
 * Sequential first writes: each round a fresh raw file and a fresh pool, the
 * one going first alternating between rounds, so that neither side always
 * meets the page cache and the writeback the other left behind.
 */
static void bench_first_writes(const char *dir, bool model, uint64_t size, unsigned rounds,
			       void *buf)
{
	double raw[rounds], thin[rounds];

	for (unsigned i = 0; i < rounds; i++) {
		struct bench_pool bp;
		thinp_io *io = bench_open_file(dir, "bench-raw", size);

		bench_pool_open(&bp, dir, model, size);
		for (unsigned k = 0; k < 2; k++) {
			if ((i + k) % 2 == 0)
				raw[i] = seq_write(io, raw_write, raw_flush, size, buf);
			else
				thin[i] = seq_write(bp.thin, thin_write, thin_flush, size, buf);
		}
		bench_pool_close(&bp);
		thinp_io_close(io);
	}
	report("sequential first writes 64 KiB", "MiB/s", raw, thin, rounds);
}

/* Random 4 KiB reads and overwrites of provisioned blocks, raw and thin
 * alternating in rounds of nrand operations. */
static void bench_random(const char *dir, bool model, uint64_t size, unsigned rounds,
			 unsigned nrand, void *buf)
{
	double rr[rounds], tr[rounds], rw[rounds], tw[rounds];
	thinp_io *io = bench_open_file(dir, "bench-raw", size);
	struct bench_pool bp;

	bench_pool_open(&bp, dir, model, size);
	seq_write(io, raw_write, raw_flush, size, buf);
	seq_write(bp.thin, thin_write, thin_flush, size, buf);
	for (unsigned i = 0; i < rounds; i++) {
		rr[i] = rand_io(io, raw_read, NULL, size, nrand, buf);
		tr[i] = rand_io(bp.thin, thin_read, NULL, size, nrand, buf);
	}
	for (unsigned i = 0; i < rounds; i++) {
		rw[i] = rand_io(io, NULL, raw_write, size, nrand, buf);
		tw[i] = rand_io(bp.thin, NULL, thin_write, size, nrand, buf);
	}
	report("random reads 4 KiB", "IOPS", rr, tr, rounds);
	report("random overwrites 4 KiB", "IOPS", rw, tw, rounds);
	bench_pool_close(&bp);
	thinp_io_close(io);
}

int main(int argc, char **argv)
{
	bool model = argc > 1 && !strcmp(argv[1], "--model");
	const char *dir = argc > 1 + model ? argv[1 + model]
					   : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	uint64_t size = (argc > 2 + model ? strtoull(argv[2 + model], NULL, 0) : 256) << 20;
	unsigned rounds = 7, nrand = 50000;
	void *buf;

	if (posix_memalign(&buf, 4096, BS))
		return 1;
	memset(buf, 0x5A, BS);
	printf("bench_pool: %llu MiB files in %s, data block 64 KiB, metadata: %s\n",
	       (unsigned long long)(size >> 20), dir, model ? "model (in memory)" : "file");
	bench_first_writes(dir, model, size, rounds, buf);
	bench_random(dir, model, size, rounds, nrand, buf);
	if (!model) {
		bench_snapshots(dir);
		bench_depth(dir, size, rounds, buf);
	}
	free(buf);
	return 0;
}
