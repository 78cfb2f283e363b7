/*
 * Deltas on an open pool (thinp_pool_delta*): a volume written after its
 * snapshot, read while a thread keeps writing the origin (each batch is
 * taken under the pool's metadata lock; the snapshot is not written, so the
 * delta is exact), over the held snapshot while the live pool moves on, and
 * -EOPNOTSUPP over the metadata model, which has no tree to walk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "pool/pool_test.h"
#include <libthinp/delta.h>

#define SIZE (256ull * TEST_BS)

static void write_block(thinp_thin *t, uint64_t block, int byte)
{
	char buf[TEST_BS];

	memset(buf, byte, sizeof(buf));
	assert_int_equal(thinp_thin_write(t, buf, TEST_BS, block * TEST_BS), 0);
}

struct collect {
	thinp_delta_run r[64];
	size_t n;
};

static int collect(const thinp_delta_run *run, void *ctx)
{
	struct collect *c = ctx;

	if (c->n == 64)
		return -E2BIG;
	c->r[c->n++] = *run;
	return 0;
}

static thinp_delta_options changes_only(uint64_t ls, uint64_t rs)
{
	thinp_delta_options o = THINP_DELTA_OPTIONS_INIT;

	o.flags = THINP_DELTA_CHANGES_ONLY;
	o.left_source = ls;
	o.right_source = rs;
	return o;
}

/* Origin 1 written at blocks 0..9, snapshot 2, then 1 rewritten at 3 and 4
 * and written at 20: changes-only delta 2 -> 1 is DIFFERENT 3+2, RIGHT_ONLY 20. */
static void setup(struct tpool *t, thinp_thin **origin)
{
	uint64_t b;

	tpool_setup_real(t, 1024, 8u << 20, NULL);
	assert_int_equal(thinp_pool_create_thin(t->pool, 1), 0);
	*origin = topen(t->pool, 1, SIZE, NULL);
	for (b = 0; b < 10; b++)
		write_block(*origin, b, 'a');
	assert_int_equal(thinp_pool_create_snap(t->pool, 2, 1), 0);
	write_block(*origin, 3, 'b');
	write_block(*origin, 4, 'b');
	write_block(*origin, 20, 'c');
}

static void assert_expected(const struct collect *c)
{
	assert_int_equal(c->n, 2);
	assert_int_equal(c->r[0].kind, THINP_DELTA_DIFFERENT);
	assert_int_equal(c->r[0].virt_begin, 3);
	assert_int_equal(c->r[0].length, 2);
	assert_int_equal(c->r[1].kind, THINP_DELTA_RIGHT_ONLY);
	assert_int_equal(c->r[1].virt_begin, 20);
	assert_int_equal(c->r[1].length, 1);
}

static void test_pool_delta_live(void **state)
{
	thinp_delta_options o = changes_only(THINP_DELTA_LIVE, THINP_DELTA_LIVE);
	struct collect c = { .n = 0 };
	struct tpool t;
	thinp_thin *origin;

	(void)state;
	setup(&t, &origin);
	assert_int_equal(thinp_pool_delta(t.pool, 2, 1, &o, collect, &c), 0);
	assert_expected(&c);
	/* no change between a device and itself; every block SAME without the flag */
	c.n = 0;
	assert_int_equal(thinp_pool_delta(t.pool, 1, 1, &o, collect, &c), 0);
	assert_int_equal(c.n, 0);
	c.n = 0;
	assert_int_equal(thinp_pool_delta(t.pool, 2, 2, NULL, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.r[0].kind, THINP_DELTA_SAME);
	assert_int_equal(c.r[0].length, 10);
	assert_int_equal(thinp_pool_delta(t.pool, 2, 7, &o, collect, &c), -ENODATA);
	assert_non_null(strstr(thinp_pool_errmsg(t.pool), "device 7"));
	thinp_thin_close(origin);
	tpool_teardown(&t);
}

/* Reserve the held snapshot, then keep writing: a delta over the held
 * snapshot still gives the state at the reservation. */
static void test_pool_delta_held(void **state)
{
	thinp_delta_options o = changes_only(THINP_DELTA_HELD, THINP_DELTA_HELD);
	struct collect c = { .n = 0 };
	struct tpool t;
	thinp_thin *origin;
	uint64_t b;

	(void)state;
	setup(&t, &origin);
	assert_int_equal(thinp_pool_reserve_metadata_snap(t.pool), 0);
	for (b = 30; b < 60; b++)
		write_block(origin, b, 'd');
	assert_int_equal(thinp_thin_flush(origin), 0);
	assert_int_equal(thinp_pool_delta(t.pool, 2, 1, &o, collect, &c), 0);
	assert_expected(&c);
	/* live right side: the later writes show */
	c.n = 0;
	o.right_source = THINP_DELTA_LIVE;
	assert_int_equal(thinp_pool_delta(t.pool, 2, 1, &o, collect, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.r[2].virt_begin, 30);
	assert_int_equal(c.r[2].length, 30);
	assert_int_equal(thinp_pool_release_metadata_snap(t.pool), 0);
	thinp_thin_close(origin);
	tpool_teardown(&t);
}

struct writer {
	thinp_thin *t;
	atomic_int stop;
};

static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	uint64_t b = 100;

	while (!atomic_load(&w->stop)) {
		write_block(w->t, b, 'e');
		b = b == 200 ? 100 : b + 1;
	}
	return NULL;
}

/* A thread writes the origin while the delta between the snapshot and a
 * second snapshot (taken before the writer starts) is read one run per
 * batch: both are unwritten, so the delta is exact. */
static void test_pool_delta_while_writing(void **state)
{
	struct tpool t;
	struct writer w = { .stop = 0 };
	thinp_delta_run run;
	thinp_delta *d;
	pthread_t th;
	size_t n, runs = 0;
	int i;

	(void)state;
	setup(&t, &w.t);
	assert_int_equal(thinp_pool_create_snap(t.pool, 3, 1), 0);
	assert_int_equal(pthread_create(&th, NULL, writer_fn, &w), 0);
	for (i = 0; i < 50; i++) {
		thinp_delta_options o = changes_only(THINP_DELTA_LIVE, THINP_DELTA_LIVE);
		struct collect c = { .n = 0 };

		assert_int_equal(thinp_pool_delta_open(&d, t.pool, 2, 3, &o), 0);
		do {
			assert_int_equal(thinp_delta_next(d, &run, 1, &n), 0);
			if (n)
				c.r[c.n++] = run;
			runs += n;
		} while (n);
		thinp_delta_close(d);
		assert_expected(&c);
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(runs, 100);
	thinp_thin_close(w.t);
	tpool_teardown(&t);
}

static void test_pool_delta_model_unsupported(void **state)
{
	struct tpool t;
	thinp_delta *d;

	(void)state;
	tpool_setup(&t, 64, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, 1), 0);
	assert_int_equal(thinp_pool_delta_open(&d, t.pool, 1, 1, NULL), -EOPNOTSUPP);
	tpool_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_delta_live),
		cmocka_unit_test(test_pool_delta_held),
		cmocka_unit_test(test_pool_delta_while_writing),
		cmocka_unit_test(test_pool_delta_model_unsupported),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
