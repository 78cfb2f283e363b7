/*
 * The pool runtime's behaviour, over the metadata model (md_model.c) and a
 * RAM data device that can lose unflushed writes (pool_test.c): provisioning
 * and zeroing, snapshots and breaking sharing, external origins, discard and
 * passdown, space exhaustion and resize, failure modes, messages.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include "pool/pool_test.h"

#define VSIZE (32ull * TEST_BS)

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
}

static void assert_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			fail_msg("byte %zu is %u, expected 0", i, buf[i]);
}

static void assert_bytes(const uint8_t *buf, size_t len, uint8_t v)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != v)
			fail_msg("byte %zu is %u, expected %u", i, buf[i], v);
}

static void test_provision_and_zeroing(void **state)
{
	struct tpool t;
	thinp_thin *thin;
	thinp_mapping m = THINP_MAPPING_INIT;
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	uint8_t *buf = malloc(TEST_BS * 2), w[100];

	tpool_setup(&t, 64, NULL);
	/* Garbage on the data device must never show through. */
	memset(buf, 0xEE, TEST_BS);
	for (int b = 0; b < 64; b++)
		assert_int_equal(thinp_io_write(t.data, buf, TEST_BS, b * (uint64_t)TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 1), 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 1), -EEXIST);
	thin = topen(t.pool, 1, VSIZE, NULL);

	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS * 2, TEST_BS), 0);
	assert_zero(buf, TEST_BS * 2);
	assert_int_equal(thinp_pool_thin_map(t.pool, 1, 3, &m), -ENODATA);

	fill_pattern(w, sizeof(w), 1);
	assert_int_equal(thinp_thin_write(thin, w, sizeof(w), 3 * TEST_BS + 1000), 0);
	assert_int_equal(thinp_pool_thin_map(t.pool, 1, 3, &m), 0);
	assert_int_equal(m.shared, 0);
	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS, 3 * TEST_BS), 0);
	assert_zero(buf, 1000);
	assert_memory_equal(buf + 1000, w, sizeof(w));
	assert_zero(buf + 1000 + sizeof(w), TEST_BS - 1000 - sizeof(w));

	/* An unaligned write across a block boundary provisions both. */
	assert_int_equal(thinp_thin_write(thin, w, sizeof(w), 6 * TEST_BS - 50), 0);
	assert_int_equal(thinp_thin_read(thin, buf, sizeof(w), 6 * TEST_BS - 50), 0);
	assert_memory_equal(buf, w, sizeof(w));
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 1, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 3);
	assert_int_equal(ts.highest_mapped, 7);
	assert_int_equal(ts.open_count, 1);

	/* Out of range. */
	assert_int_equal(thinp_thin_read(thin, buf, 2, VSIZE - 1), -EINVAL);
	assert_int_equal(thinp_thin_write(thin, w, 1, VSIZE), -EINVAL);

	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), -EBUSY);
	thinp_thin_close(thin);
	tpool_check_md(&t);
	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), 0);
	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), -ENODATA);
	tpool_check_md(&t);
	tpool_teardown(&t);
	free(buf);
}

static void test_skip_block_zeroing(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct tpool t;
	thinp_thin *thin;
	uint8_t *buf = malloc(TEST_BS);

	o.features = THINP_POOL_SKIP_BLOCK_ZEROING;
	tpool_setup(&t, 8, &o);
	memset(buf, 0xEE, TEST_BS);
	for (int b = 0; b < 8; b++)
		assert_int_equal(thinp_io_write(t.data, buf, TEST_BS, b * (uint64_t)TEST_BS, 0), 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	thin = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(thin, "x", 1, 10), 0);
	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS, 0), 0);
	assert_int_equal(buf[10], 'x');
	assert_int_equal(buf[0], 0xEE); /* not zeroed, as asked */
	thinp_thin_close(thin);
	tpool_teardown(&t);
	free(buf);
}

static void test_write_zeroes(void **state)
{
	struct tpool t;
	thinp_thin *thin;
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	uint8_t *buf = malloc(TEST_BS * 3);

	tpool_setup(&t, 16, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	thin = topen(t.pool, 0, VSIZE, NULL);
	/* Never-written whole blocks stay unprovisioned. */
	assert_int_equal(thinp_thin_write_zeroes(thin, TEST_BS * 4, 0), 0);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 0);
	memset(buf, 0x55, TEST_BS * 3);
	assert_int_equal(thinp_thin_write(thin, buf, TEST_BS * 3, TEST_BS), 0);
	assert_int_equal(thinp_thin_write_zeroes(thin, TEST_BS + 200, TEST_BS + 100), 0);
	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS * 3, TEST_BS), 0);
	assert_bytes(buf, 100, 0x55);
	assert_zero(buf + 100, TEST_BS + 200);
	assert_bytes(buf + 100 + TEST_BS + 200, TEST_BS * 2 - 300, 0x55);
	thinp_thin_close(thin);
	tpool_check_md(&t);
	tpool_teardown(&t);
	free(buf);
}

static void test_snapshot_breaks_sharing(void **state)
{
	struct tpool t;
	thinp_thin *a, *b;
	thinp_mapping ma = THINP_MAPPING_INIT, mb = THINP_MAPPING_INIT;
	uint8_t *buf = malloc(TEST_BS);

	tpool_setup(&t, 32, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	memset(buf, 'A', TEST_BS);
	assert_int_equal(thinp_thin_write(a, buf, TEST_BS, 0), 0);
	assert_int_equal(thinp_thin_write(a, buf, TEST_BS, TEST_BS), 0);
	/* Snapshot of an open (active) volume. */
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), -EEXIST);
	assert_int_equal(thinp_pool_create_snap(t.pool, 2, 9), -ENODATA);
	b = topen(t.pool, 1, VSIZE, NULL);
	assert_int_equal(thinp_pool_thin_map(t.pool, 0, 0, &ma), 0);
	assert_int_equal(thinp_pool_thin_map(t.pool, 1, 0, &mb), 0);
	assert_int_equal(ma.data_block, mb.data_block);
	assert_int_equal(ma.shared, 1);

	/* A partial write to the origin copies the block; the snapshot keeps
	 * the old data. */
	assert_int_equal(thinp_thin_write(a, "new", 3, 100), 0);
	assert_int_equal(thinp_pool_thin_map(t.pool, 0, 0, &ma), 0);
	assert_int_not_equal(ma.data_block, mb.data_block);
	assert_int_equal(ma.shared, 0);
	assert_int_equal(thinp_thin_read(a, buf, TEST_BS, 0), 0);
	assert_memory_equal(buf + 100, "new", 3);
	assert_bytes(buf, 100, 'A');
	assert_bytes(buf + 103, TEST_BS - 103, 'A');
	assert_int_equal(thinp_thin_read(b, buf, TEST_BS, 0), 0);
	assert_bytes(buf, TEST_BS, 'A');

	/* The snapshot side breaks sharing too. */
	assert_int_equal(thinp_thin_write(b, "snap", 4, TEST_BS + 5), 0);
	assert_int_equal(thinp_thin_read(a, buf, TEST_BS, TEST_BS), 0);
	assert_bytes(buf, TEST_BS, 'A');
	assert_int_equal(thinp_thin_read(b, buf, TEST_BS, TEST_BS), 0);
	assert_memory_equal(buf + 5, "snap", 4);

	/* Deleting the snapshot leaves the origin intact. */
	thinp_thin_close(b);
	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), 0);
	assert_int_equal(thinp_thin_read(a, buf, TEST_BS, TEST_BS), 0);
	assert_bytes(buf, TEST_BS, 'A');
	thinp_thin_close(a);
	tpool_check_md(&t);
	tpool_teardown(&t);
	free(buf);
}

static void test_snapshot_chain(void **state)
{
	enum { DEPTH = 200 };
	struct tpool t;
	thinp_thin *thin;
	uint64_t v;

	tpool_setup(&t, 512, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	/* Each level writes its own block, then is snapshotted; the last
	 * level sees every level's block. Inactive origins. */
	for (uint64_t d = 0; d < DEPTH; d++) {
		thin = topen(t.pool, d, DEPTH * (uint64_t)TEST_BS, NULL);
		assert_int_equal(thinp_thin_write(thin, &d, sizeof(d), d * TEST_BS), 0);
		/* Overwrite a block shared with every ancestor. */
		assert_int_equal(thinp_thin_write(thin, &d, sizeof(d), 8), 0);
		thinp_thin_close(thin);
		if (d + 1 < DEPTH)
			assert_int_equal(thinp_pool_create_snap(t.pool, d + 1, d), 0);
	}
	for (uint64_t d = 0; d < DEPTH; d += 37) {
		thin = topen(t.pool, d, DEPTH * (uint64_t)TEST_BS, NULL);
		for (uint64_t k = 1; k < DEPTH; k += 13) {
			assert_int_equal(thinp_thin_read(thin, &v, sizeof(v), k * TEST_BS), 0);
			assert_int_equal(v, k <= d ? k : 0);
		}
		assert_int_equal(thinp_thin_read(thin, &v, sizeof(v), 8), 0);
		assert_int_equal(v, d);
		thinp_thin_close(thin);
	}
	tpool_check_md(&t);
	tpool_teardown(&t);
}

static void test_external_origin(void **state)
{
	struct tpool t;
	thinp_io *origin, *origin_ro;
	thinp_thin *thin;
	uint64_t osize = 2 * TEST_BS + 1000; /* ends inside block 2 */
	uint8_t *obuf = malloc(osize), *buf = malloc(TEST_BS * 4);

	tpool_setup(&t, 32, NULL);
	fill_pattern(obuf, osize, 3);
	assert_int_equal(thinp_io_open_memory(&origin, osize, 0), 0);
	assert_int_equal(thinp_io_write(origin, obuf, osize, 0, 0), 0);
	/* Reopen read-only to prove the origin is never written. */
	assert_int_equal(thinp_io_open_memory(&origin_ro, osize, 0), 0);
	assert_int_equal(thinp_io_write(origin_ro, obuf, osize, 0, 0), 0);
	thinp_io_close(origin);
	origin = origin_ro;

	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	thin = topen(t.pool, 0, 4 * (uint64_t)TEST_BS, origin);
	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS * 4, 0), 0);
	assert_memory_equal(buf, obuf, osize);
	assert_zero(buf + osize, 4 * TEST_BS - osize);

	/* Partial writes copy the origin's data into the new block; in the
	 * block where the origin ends, the rest is zeroes. */
	assert_int_equal(thinp_thin_write(thin, "ab", 2, 10), 0);
	assert_int_equal(thinp_thin_write(thin, "cd", 2, 2 * TEST_BS + 10), 0);
	assert_int_equal(thinp_thin_read(thin, buf, TEST_BS * 4, 0), 0);
	memcpy(obuf + 10, "ab", 2);
	memcpy(obuf + 2 * TEST_BS + 10, "cd", 2);
	assert_memory_equal(buf, obuf, osize);
	assert_zero(buf + osize, 4 * TEST_BS - osize);
	/* The origin itself is unchanged. */
	assert_int_equal(thinp_io_read(origin, buf, 2, 10, 0), 0);
	assert_memory_not_equal(buf, "ab", 2);

	/* A snapshot of it, opened with the same origin, reads the same; a
	 * discard reveals the origin again. */
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	thinp_thin_close(thin);
	thin = topen(t.pool, 1, 4 * (uint64_t)TEST_BS, origin);
	assert_int_equal(thinp_thin_read(thin, buf, 2, 10), 0);
	assert_memory_equal(buf, "ab", 2);
	assert_int_equal(thinp_thin_discard(thin, TEST_BS, 0), 0);
	assert_int_equal(thinp_thin_read(thin, buf, 2, 10), 0);
	assert_memory_not_equal(buf, "ab", 2);
	thinp_thin_close(thin);
	thinp_io_close(origin);
	tpool_check_md(&t);
	tpool_teardown(&t);
	free(obuf);
	free(buf);
}

static void test_discard_rounding_and_passdown(void **state)
{
	struct tpool t;
	thinp_thin *a;
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	uint8_t *buf = malloc(TEST_BS * 8);

	tpool_setup(&t, 32, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	memset(buf, 'D', TEST_BS * 8);
	assert_int_equal(thinp_thin_write(a, buf, TEST_BS * 8, 0), 0);

	/* Inside one block: nothing. */
	assert_int_equal(thinp_thin_discard(a, TEST_BS - 2, 1), 0);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 8);
	/* [0.5, 3.5) blocks: only blocks 1 and 2 go. */
	assert_int_equal(thinp_thin_discard(a, 3 * TEST_BS, TEST_BS / 2), 0);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 6);
	assert_int_equal(crashdev_discarded_bytes(t.dev), 2 * TEST_BS);
	assert_int_equal(thinp_thin_read(a, buf, TEST_BS * 4, 0), 0);
	assert_bytes(buf, TEST_BS, 'D');
	assert_zero(buf + TEST_BS, 2 * TEST_BS);
	assert_bytes(buf + 3 * TEST_BS, TEST_BS, 'D');

	/* Blocks shared with a snapshot are unmapped but not passed down. */
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	assert_int_equal(thinp_thin_discard(a, 2 * TEST_BS, 4 * TEST_BS), 0);
	assert_int_equal(crashdev_discarded_bytes(t.dev), 2 * TEST_BS);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 4);
	/* Deleting the snapshot frees them; the space comes back after the
	 * commit. */
	assert_int_equal(thinp_pool_delete_thin(t.pool, 1), 0);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.data_used, 4);
	/* Now unshared blocks of a discard are passed down. */
	assert_int_equal(thinp_thin_discard(a, VSIZE, 0), 0);
	assert_int_equal(crashdev_discarded_bytes(t.dev), 6 * TEST_BS);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.data_used, 0);
	thinp_thin_close(a);
	tpool_check_md(&t);
	tpool_teardown(&t);
	free(buf);
}

static void test_discard_features(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct tpool t;
	thinp_thin *a;
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	uint8_t *buf = calloc(1, TEST_BS * 2);

	o.features = THINP_POOL_NO_DISCARD_PASSDOWN;
	tpool_setup(&t, 8, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, buf, TEST_BS * 2, 0), 0);
	assert_int_equal(thinp_thin_discard(a, TEST_BS * 2, 0), 0);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 0);
	assert_int_equal(crashdev_discarded_bytes(t.dev), 0);
	thinp_thin_close(a);
	tpool_teardown(&t);

	o.features = THINP_POOL_IGNORE_DISCARD;
	tpool_setup(&t, 8, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, buf, TEST_BS * 2, 0), 0);
	assert_int_equal(thinp_thin_discard(a, TEST_BS * 2, 0), -EOPNOTSUPP);
	assert_int_equal(thinp_pool_get_thin_status(t.pool, 0, &ts), 0);
	assert_int_equal(ts.mapped_blocks, 2);
	thinp_thin_close(a);
	tpool_teardown(&t);
	free(buf);
}

static void test_error_if_no_space(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	thinp_thin *a;
	uint8_t *buf = calloc(1, TEST_BS);

	o.features = THINP_POOL_ERROR_IF_NO_SPACE;
	tpool_setup(&t, 4, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(thinp_thin_write(a, buf, TEST_BS, i * (uint64_t)TEST_BS), 0);
	assert_int_equal(thinp_thin_write(a, buf, 1, 4 * TEST_BS), -ENOSPC);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_OUT_OF_DATA_SPACE);
	/* Overwrites of provisioned blocks still work. */
	assert_int_equal(thinp_thin_write(a, "z", 1, 0), 0);
	/* Discarded space comes back (after the commit the pool makes). */
	assert_int_equal(thinp_thin_discard(a, TEST_BS, 3 * TEST_BS), 0);
	assert_int_equal(thinp_thin_write(a, buf, 1, 4 * TEST_BS), 0);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_RW);
	assert_int_equal(thinp_thin_write(a, buf, 1, 5 * TEST_BS), -ENOSPC);
	/* Growing needs a bigger data device. */
	assert_int_equal(thinp_pool_resize_data(t.pool, 100), -EINVAL);
	assert_int_equal(thinp_pool_resize_data(t.pool, 3), -EINVAL);
	thinp_thin_close(a);
	tpool_teardown(&t);
	free(buf);
}

struct low_water {
	int calls;
	uint64_t free_blocks;
};

static void on_low_water(thinp_pool *pool, uint64_t free_blocks, void *ctx)
{
	struct low_water *lw = ctx;

	lw->calls++;
	lw->free_blocks = free_blocks;
}

struct writer_arg {
	thinp_thin *thin;
	uint64_t off;
	int result;
};

static void *writer(void *p)
{
	struct writer_arg *w = p;

	w->result = thinp_thin_write(w->thin, "w", 1, w->off);
	return NULL;
}

static void wait_for_mode(thinp_pool *pool, uint32_t mode)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;

	for (int i = 0; i < 5000; i++) {
		assert_int_equal(thinp_pool_get_status(pool, &ps), 0);
		if (ps.mode == mode)
			return;
		usleep(1000);
	}
	fail_msg("pool never reached mode %u", mode);
}

/* A data device bigger than the pool, to grow into. */
static void setup_growable(struct tpool *t, uint64_t pool_blocks, uint64_t dev_blocks,
			   const thinp_pool_options *o)
{
	struct pool_md *md;

	memset(t, 0, sizeof(*t));
	t->opts = *o;
	t->store = md_store_new(TEST_BS >> 9, pool_blocks, 1024);
	assert_int_equal(crashdev_open(&t->data, dev_blocks * TEST_BS, true, &t->dev), 0);
	assert_int_equal(md_model_open(t->store, &md), 0);
	tpool_open(t);
	md->ops->destroy(md);
}

static void test_wait_for_resize_and_low_water(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct low_water lw = { 0, 0 };
	struct writer_arg w;
	struct tpool t;
	pthread_t th;
	thinp_thin *a;

	o.low_water_blocks = 1;
	o.low_water_fn = on_low_water;
	o.low_water_ctx = &lw;
	setup_growable(&t, 3, 16, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "x", 1, 0), 0);
	assert_int_equal(lw.calls, 0);
	assert_int_equal(thinp_thin_write(a, "x", 1, TEST_BS), 0);
	assert_int_equal(lw.calls, 1);
	assert_int_equal(lw.free_blocks, 1);
	assert_int_equal(thinp_thin_write(a, "x", 1, 2 * TEST_BS), 0);
	assert_int_equal(lw.calls, 1); /* once until a resize */

	/* The next write waits for space; a resize lets it go on. */
	w.thin = a;
	w.off = 5 * TEST_BS;
	w.result = 1;
	assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
	wait_for_mode(t.pool, THINP_POOL_MODE_OUT_OF_DATA_SPACE);
	assert_int_equal(thinp_pool_resize_data(t.pool, 8), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.result, 0);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_RW);
	assert_int_equal(ps.data_total, 8);
	assert_int_equal(ps.data_used, 4);
	thinp_thin_close(a);
	tpool_teardown(&t);
}

static void test_no_space_timeout(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct tpool t;
	thinp_thin *a;

	o.no_space_timeout_ms = 50;
	setup_growable(&t, 1, 4, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "x", 1, 0), 0);
	assert_int_equal(thinp_thin_write(a, "x", 1, TEST_BS), -ENOSPC);
	/* After the timeout, at once. */
	assert_int_equal(thinp_thin_write(a, "x", 1, TEST_BS), -ENOSPC);
	assert_int_equal(thinp_pool_resize_data(t.pool, 4), 0);
	assert_int_equal(thinp_thin_write(a, "x", 1, TEST_BS), 0);
	thinp_thin_close(a);
	tpool_teardown(&t);
}

/* Metadata runs out at a mapping insert, or at a data block allocation
 * (counting the block needed a metadata block): either way the pool goes
 * read-only at once, without needs_check, rolled back to the last flush. An
 * allocation must not be taken for "out of data space" and wait for a data
 * resize (the 1 ms timeout only bounds the wait if it were). */
static void out_of_metadata_space(bool in_allocation)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct md_faults *f;
	struct tpool t;
	thinp_thin *a;
	uint8_t b;

	o.no_space_timeout_ms = 1;
	tpool_setup(&t, 16, &o);
	f = md_store_faults(t.store);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "1", 1, 0), 0);
	assert_int_equal(thinp_thin_flush(a), 0);
	assert_int_equal(thinp_thin_write(a, "2", 1, TEST_BS), 0);
	if (in_allocation)
		f->meta_full_at_alloc = 1;
	else
		f->max_mappings = 2;
	assert_int_equal(thinp_thin_write(a, "3", 1, 2 * TEST_BS), -ENOSPC);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_READ_ONLY);
	assert_int_equal(ps.needs_check, 0);
	{
		/* The copy: full length returned, cut and terminated. */
		size_t n = thinp_pool_errmsg(t.pool, NULL, 0);
		char full[512], cut[8];

		assert_true(n > sizeof(cut) && n < sizeof(full));
		assert_int_equal(thinp_pool_errmsg(t.pool, full, sizeof(full)), n);
		assert_int_equal(strlen(full), n);
		memset(cut, 'x', sizeof(cut));
		assert_int_equal(thinp_pool_errmsg(t.pool, cut, sizeof(cut)), n);
		assert_int_equal(strlen(cut), sizeof(cut) - 1);
		assert_memory_equal(cut, full, sizeof(cut) - 1);
	}
	/* Rolled back to the last commit: block 1's mapping is gone. */
	assert_int_equal(thinp_thin_read(a, &b, 1, TEST_BS), 0);
	assert_int_equal(b, 0);
	/* Reads and in-place writes go on; changes are refused. */
	assert_int_equal(thinp_thin_write(a, "4", 1, 1), 0);
	assert_int_equal(thinp_thin_read(a, &b, 1, 0), 0);
	assert_int_equal(b, '1');
	assert_int_equal(thinp_thin_write(a, "5", 1, 3 * TEST_BS), -EROFS);
	assert_int_equal(thinp_pool_create_thin(t.pool, 5), -EROFS);
	/* Growing the metadata brings the pool back. */
	f->max_mappings = UINT64_MAX;
	assert_int_equal(thinp_pool_resize_metadata(t.pool, 2048), 0);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_RW);
	assert_int_equal(ps.metadata_total, 2048);
	assert_int_equal(thinp_thin_write(a, "5", 1, 3 * TEST_BS), 0);
	thinp_thin_close(a);
	tpool_check_md(&t);
	tpool_teardown(&t);
}

static void test_out_of_metadata_space(void **state)
{
	out_of_metadata_space(false);
}

static void test_out_of_metadata_space_in_allocation(void **state)
{
	out_of_metadata_space(true);
}

static void test_commit_failure_is_sticky(void **state)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	thinp_thin *a;
	uint8_t b;

	tpool_setup(&t, 16, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "1", 1, 0), 0);
	md_store_faults(t.store)->fail_commit_at = 1;
	assert_int_equal(thinp_thin_flush(a), -EIO);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_FAIL);
	assert_int_equal(ps.needs_check, 1);
	assert_int_equal(thinp_thin_write(a, "2", 1, 0), -EROFS);
	assert_int_equal(thinp_thin_read(a, &b, 1, 0), -EIO);
	assert_int_equal(thinp_thin_flush(a), -EROFS);
	assert_int_equal(thinp_pool_commit(t.pool), -EROFS);
	assert_int_equal(thinp_pool_create_thin(t.pool, 3), -EROFS);
	thinp_thin_close(a);
	/* Close does not commit a failed pool. */
	assert_int_equal(thinp_pool_close(t.pool), 0);
	t.pool = NULL;
	/* A pool reopened with needs_check set is read-only. */
	tpool_open(&t);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_READ_ONLY);
	tpool_teardown(&t);
}

static void test_data_flush_failure(void **state)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	thinp_thin *a;
	uint64_t commits;

	tpool_setup(&t, 16, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "1", 1, 0), 0);
	commits = md_store_commits(t.store);
	crashdev_fail_flushes(t.dev, true);
	assert_int_equal(thinp_thin_flush(a), -EIO);
	/* No metadata commit after a failed data flush. */
	assert_int_equal(md_store_commits(t.store), commits);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.mode, THINP_POOL_MODE_FAIL);
	thinp_thin_close(a);
	crashdev_fail_flushes(t.dev, false);
	tpool_teardown(&t);
}

static void test_messages_and_status(void **state)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	struct tpool t;
	uint64_t commits;

	tpool_setup(&t, 16, NULL);
	commits = md_store_commits(t.store);
	assert_int_equal(thinp_pool_set_transaction_id(t.pool, 1, 2), -EINVAL);
	assert_int_equal(thinp_pool_set_transaction_id(t.pool, 0, 7), 0);
	assert_true(md_store_commits(t.store) > commits);
	assert_int_equal(thinp_pool_reserve_metadata_snap(t.pool), 0);
	assert_int_equal(thinp_pool_reserve_metadata_snap(t.pool), -EBUSY);
	assert_int_equal(thinp_pool_create_thin(t.pool, 1u << 24), -EINVAL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 4), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 5, 4), 0);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.transaction_id, 7);
	assert_int_not_equal(ps.held_root, 0);
	assert_int_equal(ps.time, 1);
	assert_int_equal(ps.data_total, 16);
	assert_int_equal(ps.data_block_size, TEST_BS);
	assert_int_equal(ps.metadata_total, 1024);
	assert_true(ps.metadata_used >= 102); /* includes the reserve */
	assert_int_equal(thinp_pool_release_metadata_snap(t.pool), 0);
	assert_int_equal(thinp_pool_release_metadata_snap(t.pool), -EINVAL);
	assert_true(thinp_pool_errmsg(t.pool, NULL, 0) > 0);
	tpool_close(&t);
	/* Persisted. */
	tpool_open(&t);
	assert_int_equal(thinp_pool_get_status(t.pool, &ps), 0);
	assert_int_equal(ps.transaction_id, 7);
	tpool_teardown(&t);
}

static void test_read_only_pool(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct tpool t;
	thinp_thin *a;
	uint8_t b;

	tpool_setup(&t, 16, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	assert_int_equal(thinp_pool_create_snap(t.pool, 1, 0), 0);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(a, "1", 1, 0), 0);
	thinp_thin_close(a);
	tpool_close(&t);
	o.features = THINP_POOL_READ_ONLY;
	t.opts = o;
	tpool_open(&t);
	a = topen(t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_read(a, &b, 1, 0), 0);
	assert_int_equal(b, '1');
	assert_int_equal(thinp_thin_write(a, "2", 1, 0), 0); /* mapped, unshared */
	assert_int_equal(thinp_thin_write(a, "2", 1, TEST_BS), -EROFS);
	assert_int_equal(thinp_thin_discard(a, TEST_BS, 0), -EROFS);
	assert_int_equal(thinp_thin_flush(a), 0);
	assert_int_equal(thinp_pool_create_thin(t.pool, 9), -EROFS);
	thinp_thin_close(a);
	tpool_teardown(&t);
}

static void test_bad_options(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_thin_options to = THINP_THIN_OPTIONS_INIT;
	struct tpool t;
	thinp_thin *thin = (thinp_thin *)1;

	tpool_setup(&t, 4, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	assert_int_equal(thinp_thin_open(&thin, t.pool, 0, &to), -EINVAL); /* size 0 */
	assert_null(thin);
	to.size = 4096;
	assert_int_equal(thinp_thin_open(&thin, t.pool, 1, &to), -ENODATA);
	to.version = 99;
	assert_int_equal(thinp_thin_open(&thin, t.pool, 0, &to), -EINVAL);
	to.version = THINP_THIN_OPTIONS_VERSION;
	to.flags = THINP_THIN_RDONLY;
	assert_int_equal(thinp_thin_open(&thin, t.pool, 0, &to), 0);
	assert_int_equal(thinp_thin_write(thin, "x", 1, 0), -EROFS);
	/* Close refuses while a volume is open. */
	assert_int_equal(thinp_pool_close(t.pool), -EBUSY);
	thinp_thin_close(thin);
	tpool_teardown(&t);
	(void)o;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_provision_and_zeroing),
		cmocka_unit_test(test_skip_block_zeroing),
		cmocka_unit_test(test_write_zeroes),
		cmocka_unit_test(test_snapshot_breaks_sharing),
		cmocka_unit_test(test_snapshot_chain),
		cmocka_unit_test(test_external_origin),
		cmocka_unit_test(test_discard_rounding_and_passdown),
		cmocka_unit_test(test_discard_features),
		cmocka_unit_test(test_error_if_no_space),
		cmocka_unit_test(test_wait_for_resize_and_low_water),
		cmocka_unit_test(test_no_space_timeout),
		cmocka_unit_test(test_out_of_metadata_space),
		cmocka_unit_test(test_out_of_metadata_space_in_allocation),
		cmocka_unit_test(test_commit_failure_is_sticky),
		cmocka_unit_test(test_data_flush_failure),
		cmocka_unit_test(test_messages_and_status),
		cmocka_unit_test(test_read_only_pool),
		cmocka_unit_test(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
