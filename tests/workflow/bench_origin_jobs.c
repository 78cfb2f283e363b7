/*
 * bench_origin_jobs: hydration and merge against the plain copies they
 * replace, measured in the same process on memory devices (so the figures
 * are the library's own cost, no disk).
 *
 *   tests/workflow/bench_origin_jobs [MiB]        (default 256)
 *
 * hydrate: thinp_hydrate of an empty device over an origin of MiB of random
 *   data, against the baseline of copying the origin into an empty device
 *   with thinp_thin_write in 1 MiB pieces and a flush.
 * merge: thinp_merge of a fully written device into the origin, against
 *   the baseline of reading the device with thinp_thin_read and writing the
 *   origin with thinp_io_write in 1 MiB pieces, then a flush.
 * Best of three of each, alternating; prints MiB/s and the ratio job/baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libthinp/thinp.h>

#define BS (64u << 10)
#define CHUNK (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(int r, const char *what)
{
	if (r) {
		fprintf(stderr, "bench_origin_jobs: %s: %s\n", what, thinp_strerror(r));
		exit(1);
	}
}

struct bench {
	uint64_t bytes;
	thinp_io *meta, *data, *origin, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
	uint8_t *buf;
};

/* A fresh pool with device 1 on the origin, its entry naming it. */
static void setup(struct bench *b)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_catalog_entry *e = calloc(1, sizeof(*e));

	check(thinp_io_open_memory(&b->meta, 64u << 20, 0), "metadata");
	check(thinp_io_open_memory(&b->data, b->bytes + (64u << 20), 0), "data");
	check(thinp_io_open_memory(&b->cio, 0, 0), "catalog");
	o.data_block_size = BS;
	check(thinp_pool_format(&b->pool, b->meta, b->data, &o), "format");
	check(thinp_catalog_open(&b->cat, b->cio, 0), "catalog open");
	check(thinp_pool_create_thin(b->pool, 1), "create");
	*e = (thinp_catalog_entry)THINP_CATALOG_ENTRY_INIT;
	e->id = 1;
	e->size = b->bytes;
	strcpy(e->origin, "origin");
	check(thinp_catalog_attach(b->cat, b->pool, e), "attach");
	free(e);
}

static void teardown(struct bench *b)
{
	thinp_catalog_close(b->cat);
	check(thinp_pool_close(b->pool), "close");
	thinp_io_close(b->meta);
	thinp_io_close(b->data);
	thinp_io_close(b->cio);
}

static thinp_thin *open_dev(struct bench *b, thinp_io *origin)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	thinp_thin *t;

	to.size = b->bytes;
	to.origin = origin;
	check(thinp_thin_open(&t, b->pool, 1, &to), "open");
	return t;
}

/* Copy the origin into device 1 with plain writes. */
static double copy_in(struct bench *b)
{
	thinp_thin *t = open_dev(b, NULL);
	double t0 = now();

	for (uint64_t off = 0; off < b->bytes; off += CHUNK) {
		check(thinp_io_read(b->origin, b->buf, CHUNK, off, 0), "origin read");
		check(thinp_thin_write(t, b->buf, CHUNK, off), "write");
	}
	check(thinp_thin_flush(t), "flush");
	t0 = now() - t0;
	thinp_thin_close(t);
	return t0;
}

static double hydrate(struct bench *b)
{
	thinp_thin *t = open_dev(b, b->origin);
	double t0 = now();

	check(thinp_hydrate(t, NULL, NULL, NULL), "hydrate");
	t0 = now() - t0;
	thinp_thin_close(t);
	return t0;
}

/* Write device 1 back onto the origin with plain reads and writes. */
static double copy_out(struct bench *b)
{
	thinp_thin *t = open_dev(b, NULL);
	double t0 = now();

	for (uint64_t off = 0; off < b->bytes; off += CHUNK) {
		check(thinp_thin_read(t, b->buf, CHUNK, off), "read");
		check(thinp_io_write(b->origin, b->buf, CHUNK, off, 0), "origin write");
	}
	check(thinp_io_flush(b->origin), "origin flush");
	t0 = now() - t0;
	thinp_thin_close(t);
	return t0;
}

static double merge(struct bench *b)
{
	double t0 = now();

	check(thinp_merge(b->pool, 1, b->origin, b->cat, NULL, NULL), "merge");
	return now() - t0;
}

/* Best of three runs of fn, each on a fresh pool (filled first when
 * @filled: the merge's input). */
static double best(struct bench *b, double (*fn)(struct bench *), int filled)
{
	double t = 1e30;

	for (int i = 0; i < 3; i++) {
		double x;

		setup(b);
		if (filled)
			copy_in(b);
		x = fn(b);
		t = x < t ? x : t;
		teardown(b);
	}
	return t;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 256;
	double base_in, hyd, base_out, mrg;
	uint64_t x = 88172645463325252ull;

	b.bytes = mib << 20;
	b.buf = malloc(CHUNK);
	check(thinp_io_open_memory(&b.origin, b.bytes, 0), "origin");
	for (uint64_t off = 0; off < b.bytes; off += CHUNK) {
		for (size_t i = 0; i < CHUNK; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(b.buf + i, &x, 8);
		}
		check(thinp_io_write(b.origin, b.buf, CHUNK, off, 0), "origin fill");
	}
	base_in = best(&b, copy_in, 0);
	hyd = best(&b, hydrate, 0);
	base_out = best(&b, copy_out, 1);
	mrg = best(&b, merge, 1);
	printf("hydrate %llu MiB: %.0f MiB/s, plain copy in %.0f MiB/s, ratio %.2f\n",
	       (unsigned long long)mib, mib / hyd, mib / base_in, base_in / hyd);
	printf("merge   %llu MiB: %.0f MiB/s, plain copy out %.0f MiB/s, ratio %.2f\n",
	       (unsigned long long)mib, mib / mrg, mib / base_out, base_out / mrg);
	thinp_io_close(b.origin);
	free(b.buf);
	return 0;
}
