/*
 * The pool over the real dm-thin metadata (thinp_pool_format/open): images
 * pass libthinp's full check and thin_check; a chain of 1000 snapshots costs
 * the same metadata reads at the top as at depth 1; a power cut at every
 * write and flush of a workload (fault-injecting backend) loses nothing a
 * flush acknowledged; discard passdown as counted by the fault wrapper;
 * running out of metadata space (read-only until the metadata grows);
 * read-only devices.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libthinp/meta.h>
#include "common/testutil.h"
#include <libthinp/testing.h>
#include "pool/pool_test.h"

#define META_BYTES (4u << 20)

static void test_format_open_reopen(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	thinp_thin *a, *b;
	thinp_pool *p2;
	uint8_t buf[16];

	tpool_setup_real(&t, 64, META_BYTES, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, 64ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(a, "hello", 5, 3 * TEST_BS + 7), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	assert_int_equal(thinp_thin_write(a, "HELLO", 5, 3 * TEST_BS + 7), 0);
	assert_int_equal(thinp_pool_reserve_metadata_snap(t.pool), 0);
	assert_int_equal(thinp_pool_set_transaction_id(t.pool, 0, 42), 0);
	thinp_thin_close(a);
	tpool_close(&t);
	tpool_check_md(&t);

	/* A different block size is refused; 0 takes the pool's. */
	o.data_block_size = 2 * TEST_BS;
	assert_int_equal(thinp_pool_open(&p2, t.meta, t.data, &o), -EINVAL);
	tpool_open(&t);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.transaction_id, 42);
	assert_int_equal(ps.data_total, 64);
	assert_int_equal(ps.data_used, 2);
	assert_int_not_equal(ps.held_root, 0);
	assert_int_equal(ps.time, 1);
	a = topen(t.pool, 0, 64ull * TEST_BS, NULL);
	b = topen(t.pool, 1, 64ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_read(a, buf, 5, 3 * TEST_BS + 7), 0);
	assert_memory_equal(buf, "HELLO", 5);
	assert_int_equal(thinp_thin_read(b, buf, 5, 3 * TEST_BS + 7), 0);
	assert_memory_equal(buf, "hello", 5);
	thinp_thin_close(a);
	thinp_thin_close(b);
	assert_int_equal(thinp_pool_release_metadata_snap(t.pool), 0);
	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), 0);
	tpool_close(&t);
	tpool_check_md(&t);
	tpool_teardown(&t);
}

/* thinp_pool_list_thins: ascending ids, the count when the array is short,
 * uncommitted creates and deletes included. */
static void test_list_thins(void **state)
{
	uint64_t ids[4] = { 0 };
	size_t total = 99;
	struct tpool t;

	tpool_setup_real(&t, 16, META_BYTES, NULL);
	assert_int_equal(thinp_pool_list_thins(t.pool, NULL, 0, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 9), 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 2), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 5, 9), 0);
	assert_int_equal(thinp_pool_list_thins(t.pool, ids, 2, &total), 0);
	assert_int_equal(total, 3);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 5);
	assert_int_equal(ids[2], 0); /* beyond max: untouched */
	assert_int_equal(thinp_pool_delete_thin(t.pool, 5), 0);
	assert_int_equal(thinp_pool_list_thins(t.pool, ids, 4, &total), 0);
	assert_int_equal(total, 2);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 9);
	assert_int_equal(thinp_pool_list_thins(t.pool, NULL, 1, &total), -EINVAL);
	tpool_close(&t);
	tpool_teardown(&t);
}

static void test_open_unformatted(void **state)
{
	thinp_io *meta, *data;
	thinp_pool *pool;

	assert_int_equal(thinp_io_open_memory(&meta, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, 16 * TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_open(&pool, meta, data, NULL), -ENODATA);
	thinp_io_close(meta);
	thinp_io_close(data);
}

/* Too small a metadata device is out of space, as documented. */
static void test_format_small_metadata(void **state)
{
	thinp_io *meta, *data;
	thinp_pool *pool = (thinp_pool *)1;

	assert_int_equal(thinp_io_open_memory(&meta, 8192, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, 16 * TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_format(&pool, meta, data, NULL), -ENOSPC);
	assert_null(pool);
	thinp_io_close(meta);
	thinp_io_close(data);
}

static thinp_io *open_tmp(const char *name, uint64_t size, uint32_t flags)
{
	char path[4096];
	thinp_io *io;

	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	assert_int_equal(thinp_io_open_file(&io, path, flags | (flags ? 0 : THINP_IO_CREATE)), 0);
	if (size)
		assert_int_equal(thinp_io_resize(io, size), 0);
	return io;
}

/* A read-only device: format refuses it (-EROFS), open runs read-only
 * whichever of the two it is, and then nothing changes. */
static void test_read_only_devices(void **state)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	thinp_io *meta = open_tmp("ro-meta", META_BYTES, 0);
	thinp_io *data = open_tmp("ro-data", 16 * TEST_BS, 0);
	thinp_io *meta_ro = open_tmp("ro-meta", 0, THINP_IO_RDONLY);
	thinp_io *data_ro = open_tmp("ro-data", 0, THINP_IO_RDONLY);
	thinp_io *ios[2][2] = { { meta_ro, data }, { meta, data_ro } };
	thinp_pool *pool = (thinp_pool *)1;

	assert_int_equal(thinp_pool_format(&pool, meta_ro, data, NULL), -EROFS);
	assert_null(pool);
	assert_int_equal(thinp_pool_format(&pool, meta, data_ro, NULL), -EROFS);
	assert_int_equal(thinp_pool_format(&pool, meta, data, NULL), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 0), 0);
	assert_int_equal(thinp_pool_close(pool), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(thinp_pool_open(&pool, ios[i][0], ios[i][1], NULL), 0);
		assert_int_equal(thinp_pool_get_status(pool, &ps), 0);
		assert_int_equal(ps.mode, THINP_POOL_MODE_READ_ONLY);
		assert_int_equal(thinp_pool_create_thin(pool, 1), -EROFS);
		assert_int_equal(thinp_pool_close(pool), 0);
	}
	thinp_io_close(meta_ro);
	thinp_io_close(data_ro);
	thinp_io_close(meta);
	thinp_io_close(data);
	test_tmpdir_cleanup();
}

/* Devices that grew while the pool was closed are taken into use on open, as
 * the kernel does on reload; a data device that shrank below the pool's
 * blocks is refused, and the refusal changes nothing. */
static void test_open_fits_devices(void **state)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	thinp_thin *a;
	thinp_pool *p2;
	uint8_t buf[5];

	tpool_setup_real(&t, 64, META_BYTES, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, 128ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(a, "hello", 5, 63 * TEST_BS), 0);
	thinp_thin_close(a);
	tpool_close(&t);

	assert_int_equal(thinp_io_resize(t.data, 100ull * TEST_BS), 0);
	assert_int_equal(thinp_io_resize(t.meta, 2ull * META_BYTES), 0);
	tpool_open(&t);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.data_total, 100);
	assert_int_equal(ps.metadata_total, 2ull * META_BYTES / 4096);
	a = topen(t.pool, 0, 128ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(a, "world", 5, 99 * TEST_BS), 0);
	thinp_thin_close(a);
	tpool_close(&t);
	tpool_check_md(&t);

	assert_int_equal(thinp_io_resize(t.data, 99ull * TEST_BS), 0);
	assert_int_equal(thinp_pool_open(&p2, t.meta, t.data, NULL), -EINVAL);
	assert_int_equal(thinp_io_resize(t.data, 100ull * TEST_BS), 0);
	tpool_open(&t);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.data_total, 100);
	a = topen(t.pool, 0, 128ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_read(a, buf, 5, 63 * TEST_BS), 0);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(thinp_thin_read(a, buf, 5, 99 * TEST_BS), 0);
	assert_memory_equal(buf, "world", 5);
	thinp_thin_close(a);
	tpool_close(&t);
	tpool_check_md(&t);
	tpool_teardown(&t);
}

/* Metadata reads for one cold lookup of volume id (pool reopened first, so
 * nothing is cached). */
static uint64_t cold_read_cost(struct tpool *t, uint64_t id, uint64_t vblock)
{
	thinp_thin *thin;
	uint64_t before;
	uint8_t b;

	tpool_close(t);
	tpool_open(t);
	thin = topen(t->pool, id, 1ull << 30, NULL);
	before = crashdev_reads(t->meta_dev);
	assert_int_equal(thinp_thin_read(thin, &b, 1, vblock * TEST_BS), 0);
	assert_int_equal(b, (uint8_t)vblock);
	thinp_thin_close(thin);
	return crashdev_reads(t->meta_dev) - before;
}

static void test_snapshot_chain_1000(void **state)
{
	enum { DEPTH = 1000, BLOCKS = 300 };
	struct tpool t;
	thinp_thin *thin;
	uint64_t cost1, cost_top;

	tpool_setup_real(&t, BLOCKS + 16, 16u << 20, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	thin = topen(t.pool, 0, 1ull << 30, NULL);
	for (uint64_t b = 0; b < BLOCKS; b++) {
		uint8_t v = (uint8_t)b;

		assert_int_equal(thinp_thin_write(thin, &v, 1, b * TEST_BS), 0);
	}
	thinp_thin_close(thin);
	/* Each snapshot of the previous one (inactive origins, any depth). */
	for (uint64_t d = 1; d <= DEPTH; d++)
		assert_int_equal(thinp_pool_create_snap(t.pool, d, d - 1), 0);
	cost1 = cold_read_cost(&t, 1, 257);
	cost_top = cold_read_cost(&t, DEPTH, 257);
	print_message("cold read: %llu metadata block reads at depth 1, %llu at depth %d\n",
		      (unsigned long long)cost1, (unsigned long long)cost_top, DEPTH);
	assert_int_equal(cost_top, cost1);
	/* Writing at the top breaks sharing there only. */
	thin = topen(t.pool, DEPTH, 1ull << 30, NULL);
	assert_int_equal(thinp_thin_write(thin, "x", 1, 257 * TEST_BS), 0);
	thinp_thin_close(thin);
	assert_int_equal(cold_read_cost(&t, DEPTH - 1, 257), cost1);
	tpool_close(&t);
	tpool_check_md(&t);
	tpool_teardown(&t);
}

/* ---- power cut at every write and flush ---- */

#define CUT_VOLS 3
#define CUT_BLOCKS 8
#define CUT_VSIZE ((uint64_t)CUT_BLOCKS * TEST_BS)
#define CUT_OPS 40

struct cut_run {
	thinp_io *meta_lower, *data_lower; /* survive the cut */
	thinp_io *meta, *data;             /* fault wrappers */
	thinp_io_fault *mf, *df;
	thinp_pool *pool;
	thinp_thin *thin[CUT_VOLS];
	uint8_t *model[CUT_VOLS], *durable[CUT_VOLS], *dirty[CUT_VOLS], *initial[CUT_VOLS];
	uint8_t *meta_img, *data_img; /* the starting images */
	uint8_t *buf;
};

/* Format, create volumes (one a snapshot, to exercise breaking sharing),
 * commit: the image every iteration starts from. */
static void cut_prepare(struct cut_run *c)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;

	assert_int_equal(thinp_io_open_memory(&c->meta_lower, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&c->data_lower, 64 * TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_format(&c->pool, c->meta_lower, c->data_lower, &o), 0);
	assert_int_equal(thinp_pool_create_thin(c->pool, 0), 0);
	c->thin[0] = topen(c->pool, 0, CUT_VSIZE, NULL);
	memset(c->buf, 0x11, CUT_VSIZE / 2);
	assert_int_equal(thinp_thin_write(c->thin[0], c->buf, CUT_VSIZE / 2, 0), 0);
	thinp_thin_close(c->thin[0]);
	assert_int_equal(thinp_pool_create_snap(c->pool, 1, 0), 0);
	assert_int_equal(thinp_pool_create_thin(c->pool, 2), 0);
	assert_int_equal(thinp_pool_close(c->pool), 0);
	for (int v = 0; v < CUT_VOLS; v++) {
		c->model[v] = calloc(1, CUT_VSIZE);
		c->durable[v] = calloc(1, CUT_VSIZE);
		c->dirty[v] = calloc(1, CUT_VSIZE);
		c->initial[v] = calloc(1, CUT_VSIZE);
		if (v < 2)
			memset(c->initial[v], 0x11, CUT_VSIZE / 2);
	}
	c->meta_img = malloc(META_BYTES);
	c->data_img = malloc(64 * TEST_BS);
	assert_int_equal(thinp_io_read(c->meta_lower, c->meta_img, META_BYTES, 0, 0), 0);
	assert_int_equal(thinp_io_read(c->data_lower, c->data_img, 64 * TEST_BS, 0, 0), 0);
}

/* Every iteration starts from the same images and model. */
static void cut_restore(struct cut_run *c)
{
	assert_int_equal(thinp_io_write(c->meta_lower, c->meta_img, META_BYTES, 0, 0), 0);
	assert_int_equal(thinp_io_write(c->data_lower, c->data_img, 64 * TEST_BS, 0, 0), 0);
	for (int v = 0; v < CUT_VOLS; v++) {
		memcpy(c->model[v], c->initial[v], CUT_VSIZE);
		memcpy(c->durable[v], c->initial[v], CUT_VSIZE);
		memset(c->dirty[v], 0, CUT_VSIZE);
	}
}

static int cut_op(struct cut_run *c, struct test_rng *r, int v)
{
	uint64_t off = test_rng_below(r, CUT_VSIZE), len = 1 + test_rng_below(r, TEST_BS + 100);
	unsigned k = (unsigned)test_rng_below(r, 10);
	int e;

	if (off + len > CUT_VSIZE)
		len = CUT_VSIZE - off;
	if (k < 6) {
		memset(c->buf, (int)(test_rng_next(r) | 1), len);
		e = thinp_thin_write(c->thin[v], c->buf, len, off);
		memset(c->dirty[v] + off, 1, len);
		if (!e)
			memcpy(c->model[v] + off, c->buf, len);
		return e;
	}
	if (k < 8) {
		uint64_t b0 = (off + TEST_BS - 1) / TEST_BS, b1 = (off + len) / TEST_BS;

		e = thinp_thin_discard(c->thin[v], len, off);
		for (uint64_t b = b0; b < b1; b++) {
			memset(c->dirty[v] + b * TEST_BS, 1, TEST_BS);
			if (!e)
				memset(c->model[v] + b * TEST_BS, 0, TEST_BS);
		}
		return e;
	}
	e = thinp_thin_flush(c->thin[v]);
	if (!e) {
		for (int i = 0; i < CUT_VOLS; i++) {
			memcpy(c->durable[i], c->model[i], CUT_VSIZE);
			memset(c->dirty[i], 0, CUT_VSIZE);
		}
	}
	return e;
}

/* Run the workload with the power cut armed at request n of `armed`;
 * returns whether the cut fired. */
static bool cut_iteration(struct cut_run *c, uint64_t seed, bool on_meta, uint64_t n)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct test_rng r;
	bool fired = false;

	cut_restore(c);
	o.features = THINP_POOL_ERROR_IF_NO_SPACE;
	assert_int_equal(thinp_io_open_fault(&c->meta, &c->mf, c->meta_lower, 0), 0);
	assert_int_equal(thinp_io_open_fault(&c->data, &c->df, c->data_lower, 0), 0);
	assert_int_equal(thinp_io_fault_arm_cut(on_meta ? c->mf : c->df, n,
						on_meta ? THINP_IO_FAULT_CUT_TORN
							: THINP_IO_FAULT_CUT_RANDOM,
						seed + n),
			 0);
	assert_int_equal(thinp_pool_open(&c->pool, c->meta, c->data, &o), 0);
	for (int v = 0; v < CUT_VOLS; v++)
		c->thin[v] = topen(c->pool, v, CUT_VSIZE, NULL);
	test_rng_init(&r, seed);
	for (int i = 0; i < CUT_OPS && !fired; i++) {
		cut_op(c, &r, (int)test_rng_below(&r, CUT_VOLS));
		fired = thinp_io_fault_cut_fired(c->mf) || thinp_io_fault_cut_fired(c->df);
	}
	/* Both devices lose power together. */
	thinp_io_fault_cut(c->mf, THINP_IO_FAULT_CUT_RANDOM, seed * 3 + n);
	thinp_io_fault_cut(c->df, THINP_IO_FAULT_CUT_RANDOM, seed * 5 + n);
	for (int v = 0; v < CUT_VOLS; v++)
		thinp_thin_close(c->thin[v]);
	thinp_pool_close(c->pool); /* fails: the devices are dead */
	thinp_io_close(c->meta);
	thinp_io_close(c->data);
	thinp_io_fault_free(c->mf);
	thinp_io_fault_free(c->df);
	return fired;
}

/* After the cut: the image checks clean and every byte not touched since
 * the last acknowledged flush reads as it was then. */
static void cut_verify(struct cut_run *c, uint64_t n)
{
	thinp_pool *pool;
	thinp_thin *thin;
	char path[512];
	int r;

	assert_int_equal(thinp_meta_check_io(c->meta_lower, NULL, NULL, NULL), 0);
	/* thin_check (a fork each) on every 4th image keeps the run short;
	 * libthinp's stricter check above runs on all of them. */
	if (access("/usr/sbin/thin_check", X_OK) == 0 && n % 4 == 1) {
		uint8_t *img = malloc(META_BYTES);
		char cmd[600];
		FILE *f;

		snprintf(path, sizeof(path), "%s/cut.img", test_tmpdir());
		assert_int_equal(thinp_io_read(c->meta_lower, img, META_BYTES, 0, 0), 0);
		f = fopen(path, "wb");
		assert_int_equal(fwrite(img, 1, META_BYTES, f), META_BYTES);
		fclose(f);
		free(img);
		snprintf(cmd, sizeof(cmd), "/usr/sbin/thin_check -q %s", path);
		r = system(cmd);
		if (r)
			fail_msg("cut at %llu: thin_check failed on %s", (unsigned long long)n, path);
	}
	assert_int_equal(thinp_pool_open(&pool, c->meta_lower, c->data_lower, NULL), 0);
	for (int v = 0; v < CUT_VOLS; v++) {
		thin = topen(pool, v, CUT_VSIZE, NULL);
		assert_int_equal(thinp_thin_read(thin, c->buf, CUT_VSIZE, 0), 0);
		for (uint64_t i = 0; i < CUT_VSIZE; i++)
			if (!c->dirty[v][i] && c->buf[i] != c->durable[v][i])
				fail_msg("cut at %llu: volume %d byte %llu is %u, flushed %u",
					 (unsigned long long)n, v, (unsigned long long)i, c->buf[i],
					 c->durable[v][i]);
		thinp_thin_close(thin);
	}
	assert_int_equal(thinp_pool_close(pool), 0);
}

static void cut_all(bool on_meta)
{
	struct cut_run c;
	uint64_t seed = test_seed(on_meta ? "pool power cut (metadata)" : "pool power cut (data)");
	uint64_t n;
	unsigned cuts = 0;

	memset(&c, 0, sizeof(c));
	c.buf = malloc(CUT_VSIZE);
	cut_prepare(&c);
	/* Every request, or every test_short()-th in a short run. */
	for (n = 1; n < 100000; n += test_short()) {
		bool fired = cut_iteration(&c, seed, on_meta, n);

		cut_verify(&c, n);
		if (!fired)
			break;
		cuts++;
	}
	print_message("power cut at %u %s requests (every %u.): all flushed data survived\n",
		      cuts, on_meta ? "metadata" : "data", test_short());
	for (int v = 0; v < CUT_VOLS; v++) {
		free(c.model[v]);
		free(c.durable[v]);
		free(c.dirty[v]);
		free(c.initial[v]);
	}
	free(c.meta_img);
	free(c.data_img);
	thinp_io_close(c.meta_lower);
	thinp_io_close(c.data_lower);
	free(c.buf);
}

static void test_power_cut_metadata(void **state)
{
	cut_all(true);
}

static void test_power_cut_data(void **state)
{
	cut_all(false);
}

static void test_passdown_counted_by_fault_wrapper(void **state)
{
	thinp_io *meta, *lower, *data;
	thinp_io_fault *f;
	thinp_pool *pool;
	thinp_thin *thin;
	uint64_t ops, bytes;
	uint8_t *buf = calloc(1, 4 * TEST_BS);

	assert_int_equal(thinp_io_open_memory(&meta, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&lower, 16 * TEST_BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&data, &f, lower, 0), 0);
	assert_int_equal(thinp_pool_format(&pool, meta, data, NULL), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 0), 0);
	thin = topen(pool, 0, 16ull * TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(thin, buf, 4 * TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_create_snap(pool, 1, 0), 0);
	assert_int_equal(thinp_thin_write(thin, buf, TEST_BS, 0), 0); /* breaks sharing */
	thinp_io_fault_reset_counters(f);
	/* Block 0 is exclusive now: passed down; 1..2 are shared: not; a
	 * partial block is not discarded at all. */
	assert_int_equal(thinp_thin_discard(thin, 3 * TEST_BS + 100, 0), 0);
	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_DISCARD, &ops, &bytes), 0);
	assert_int_equal(bytes, TEST_BS);
	thinp_thin_close(thin);
	assert_int_equal(thinp_pool_close(pool), 0);
	assert_int_equal(thinp_meta_check_io(meta, NULL, NULL, NULL), 0);
	thinp_io_close(data);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
	thinp_io_close(meta);
	free(buf);
}

/* ---- out of metadata space ---- */

#define OOM_THINS 4          /* volumes 0..3 written round-robin; 4 snapshots 0 */
#define OOM_META_BLOCKS 48   /* far too small for the workload */
#define OOM_GROWN_BLOCKS 512
#define OOM_DATA_BLOCKS 12000
#define OOM_FLUSH_EVERY 100
#define OOM_MORE 400         /* writes after the metadata grew */
#define OOM_VSIZE ((uint64_t)OOM_DATA_BLOCKS * TEST_BS)

/* Write n of the workload stamps block n / OOM_THINS of volume
 * n % OOM_THINS with its volume, block and a generation (0 = never). */
struct oom_stamp {
	uint64_t id, vblock, gen;
};

static struct oom_stamp oom_stamp(uint64_t n, uint64_t gen)
{
	return (struct oom_stamp){ n % OOM_THINS, n / OOM_THINS, gen };
}

static int oom_write(thinp_thin **thin, uint64_t n, uint64_t gen)
{
	struct oom_stamp st = oom_stamp(n, gen);

	return thinp_thin_write(thin[st.id], &st, sizeof(st), st.vblock * TEST_BS);
}

static void oom_expect(thinp_thin *thin, uint64_t vblock, struct oom_stamp want)
{
	struct oom_stamp got;

	assert_int_equal(thinp_thin_read(thin, &got, sizeof(got), vblock * TEST_BS), 0);
	if (memcmp(&got, &want, sizeof(got)))
		fail_msg("volume %llu block %llu: read {%llu %llu %llu}, want {%llu %llu %llu}",
			 (unsigned long long)thinp_thin_id(thin), (unsigned long long)vblock,
			 (unsigned long long)got.id, (unsigned long long)got.vblock,
			 (unsigned long long)got.gen, (unsigned long long)want.id,
			 (unsigned long long)want.vblock, (unsigned long long)want.gen);
}

/* Writes 0 .. n-1 read back with their generation (zeroes for gen 0), and
 * the snapshot still holds volume 0's first write. */
static void oom_verify(thinp_thin **thin, uint64_t n, const uint64_t *gen)
{
	struct oom_stamp zero = { 0, 0, 0 };

	for (uint64_t i = 0; i < n; i++) {
		struct oom_stamp st = oom_stamp(i, gen[i]);

		oom_expect(thin[st.id], st.vblock, gen[i] ? st : zero);
	}
	oom_expect(thin[OOM_THINS], 0, oom_stamp(0, 1));
}

static void oom_open_thins(thinp_pool *pool, thinp_thin **thin, int count)
{
	for (int v = 0; v < count; v++)
		thin[v] = topen(pool, (uint64_t)v, OOM_VSIZE, NULL);
}

static void oom_close_thins(thinp_thin **thin)
{
	for (int v = 0; v <= OOM_THINS; v++)
		thinp_thin_close(thin[v]);
}

/* The committed image: libthinp's full check and thin_check. */
static void oom_check_image(thinp_io *meta, const char *path)
{
	int r = thin_check_path(path);

	assert_int_equal(thinp_meta_check_io(meta, NULL, NULL, NULL), 0);
	if (r >= 0)
		assert_int_equal(r, 0);
}

static void oom_assert_mode(thinp_pool *pool, uint32_t mode, uint64_t meta_total)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_pool_get_status(pool, &ps), 0);
	assert_int_equal(ps.mode, mode);
	assert_int_equal(ps.needs_check, 0);
	assert_int_equal(ps.metadata_total, meta_total);
}

/* Run the workload from write `from` until a call fails; flush every
 * OOM_FLUSH_EVERY writes. Returns the failing call's error; *end is the
 * number of writes attempted, *durable the number covered by a flush. */
static int oom_fill(thinp_thin **thin, uint64_t from, uint64_t *gen, uint64_t *end,
		    uint64_t *durable)
{
	uint64_t n;
	int r = 0;

	for (n = from; n < OOM_DATA_BLOCKS - OOM_THINS && !r; n++) {
		r = oom_write(thin, n, 1);
		if (!r)
			gen[n] = 1;
		if (!r && (n + 1) % OOM_FLUSH_EVERY == 0) {
			r = thinp_thin_flush(thin[0]);
			if (!r)
				*durable = n + 1;
		}
	}
	*end = n;
	return r;
}

/*
 * A commit writes its dirty metadata blocks in one sequential write, plus
 * the superblock's: the metadata space map hands out each transaction's
 * shadows in a row (laps, lib/sm/metadata.c) instead of in the holes the
 * last commit left. Random provisioning writes, a flush after every 64, on
 * a 16 MiB metadata device, long enough for the cursor to go back to block 0
 * several times; the metadata device's write requests are counted by the
 * fault wrapper. First fit from block 0 makes about 10 requests per commit
 * here. The image then passes libthinp's check and thin_check.
 */
static void test_commit_writes_one_run(void **state)
{
	enum { COMMITS = 400, PER_COMMIT = 64, VBLOCKS = 4096 };
	thinp_io *lower, *meta, *data;
	thinp_io_fault *f;
	thinp_pool *pool;
	thinp_thin *thin;
	uint64_t x = test_seed("commit writes") | 1, writes = 0, most = 0, bytes;
	char buf[4096], path[4096];

	memset(buf, 0x5a, sizeof(buf));
	snprintf(path, sizeof(path), "%s/commit-writes-meta.img", test_tmpdir());
	lower = open_tmp("commit-writes-meta.img", 16u << 20, 0);
	assert_int_equal(thinp_io_open_fault(&meta, &f, lower, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, (uint64_t)VBLOCKS * TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_format(&pool, meta, data, NULL), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 0), 0);
	thin = topen(pool, 0, (uint64_t)VBLOCKS * TEST_BS, NULL);
	for (unsigned c = 0; c < COMMITS; c++) {
		uint64_t n;

		for (unsigned i = 0; i < PER_COMMIT; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			assert_int_equal(thinp_thin_write(thin, buf, sizeof(buf),
							  (x % VBLOCKS) * TEST_BS),
					 0);
		}
		/* Every 8th commit frees blocks too. */
		if (c % 8 == 7)
			assert_int_equal(thinp_thin_discard(thin, 64ull * TEST_BS,
							    (x % (VBLOCKS - 64)) * TEST_BS),
					 0);
		thinp_io_fault_reset_counters(f);
		assert_int_equal(thinp_thin_flush(thin), 0);
		assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE, &n, &bytes), 0);
		writes += n;
		most = n > most ? n : most;
	}
	printf("metadata writes per commit: %.2f on average, %llu at most\n",
	       (double)writes / COMMITS, (unsigned long long)most);
	assert_true(writes <= COMMITS * 5 / 2);
	thinp_thin_close(thin);
	assert_int_equal(thinp_pool_close(pool), 0);
	oom_check_image(meta, path);
	thinp_io_close(meta);
	thinp_io_fault_free(f);
	thinp_io_close(lower);
	thinp_io_close(data);
}

/*
 * A pool on the real metadata runs out of metadata blocks mid-workload:
 * the call that ran out returns -ENOSPC; the pool turns read-only without
 * needs_check (nothing is corrupt) and the open transaction is rolled back
 * to the last flush; read-only mode behaves as pool.h says. Growing the
 * metadata device returns the pool to read-write, and the image checks
 * clean (libthinp and thin_check) during the read-only spell and after.
 */
static void test_out_of_metadata_space(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint64_t *gen = calloc(OOM_DATA_BLOCKS, sizeof(*gen));
	thinp_thin *thin[OOM_THINS + 1];
	char meta_path[512], data_path[512];
	struct oom_stamp st;
	thinp_io *meta, *data;
	thinp_pool *pool;
	uint64_t n, end, durable = 0;

	snprintf(meta_path, sizeof(meta_path), "%s/oom-meta.img", test_tmpdir());
	snprintf(data_path, sizeof(data_path), "%s/oom-data.img", test_tmpdir());
	assert_int_equal(thinp_io_open_file(&meta, meta_path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_open_file(&data, data_path, THINP_IO_CREATE), 0);
	assert_int_equal(thinp_io_resize(meta, OOM_META_BLOCKS * 4096ull), 0);
	assert_int_equal(thinp_io_resize(data, OOM_VSIZE), 0);
	/* Unwritten parts of blocks stay holes: the data file stays small. */
	o.features = THINP_POOL_SKIP_BLOCK_ZEROING | THINP_POOL_ERROR_IF_NO_SPACE;
	assert_int_equal(thinp_pool_format(&pool, meta, data, &o), 0);
	for (uint64_t v = 0; v < OOM_THINS; v++)
		assert_int_equal(thinp_pool_create_thin(pool, v), 0);
	oom_open_thins(pool, thin, OOM_THINS);
	for (n = 0; n < OOM_THINS; n++) {
		assert_int_equal(oom_write(thin, n, 1), 0);
		gen[n] = 1;
	}
	/* Volume 4 shares volume 0's block 0. */
	assert_int_equal(thinp_pool_create_snap(pool, OOM_THINS, 0), 0);
	thin[OOM_THINS] = topen(pool, OOM_THINS, OOM_VSIZE, NULL);
	durable = OOM_THINS;

	assert_int_equal(oom_fill(thin, OOM_THINS, gen, &end, &durable), -ENOSPC);
	print_message("metadata ran out at write %llu; %llu writes were flushed\n",
		      (unsigned long long)end - 1, (unsigned long long)durable);
	assert_true(durable > 10 * OOM_FLUSH_EVERY);
	oom_assert_mode(pool, THINP_POOL_MODE_READ_ONLY, OOM_META_BLOCKS);
	assert_true(thinp_pool_errmsg(pool, NULL, 0) > 0);
	/* Rolled back to the last flush: what came after reads as never written. */
	for (n = durable; n < end; n++)
		gen[n] = 0;
	oom_verify(thin, end, gen);
	oom_check_image(meta, meta_path);

	/* Read-only: a provisioned, unshared block is written in place ... */
	assert_int_equal(oom_write(thin, 1, 2), 0);
	gen[1] = 2;
	oom_expect(thin[1], 0, oom_stamp(1, 2));
	/* ... a block needing a new one (shared, unprovisioned, rolled back) is
	 * refused, and so is every metadata change. */
	st = oom_stamp(0, 3);
	assert_int_equal(thinp_thin_write(thin[OOM_THINS], &st, sizeof(st), 0), -EROFS);
	assert_int_equal(oom_write(thin, 0, 3), -EROFS);
	assert_int_equal(oom_write(thin, end, 3), -EROFS);
	assert_int_equal(oom_write(thin, durable, 3), -EROFS);
	/* Write-zeroes as a write, but a whole unprovisioned block is left so. */
	st = oom_stamp(end, 0);
	assert_int_equal(thinp_thin_write_zeroes(thin[st.id], 512, st.vblock * TEST_BS), -EROFS);
	assert_int_equal(thinp_thin_write_zeroes(thin[st.id], TEST_BS, st.vblock * TEST_BS), 0);
	assert_int_equal(thinp_thin_discard(thin[2], TEST_BS, 0), -EROFS);
	assert_int_equal(thinp_thin_discard(thin[2], 512, 0), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 10), -EROFS);
	assert_int_equal(thinp_pool_commit(pool), -EROFS);
	/* A flush makes the in-place write durable (data device only). */
	assert_int_equal(thinp_thin_flush(thin[1]), 0);
	oom_verify(thin, end, gen);
	oom_assert_mode(pool, THINP_POOL_MODE_READ_ONLY, OOM_META_BLOCKS);

	/* Grow the device and the metadata: read-write again. */
	assert_int_equal(thinp_io_resize(meta, OOM_GROWN_BLOCKS * 4096ull), 0);
	assert_int_equal(thinp_pool_resize_metadata(pool, OOM_GROWN_BLOCKS), 0);
	oom_assert_mode(pool, THINP_POOL_MODE_RW, OOM_GROWN_BLOCKS);
	for (n = durable; n < end + OOM_MORE; n++) {
		assert_int_equal(oom_write(thin, n, 4), 0);
		gen[n] = 4;
	}
	assert_int_equal(thinp_pool_commit(pool), 0);
	assert_int_equal(thinp_pool_create_thin(pool, 10), 0);
	oom_verify(thin, end + OOM_MORE, gen);
	oom_close_thins(thin);
	assert_int_equal(thinp_pool_close(pool), 0);
	oom_check_image(meta, meta_path);

	/* Reopened: read-write, everything there. */
	assert_int_equal(thinp_pool_open(&pool, meta, data, &o), 0);
	oom_assert_mode(pool, THINP_POOL_MODE_RW, OOM_GROWN_BLOCKS);
	oom_open_thins(pool, thin, OOM_THINS + 1);
	oom_verify(thin, end + OOM_MORE, gen);
	oom_close_thins(thin);
	assert_int_equal(thinp_pool_close(pool), 0);
	thinp_io_close(meta);
	thinp_io_close(data);
	free(gen);
}

/* ---- out of metadata space at every point of a transaction ---- */

/*
 * The sweep's workload, op k of SWEEP_OPS: create volumes 0..T-1 (each a
 * message, so a commit); stamp block 0 of each in one transaction and
 * commit; snapshot volume 0 as volume T; stamp block 1 of each volume
 * 0..T-1 in one transaction and commit. The two big transactions need a
 * metadata block for nearly every write, so as the device grows by one
 * block the space runs out one allocation later: in a data block
 * allocation, a mapping insert, or a commit.
 */
#define SWEEP_T 24
#define SWEEP_OPS (3 * SWEEP_T + 3)
#define SWEEP_DATA 256
#define SWEEP_VSIZE (4 * (uint64_t)TEST_BS)

/* The write op stamping block b of volume v. */
static uint64_t sweep_write_op(uint64_t v, uint64_t b)
{
	return b ? 2 * SWEEP_T + 2 + v : SWEEP_T + v;
}

static bool sweep_commits(uint64_t k)
{
	return k < SWEEP_T || k == 2 * SWEEP_T || k == 2 * SWEEP_T + 1 || k == SWEEP_OPS - 1;
}

static int sweep_write(thinp_pool *pool, uint64_t v, uint64_t b)
{
	struct oom_stamp st = { v, b, 1 };
	thinp_thin *thin = topen(pool, v, SWEEP_VSIZE, NULL);
	int r = thinp_thin_write(thin, &st, sizeof(st), b * TEST_BS);

	thinp_thin_close(thin);
	return r;
}

static int sweep_op(thinp_pool *pool, uint64_t k)
{
	if (k < SWEEP_T)
		return thinp_pool_create_thin(pool, k);
	if (k < 2 * SWEEP_T)
		return sweep_write(pool, k - SWEEP_T, 0);
	if (k == 2 * SWEEP_T || k == SWEEP_OPS - 1)
		return thinp_pool_commit(pool);
	if (k == 2 * SWEEP_T + 1)
		return thinp_pool_create_snap(pool, SWEEP_T, 0);
	return sweep_write(pool, k - 2 * SWEEP_T - 2, 1);
}

/* Ops [from, SWEEP_OPS) until one fails; *resume moves past each commit. */
static int sweep_run(thinp_pool *pool, uint64_t from, uint64_t *resume)
{
	for (uint64_t k = from; k < SWEEP_OPS; k++) {
		int r = sweep_op(pool, k);

		if (r)
			return r;
		if (sweep_commits(k))
			*resume = k + 1;
	}
	return 0;
}

/* The pool holds exactly what ops [0, done) committed. */
static void sweep_verify(thinp_pool *pool, uint64_t done)
{
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	struct oom_stamp zero = { 0, 0, 0 };
	thinp_thin *thin;

	to.size = SWEEP_VSIZE;
	for (uint64_t v = 0; v <= SWEEP_T; v++) {
		bool exists = v < SWEEP_T ? v < done : done > 2 * SWEEP_T + 1;

		if (!exists) {
			assert_int_equal(thinp_thin_open(&thin, pool, v, &to), -ENODATA);
			continue;
		}
		thin = topen(pool, v, SWEEP_VSIZE, NULL);
		for (uint64_t b = 0; b < 2; b++) {
			/* The snapshot reads volume 0 as it was when it was taken. */
			uint64_t src = v < SWEEP_T ? v : 0;
			bool stamped = sweep_write_op(src, b) < done &&
				       (v < SWEEP_T || b == 0);

			oom_expect(thin, b, stamped ? (struct oom_stamp){ src, b, 1 } : zero);
		}
		thinp_thin_close(thin);
	}
}

/*
 * Metadata devices of every size from one that holds little more than the
 * format to one that holds the whole workload: each time the call that ran
 * out returns -ENOSPC, the pool is read-only without needs_check and holds
 * exactly what was committed; after a grow the workload completes, the
 * image checks clean and reopens with everything in it.
 */
static void test_out_of_metadata_space_sweep(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	char path[512];
	thinp_io *meta, *data;
	thinp_pool *pool;
	uint64_t size, resume;
	unsigned runs = 0;
	int r;

	o.features = THINP_POOL_ERROR_IF_NO_SPACE;
	snprintf(path, sizeof(path), "%s/sweep-meta.img", test_tmpdir());
	/* Every size, or every test_short()-th in a short run. */
	for (size = 20;; size += test_short()) {
		unlink(path);
		assert_int_equal(thinp_io_open_file(&meta, path, THINP_IO_CREATE), 0);
		assert_int_equal(thinp_io_resize(meta, size * 4096), 0);
		assert_int_equal(thinp_io_open_memory(&data, SWEEP_DATA * (uint64_t)TEST_BS, 0), 0);
		assert_int_equal(thinp_pool_format(&pool, meta, data, &o), 0);
		resume = 0;
		r = sweep_run(pool, 0, &resume);
		if (!r) {
			assert_int_equal(thinp_pool_close(pool), 0);
			thinp_io_close(meta);
			thinp_io_close(data);
			break;
		}
		runs++;
		assert_int_equal(r, -ENOSPC);
		oom_assert_mode(pool, THINP_POOL_MODE_READ_ONLY, size);
		sweep_verify(pool, resume);
		assert_int_equal(thinp_io_resize(meta, 4 * size * 4096), 0);
		assert_int_equal(thinp_pool_resize_metadata(pool, 4 * size), 0);
		oom_assert_mode(pool, THINP_POOL_MODE_RW, 4 * size);
		assert_int_equal(sweep_run(pool, resume, &resume), 0);
		assert_int_equal(thinp_pool_close(pool), 0);
		if (size % 4 == 0)
			oom_check_image(meta, path);
		else
			assert_int_equal(thinp_meta_check_io(meta, NULL, NULL, NULL), 0);
		assert_int_equal(thinp_pool_open(&pool, meta, data, &o), 0);
		sweep_verify(pool, SWEEP_OPS);
		assert_int_equal(thinp_pool_close(pool), 0);
		thinp_io_close(meta);
		thinp_io_close(data);
	}
	print_message("metadata ran out on %u device sizes, up to %llu blocks\n", runs,
		      (unsigned long long)size - 1);
	assert_true(runs >= 20 / test_short());
}

/*
 * thinp_pool_get_thin_status over the real metadata: highest_mapped (the
 * rightmost path of the volume's subtree) and mapped_blocks (the device
 * details) stay exact while the top end is discarded in bites that cross
 * leaves, after a snapshot shares the subtree, and across a reopen.
 */
#define ST_BLOCKS 640u

static void assert_thin_status(thinp_pool *pool, uint64_t id, uint64_t highest,
			       uint64_t mapped)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;

	assert_int_equal(thinp_pool_get_thin_status(pool, id, &ts), 0);
	assert_int_equal(ts.highest_mapped, highest);
	assert_int_equal(ts.mapped_blocks, mapped);
}

static void test_thin_status_highest(void **state)
{
	static uint8_t buf[TEST_BS];
	struct tpool t;
	thinp_thin *a;
	uint64_t top = ST_BLOCKS, mapped = 0;

	memset(buf, 0x77, sizeof(buf));
	tpool_setup_real(&t, ST_BLOCKS, META_BYTES, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, (uint64_t)ST_BLOCKS * TEST_BS, NULL);
	assert_thin_status(t.pool, 0, 0, 0);
	/* Every other block below 3/4, every block above: 3 leaves or more. */
	for (uint64_t v = 0; v < ST_BLOCKS; v++) {
		if (v < ST_BLOCKS * 3 / 4 && v % 2)
			continue;
		assert_int_equal(thinp_thin_write(a, buf, TEST_BS, v * TEST_BS), 0);
		mapped++;
	}
	assert_thin_status(t.pool, 0, ST_BLOCKS, mapped);
	assert_int_equal(thinp_thin_flush(a), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	/* Bites of 1..97 blocks off the top, across leaf boundaries. */
	for (uint64_t bite = 1; top > 100; bite = bite * 7 % 97 + 1) {
		uint64_t begin = top - (bite < top - 100 ? bite : top - 100);

		assert_int_equal(thinp_thin_discard(a, (top - begin) * TEST_BS, begin * TEST_BS),
				 0);
		for (uint64_t v = begin; v < top; v++)
			mapped -= v >= ST_BLOCKS * 3 / 4 || v % 2 == 0;
		top = begin;
		while (top && top <= ST_BLOCKS * 3 / 4 && top % 2 == 0)
			top--; /* odd blocks below 3/4 were never written */
		assert_thin_status(t.pool, 0, top, mapped);
		assert_thin_status(t.pool, 1, ST_BLOCKS, ST_BLOCKS * 3 / 8 + ST_BLOCKS / 4);
	}
	thinp_thin_close(a);
	tpool_close(&t);
	tpool_check_md(&t);
	tpool_open(&t);
	assert_thin_status(t.pool, 0, top, mapped);
	a = topen(t.pool, 0, (uint64_t)ST_BLOCKS * TEST_BS, NULL);
	assert_int_equal(thinp_thin_discard(a, (uint64_t)ST_BLOCKS * TEST_BS, 0), 0);
	assert_thin_status(t.pool, 0, 0, 0);
	thinp_thin_close(a);
	tpool_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_open_reopen),
		cmocka_unit_test(test_open_unformatted),
		cmocka_unit_test(test_list_thins),
		cmocka_unit_test(test_read_only_devices),
		cmocka_unit_test(test_format_small_metadata),
		cmocka_unit_test(test_open_fits_devices),
		cmocka_unit_test(test_thin_status_highest),
		cmocka_unit_test(test_snapshot_chain_1000),
		cmocka_unit_test(test_passdown_counted_by_fault_wrapper),
		cmocka_unit_test(test_commit_writes_one_run),
		cmocka_unit_test(test_out_of_metadata_space),
		cmocka_unit_test(test_out_of_metadata_space_sweep),
		cmocka_unit_test(test_power_cut_metadata),
		cmocka_unit_test(test_power_cut_data),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
