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
 * Usage: tests/pool/bench_pool [--model] [DIR] [SIZE_MIB]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libthinp/thinp.h>
#include "pool/md_model.h"
#include "pool/pool_internal.h"

#define BS (64u * 1024)
#define IO4K 4096u

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_pool: %s: %s\n", what, thinp_strerror(r));
	exit(1);
}

static thinp_io *open_file(const char *dir, const char *name, uint64_t size)
{
	char path[512];
	thinp_io *io;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	r = thinp_io_open_file(&io, path, THINP_IO_CREATE);
	if (r)
		die(path, r);
	r = thinp_io_resize(io, size);
	if (r)
		die("resize", r);
	unlink(path); /* removed when closed */
	return io;
}

typedef int (*write_fn)(void *h, const void *buf, uint64_t len, uint64_t off);
typedef int (*read_fn)(void *h, void *buf, uint64_t len, uint64_t off);

static int raw_write(void *h, const void *b, uint64_t l, uint64_t o)
{
	return thinp_io_write(h, b, l, o);
}
static int raw_read(void *h, void *b, uint64_t l, uint64_t o)
{
	return thinp_io_read(h, b, l, o);
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
	double t0 = now();

	for (uint64_t off = 0; off < size; off += BS)
		if (w(h, buf, BS, off))
			die("sequential write", -EIO);
	if (flush(h))
		die("flush", -EIO);
	return size / (1024.0 * 1024) / (now() - t0);
}

/* Operations per second of random 4 KiB I/O within size bytes. */
static double rand_io(void *h, read_fn rd, write_fn wr, uint64_t size, unsigned n, void *buf)
{
	uint64_t x = 88172645463325252ull;
	double t0 = now();

	for (unsigned i = 0; i < n; i++) {
		uint64_t off;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		off = (x % (size / IO4K)) * IO4K;
		if (rd ? rd(h, buf, IO4K, off) : wr(h, buf, IO4K, off))
			die("random io", -EIO);
	}
	return n / (now() - t0);
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
		die("thin open", r);
	return thin;
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
	meta = open_file(dir, "bench-snap-meta", 64 << 20);
	data = open_file(dir, "bench-snap-data", 32768ull * BS);
	r = thinp_pool_format(&pool, meta, data, &o);
	if (!r)
		r = thinp_pool_create_thin(pool, 0);
	if (r)
		die("snapshot pool", r);
	thin = open_thin(pool, 0, 32768ull * BS);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double t0;

		for (; mapped < sizes[i]; mapped++)
			if (thinp_thin_write(thin, "x", 1, mapped * BS))
				die("provision", -EIO);
		if (thinp_thin_flush(thin))
			die("flush", -EIO);
		t0 = now();
		r = thinp_pool_create_snap(pool, next_id++, 0);
		if (r)
			die("create_snap", r);
		printf("snapshot of a volume with %6llu mapped blocks: %.2f ms (commit included)\n",
		       (unsigned long long)mapped, (now() - t0) * 1e3);
	}
	thinp_thin_close(thin);
	thinp_pool_close(pool);
	thinp_io_close(meta);
	thinp_io_close(data);
}

/* Random 4 KiB reads on the volume at the top of a 1000-deep snapshot
 * chain against its first snapshot: the same blocks, shared by all. */
static void bench_depth(const char *dir, uint64_t size, void *buf)
{
	thinp_io *meta, *data;
	thinp_pool *pool;
	thinp_thin *t1, *top;
	double d1, dtop;
	int r;

	meta = open_file(dir, "bench-depth-meta", 64 << 20);
	data = open_file(dir, "bench-depth-data", size);
	r = thinp_pool_format(&pool, meta, data, NULL);
	if (!r)
		r = thinp_pool_create_thin(pool, 0);
	if (r)
		die("depth pool", r);
	t1 = open_thin(pool, 0, size);
	seq_write(t1, thin_write, thin_flush, size, buf);
	thinp_thin_close(t1);
	for (uint64_t d = 1; d <= 1000; d++)
		if ((r = thinp_pool_create_snap(pool, d, d - 1)))
			die("create_snap", r);
	t1 = open_thin(pool, 1, size);
	top = open_thin(pool, 1000, size);
	rand_io(t1, thin_read, NULL, size, 20000, buf); /* warm both alike */
	rand_io(top, thin_read, NULL, size, 20000, buf);
	d1 = rand_io(t1, thin_read, NULL, size, 200000, buf);
	dtop = rand_io(top, thin_read, NULL, size, 200000, buf);
	printf("random reads 4 KiB at snapshot depth 1: %.0f IOPS, depth 1000: %.0f IOPS, "
	       "ratio %.3f\n", d1, dtop, dtop / d1);
	thinp_thin_close(t1);
	thinp_thin_close(top);
	thinp_pool_close(pool);
	thinp_io_close(meta);
	thinp_io_close(data);
}

int main(int argc, char **argv)
{
	int model = argc > 1 && !strcmp(argv[1], "--model");
	const char *dir = argc > 1 + model ? argv[1 + model]
					   : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	uint64_t size = (argc > 2 + model ? strtoull(argv[2 + model], NULL, 0) : 256) << 20;
	unsigned nrand = 200000;
	thinp_io *raw, *data, *meta = NULL;
	thinp_pool *pool;
	thinp_thin *thin;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	struct md_store *store = NULL;
	struct pool_md *md;
	double r_seq, t_seq, r_rd, t_rd, r_wr, t_wr;
	void *buf;
	int r;

	if (posix_memalign(&buf, 4096, BS))
		return 1;
	memset(buf, 0x5A, BS);
	raw = open_file(dir, "bench-raw", size);
	data = open_file(dir, "bench-data", size);
	if (model) {
		store = md_store_new(BS >> 9, size / BS, 1 << 16);
		r = md_model_open(store, &md);
		if (!r)
			r = pool_create(&pool, md, NULL, data, NULL);
	} else {
		meta = open_file(dir, "bench-meta", 64 << 20);
		r = thinp_pool_format(&pool, meta, data, NULL);
	}
	if (!r)
		r = thinp_pool_create_thin(pool, 0);
	to.size = size;
	if (!r)
		r = thinp_thin_open(&thin, pool, 0, &to);
	if (r)
		die("pool setup", r);

	printf("bench_pool: %llu MiB files in %s, data block 64 KiB, metadata: %s\n",
	       (unsigned long long)(size >> 20), dir, model ? "model (in memory)" : "file");
	r_seq = seq_write(raw, raw_write, raw_flush, size, buf);
	t_seq = seq_write(thin, thin_write, thin_flush, size, buf);
	printf("sequential first writes 64 KiB: raw %.0f MiB/s, thin %.0f MiB/s, ratio %.2f\n",
	       r_seq, t_seq, t_seq / r_seq);
	r_rd = rand_io(raw, raw_read, NULL, size, nrand, buf);
	t_rd = rand_io(thin, thin_read, NULL, size, nrand, buf);
	printf("random reads 4 KiB: raw %.0f IOPS, thin %.0f IOPS, ratio %.2f\n", r_rd, t_rd,
	       t_rd / r_rd);
	r_wr = rand_io(raw, NULL, raw_write, size, nrand, buf);
	t_wr = rand_io(thin, NULL, thin_write, size, nrand, buf);
	printf("random overwrites 4 KiB: raw %.0f IOPS, thin %.0f IOPS, ratio %.2f\n", r_wr, t_wr,
	       t_wr / r_wr);
	thinp_thin_close(thin);
	thinp_pool_close(pool);
	md_store_free(store);
	thinp_io_close(raw);
	thinp_io_close(data);
	thinp_io_close(meta);
	if (!model) {
		bench_snapshots(dir);
		bench_depth(dir, size, buf);
	}
	free(buf);
	return 0;
}
