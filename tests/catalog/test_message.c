/*
 * thinp_catalog_message: the grammar (every word count, bad numbers and
 * sizes), the catalog kept in step with the pool (a random model test over
 * create_thin/create_snap/delete, checked against the pool's devices and the
 * committed catalog reopened), refusals that leave both alone (snapshots of
 * anchors and partial devices, deleting an open device).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include <libthinp/thinp.h>

#define MAX_ID 8u

static uint64_t suite_seed;

struct env {
	thinp_io *meta, *data, *cio;
	thinp_pool *pool;
	thinp_catalog *cat;
};

static void env_open(struct env *v)
{
	assert_int_equal(thinp_io_open_memory(&v->meta, 4u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&v->data, 16u << 20, 0), 0);
	assert_int_equal(thinp_io_open_memory(&v->cio, 0, 0), 0);
	assert_int_equal(thinp_pool_format(&v->pool, v->meta, v->data, NULL), 0);
	assert_int_equal(thinp_catalog_open(&v->cat, v->cio, 0), 0);
}

static void env_close(struct env *v)
{
	thinp_catalog_close(v->cat);
	assert_int_equal(thinp_pool_close(v->pool), 0);
	thinp_io_close(v->cio);
	thinp_io_close(v->data);
	thinp_io_close(v->meta);
}

static int msg(struct env *v, const char *text, uint64_t default_size)
{
	return thinp_catalog_message(v->cat, v->pool, text, default_size);
}

static int has_device(struct env *v, uint64_t id)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	int r = thinp_pool_get_thin_status(v->pool, id, &ts);

	assert_true(r == 0 || r == -ENODATA);
	return r == 0;
}

static uint64_t entry_size(thinp_catalog *cat, uint64_t id)
{
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;

	return thinp_catalog_get(cat, id, &e) ? 0 : e.size;
}

static void test_grammar(void **state)
{
	static const struct {
		const char *text;
		int want;
	} bad[] = {
		{ "", -EINVAL },
		{ "frobnicate 1", -EINVAL },
		{ "create_thin", -EINVAL },
		{ "create_thin x 1m", -EINVAL },
		{ "create_thin 1 1000", -EINVAL },   /* not a multiple of 512 */
		{ "create_thin 1 0", -EINVAL },
		{ "create_thin 1 1q", -EINVAL },
		{ "create_thin 1 1m 2", -EINVAL },
		{ "create_thin 1", -EINVAL },        /* no size, no default */
		{ "create_thin 16777216 1m", -EINVAL },
		{ "create_snap 2", -EINVAL },
		{ "create_snap 2 9", -ENODATA },     /* no entry, no default */
		{ "delete", -EINVAL },
		{ "delete 1 2", -EINVAL },
		{ "delete 5", -ENODATA },
		{ "set_transaction_id 1", -EINVAL },
		{ "reserve_metadata_snap now", -EINVAL },
	};
	struct env v;

	env_open(&v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = msg(&v, bad[i].text, 0);

		if (r != bad[i].want)
			fail_msg("'%s': %d, expected %d", bad[i].text, r, bad[i].want);
	}
	for (uint64_t id = 0; id < 10; id++)
		assert_false(has_device(&v, id));
	assert_int_equal(thinp_catalog_count(v.cat), 0);
	assert_int_equal(thinp_catalog_message(NULL, v.pool, "delete 1", 0), -EINVAL);
	assert_int_equal(thinp_catalog_message(v.cat, NULL, "delete 1", 0), -EINVAL);
	assert_int_equal(thinp_catalog_message(v.cat, v.pool, NULL, 0), -EINVAL);

	assert_int_equal(msg(&v, "  Create_Thin\t1  2M\n", 0), 0);
	assert_int_equal(entry_size(v.cat, 1), 2u << 20);
	assert_int_equal(msg(&v, "create_thin 2", 4096), 0);
	assert_int_equal(entry_size(v.cat, 2), 4096);
	assert_int_equal(msg(&v, "create_thin 2 1m", 0), -EEXIST);
	assert_int_equal(entry_size(v.cat, 2), 4096);
	assert_int_equal(msg(&v, "create_snap 3 9", 8192), -ENODATA); /* no device 9 */
	assert_int_equal(msg(&v, "set_transaction_id 0 7", 0), 0);
	assert_int_equal(msg(&v, "set_transaction_id 0 8", 0), -EINVAL);
	assert_int_equal(msg(&v, "reserve_metadata_snap", 0), 0);
	assert_int_equal(msg(&v, "release_metadata_snap", 0), 0);
	env_close(&v);
}

/* Anchors and partial receives are not snapshotted; an open device is not
 * deleted, and its entry stays, committed. */
static void test_refusals(void **state)
{
	thinp_catalog_entry e = THINP_CATALOG_ENTRY_INIT;
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_catalog *again;
	thinp_thin *t;
	struct env v;

	env_open(&v);
	assert_int_equal(msg(&v, "create_thin 1 1m", 0), 0);
	assert_int_equal(msg(&v, "create_thin 2 1m", 0), 0);
	for (uint32_t flag = THINP_CATALOG_PARTIAL; flag <= THINP_CATALOG_ANCHOR; flag <<= 1) {
		assert_int_equal(thinp_catalog_get(v.cat, 2, &e), 0);
		e.flags = flag;
		assert_int_equal(thinp_catalog_set(v.cat, &e), 0);
		assert_int_equal(msg(&v, "create_snap 3 2", 1u << 20), -EPERM);
		assert_false(has_device(&v, 3));
	}
	o.size = 1u << 20;
	assert_int_equal(thinp_thin_open(&t, v.pool, 1, &o), 0);
	assert_int_equal(msg(&v, "delete 1", 0), -EBUSY);
	thinp_thin_close(t);
	assert_true(has_device(&v, 1));
	assert_int_equal(thinp_catalog_open(&again, v.cio, 0), 0);
	assert_int_equal(entry_size(again, 1), 1u << 20);
	thinp_catalog_close(again);
	assert_int_equal(msg(&v, "delete 1", 0), 0);
	assert_false(has_device(&v, 1));
	assert_int_equal(entry_size(v.cat, 1), 0);
	env_close(&v);
}

/* Random messages; after each, the pool's devices, the catalog in memory and
 * the committed catalog (reopened) are what the model says. */
static void test_model_random(void **state)
{
	uint64_t size[MAX_ID] = { 0 }; /* 0: no device */
	unsigned ops = test_ops(400);
	struct test_rng rng;
	struct env v;

	test_rng_init(&rng, suite_seed);
	env_open(&v);
	for (unsigned n = 0; n < ops; n++) {
		uint64_t a = test_rng_below(&rng, MAX_ID), b = test_rng_below(&rng, MAX_ID);
		uint64_t sz = (test_rng_below(&rng, 64) + 1) * 512, want_size = 0;
		char text[64];
		int want = 0, r;
		thinp_catalog *again;

		switch (test_rng_below(&rng, 3)) {
		case 0:
			snprintf(text, sizeof(text), "create_thin %llu %llu", (unsigned long long)a,
				 (unsigned long long)sz);
			want = size[a] ? -EEXIST : 0;
			want_size = sz;
			break;
		case 1:
			snprintf(text, sizeof(text), "create_snap %llu %llu", (unsigned long long)a,
				 (unsigned long long)b);
			want = !size[b] ? -ENODATA : size[a] ? -EEXIST : 0;
			want_size = size[b];
			break;
		default:
			snprintf(text, sizeof(text), "delete %llu", (unsigned long long)a);
			want = size[a] ? 0 : -ENODATA;
			break;
		}
		r = msg(&v, text, 0);
		if (r != want)
			fail_msg("op %u '%s': %d, expected %d", n, text, r, want);
		if (!r)
			size[a] = want_size;
		assert_int_equal(thinp_catalog_open(&again, v.cio, 0), 0);
		for (uint64_t id = 0; id < MAX_ID; id++) {
			assert_int_equal(has_device(&v, id), size[id] != 0);
			assert_int_equal(entry_size(v.cat, id), size[id]);
			assert_int_equal(entry_size(again, id), size[id]);
		}
		thinp_catalog_close(again);
	}
	env_close(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_model_random),
	};

	suite_seed = test_seed("test_message");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
