/*
 * The mapping cursor (lib/thin/cursor.h) in the modes the public delta does
 * not use: one device's runs with times (thin_dump's rule: they must equal
 * thinp_meta_walk_mappings' runs, in any batch size), and SHARED ranges (the
 * nodes two devices share, unread: every mapping inside one is the same on
 * both sides, and every block outside them and the changes is the same too).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "thin/helpers.h"
#include "thin/cursor.h"

#define MIB (1024ull * 1024)
#define NV 30000

struct walked {
	thinp_meta_run *r;
	size_t n, cap;
};

static int on_run(const thinp_meta_run *run, void *ctx)
{
	struct walked *w = ctx;

	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->r = realloc(w->r, w->cap * sizeof(*w->r));
		assert_non_null(w->r);
	}
	w->r[w->n++] = *run;
	return 0;
}

/* A device with runs of blocks, holes, times 0..3 and scattered data. */
static void build(thinp_meta *meta, struct test_rng *rng)
{
	uint64_t v = 0, b, t;
	unsigned i;

	assert_int_equal(thinp_meta_create_thin(meta, 1), 0);
	for (t = 0; t < 4; t++) {
		for (i = 0; i < NV / 8; i++) {
			v = test_rng_below(rng, 8) ? (v + 1) % NV : test_rng_below(rng, NV);
			assert_int_equal(thinp_meta_alloc_data_block(meta, &b), 0);
			assert_int_equal(thinp_meta_insert(meta, 1, v, b), 0);
		}
		assert_int_equal(thinp_meta_create_snap(meta, 10 + t, 1), 0); /* time moves */
	}
}

static void test_one_device_runs(void **state)
{
	struct test_rng rng;
	thinp_io *io;
	thinp_meta *meta;
	struct walked w = { 0 };
	struct thin_cursor_dev dev = { THINP_META_LIVE, 1 };
	struct thin_cursor *c;
	struct thin_run runs[17];
	size_t i, n, k = 0, batch;

	(void)state;
	test_rng_init(&rng, test_seed("test_cursor runs"));
	th_format(&io, &meta, 64 * MIB, 1u << 20);
	build(meta, &rng);
	assert_int_equal(thinp_meta_walk_mappings(meta, THINP_META_LIVE, 1, on_run, &w), 0);
	for (batch = 1; batch <= 17; batch += 8) {
		k = 0;
		assert_int_equal(thin_cursor_open(&c, meta, &dev, NULL, 0, UINT64_MAX,
						  THIN_CURSOR_TIME), 0);
		do {
			assert_int_equal(thin_cursor_next(c, runs, batch, &n), 0);
			for (i = 0; i < n; i++, k++) {
				assert_true(k < w.n);
				assert_int_equal(runs[i].kind, THIN_RUN_LEFT_ONLY);
				assert_int_equal(runs[i].begin, w.r[k].virt_begin);
				assert_int_equal(runs[i].length, w.r[k].length);
				assert_int_equal(runs[i].left_data, w.r[k].data_begin);
				assert_int_equal(runs[i].left_time, w.r[k].time);
			}
		} while (n);
		assert_int_equal(thin_cursor_position(c), UINT64_MAX);
		thin_cursor_close(c);
		assert_int_equal(k, w.n);
	}
	free(w.r);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

static bool mapped(thinp_meta *meta, uint64_t dev, uint64_t v, uint64_t *data)
{
	uint32_t t;
	int r = thinp_meta_lookup(meta, dev, v, data, &t, NULL);

	assert_true(r == 0 || r == -ENODATA);
	return r == 0;
}

/* Devices 1 and 2 map v alike: both unmapped, or to the same data block. */
static bool alike(thinp_meta *meta, uint64_t v)
{
	uint64_t da, db;
	bool a = mapped(meta, 1, v, &da), b = mapped(meta, 2, v, &db);

	return a == b && (!a || da == db);
}

/* Device 2 = snapshot of 1 with a few changed blocks: every block inside a
 * SHARED range or outside every run is mapped alike on both sides, every
 * block of a change run differs, and most of the device is SHARED. */
static void test_shared_ranges(void **state)
{
	struct test_rng rng;
	thinp_io *io;
	thinp_meta *meta;
	struct thin_cursor_dev l = { THINP_META_LIVE, 1 }, r = { THINP_META_LIVE, 2 };
	struct thin_cursor *c;
	struct thin_run runs[8];
	uint64_t v, b, covered = 0, shared = 0, changes[5] = { 7, 4000, 4001, 17000, 29999 };
	size_t i, n;

	(void)state;
	test_rng_init(&rng, test_seed("test_cursor shared"));
	th_format(&io, &meta, 64 * MIB, 1u << 20);
	build(meta, &rng);
	assert_int_equal(thinp_meta_commit(meta), 0);
	assert_int_equal(thinp_meta_create_snap(meta, 2, 1), 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(thinp_meta_alloc_data_block(meta, &b), 0);
		assert_int_equal(thinp_meta_insert(meta, 2, changes[i], b), 0);
	}
	assert_int_equal(thin_cursor_open(&c, meta, &l, &r, 0, NV, THIN_CURSOR_SHARED), 0);
	do {
		assert_int_equal(thin_cursor_next(c, runs, 8, &n), 0);
		for (i = 0; i < n; i++) {
			assert_true(runs[i].begin >= covered);
			for (v = covered; v < runs[i].begin; v++)
				assert_true(alike(meta, v)); /* no run: no change */
			for (v = runs[i].begin; v < runs[i].begin + runs[i].length; v++)
				assert_true(alike(meta, v) == (runs[i].kind == THIN_RUN_SHARED));
			shared += runs[i].kind == THIN_RUN_SHARED ? runs[i].length : 0;
			covered = runs[i].begin + runs[i].length;
		}
	} while (n);
	thin_cursor_close(c);
	for (v = covered; v < NV; v++)
		assert_true(alike(meta, v));
	/* most of the device is shared and was skipped */
	assert_true(shared > NV / 2);
	thinp_meta_close(meta);
	thinp_io_close(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_device_runs),
		cmocka_unit_test(test_shared_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
