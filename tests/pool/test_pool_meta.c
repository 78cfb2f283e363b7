/*
 * The pool over the real dm-thin metadata (thinp_pool_format/open): images
 * pass libthinp's full check and thin_check; a chain of 1000 snapshots costs
 * the same metadata reads at the top as at depth 1; a power cut at every
 * write and flush of a workload (fault-injecting backend) loses nothing a
 * flush acknowledged; discard passdown as counted by the fault wrapper.
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
	assert_int_equal(thinp_io_read(c->meta_lower, c->meta_img, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_read(c->data_lower, c->data_img, 64 * TEST_BS, 0), 0);
}

/* Every iteration starts from the same images and model. */
static void cut_restore(struct cut_run *c)
{
	assert_int_equal(thinp_io_write(c->meta_lower, c->meta_img, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_write(c->data_lower, c->data_img, 64 * TEST_BS, 0), 0);
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
		assert_int_equal(thinp_io_read(c->meta_lower, img, META_BYTES, 0), 0);
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

	memset(&c, 0, sizeof(c));
	c.buf = malloc(CUT_VSIZE);
	cut_prepare(&c);
	for (n = 1; n < 100000; n++) {
		bool fired = cut_iteration(&c, seed, on_meta, n);

		cut_verify(&c, n);
		if (!fired)
			break;
	}
	print_message("power cut at each of %llu %s requests: all flushed data survived\n",
		      (unsigned long long)n - 1, on_meta ? "metadata" : "data");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_open_reopen),
		cmocka_unit_test(test_open_unformatted),
		cmocka_unit_test(test_open_fits_devices),
		cmocka_unit_test(test_snapshot_chain_1000),
		cmocka_unit_test(test_passdown_counted_by_fault_wrapper),
		cmocka_unit_test(test_power_cut_metadata),
		cmocka_unit_test(test_power_cut_data),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
