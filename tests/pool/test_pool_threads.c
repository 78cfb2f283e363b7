/*
 * Many threads on one pool: each worker owns a volume and a slice of a
 * shared volume and checks every read against its own model, while another
 * thread snapshots the volumes under their feet (so writes break sharing
 * concurrently), deletes the snapshots, and flushes; pairs of threads race
 * to provision the same blocks. Meant to run under ThreadSanitizer and ASan
 * as well (configure --enable-tsan / --enable-sanitizers).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/testutil.h"
#include "pool/pool_test.h"

#define NWORKERS 4
#define OWN_BLOCKS 16
#define SHARED_ID 100
#define RACE_ID 200
#define SLICE_BLOCKS 4
#define RACE_BLOCKS 16

struct worker {
	pthread_t th;
	thinp_pool *pool;
	int idx;
	uint64_t seed;
	unsigned ops;
	thinp_thin *own, *shared;
	uint8_t *own_model, *slice_model, *buf;
	atomic_int *stop;
};

static void rand_range(struct test_rng *r, uint64_t size, uint64_t *off, uint64_t *len)
{
	*off = test_rng_below(r, size);
	*len = 1 + test_rng_below(r, 2 * TEST_BS);
	if (*off + *len > size)
		*len = size - *off;
}

/* One random operation on a region [base, base + size) of a volume. */
static void region_op(struct test_rng *r, thinp_thin *thin, uint8_t *model, uint64_t base,
		      uint64_t size, uint8_t *buf)
{
	uint64_t off, len;
	unsigned k = (unsigned)test_rng_below(r, 10);

	rand_range(r, size, &off, &len);
	if (k < 5) {
		uint8_t v = (uint8_t)test_rng_next(r);

		memset(buf, v, len);
		assert_int_equal(thinp_thin_write(thin, buf, len, base + off), 0);
		memset(model + off, v, len);
	} else if (k < 9) {
		assert_int_equal(thinp_thin_read(thin, buf, len, base + off), 0);
		assert_memory_equal(buf, model + off, len);
	} else {
		uint64_t b0 = (base + off + TEST_BS - 1) / TEST_BS, b1 = (base + off + len) / TEST_BS;

		assert_int_equal(thinp_thin_discard(thin, len, base + off), 0);
		for (uint64_t b = b0; b < b1; b++)
			memset(model + b * TEST_BS - base, 0, TEST_BS);
	}
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct test_rng r;
	uint64_t slice = (uint64_t)w->idx * SLICE_BLOCKS * TEST_BS;

	test_rng_init(&r, w->seed);
	for (unsigned i = 0; i < w->ops; i++) {
		if (test_rng_below(&r, 2))
			region_op(&r, w->own, w->own_model, 0, OWN_BLOCKS * (uint64_t)TEST_BS, w->buf);
		else
			region_op(&r, w->shared, w->slice_model, slice,
				  SLICE_BLOCKS * (uint64_t)TEST_BS, w->buf);
		if (test_rng_below(&r, 50) == 0)
			assert_int_equal(thinp_thin_flush(w->own), 0);
	}
	return NULL;
}

struct snapper {
	thinp_pool *pool;
	atomic_int *stop;
	unsigned snaps;
};

static void *snapper_main(void *p)
{
	struct snapper *s = p;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	uint64_t next = 1000;
	uint8_t b;

	while (!atomic_load(s->stop)) {
		uint64_t origin = s->snaps % (NWORKERS + 1);
		uint64_t id = next++;
		thinp_thin *t;

		if (origin == NWORKERS)
			origin = SHARED_ID;
		assert_int_equal(thinp_pool_create_snap(s->pool, id, origin), 0);
		t = topen(s->pool, id, OWN_BLOCKS * (uint64_t)TEST_BS, NULL);
		assert_int_equal(thinp_thin_read(t, &b, 1, 0), 0);
		assert_int_equal(thinp_thin_write(t, "s", 1, TEST_BS), 0);
		thinp_thin_close(t);
		assert_int_equal(thinp_pool_get_status(s->pool, &ps), 0);
		assert_int_equal(thinp_pool_delete_thin(s->pool, id), 0);
		s->snaps++;
	}
	return NULL;
}

struct racer {
	pthread_t th;
	thinp_thin *thin;
	uint8_t v;
	uint8_t *buf;
};

static void *racer_main(void *p)
{
	struct racer *r = p;

	memset(r->buf, r->v, TEST_BS);
	for (uint64_t b = 0; b < RACE_BLOCKS; b++)
		assert_int_equal(thinp_thin_write(r->thin, r->buf, TEST_BS, b * TEST_BS), 0);
	return NULL;
}

static void check_race(thinp_pool *pool)
{
	struct racer rc[2];
	thinp_thin *thin;
	uint8_t *buf = malloc(TEST_BS);
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;

	assert_int_equal(thinp_pool_create_thin(pool, RACE_ID), 0);
	for (int i = 0; i < 2; i++) {
		rc[i].thin = topen(pool, RACE_ID, RACE_BLOCKS * (uint64_t)TEST_BS, NULL);
		rc[i].v = (uint8_t)(0xA0 + i);
		rc[i].buf = malloc(TEST_BS);
		assert_int_equal(pthread_create(&rc[i].th, NULL, racer_main, &rc[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(rc[i].th, NULL);
	/* Each block holds one writer's data, whole, and is mapped once. */
	for (uint64_t b = 0; b < RACE_BLOCKS; b++) {
		assert_int_equal(thinp_thin_read(rc[0].thin, buf, TEST_BS, b * TEST_BS), 0);
		assert_true(buf[0] == 0xA0 || buf[0] == 0xA1);
		for (uint64_t i = 1; i < TEST_BS; i++)
			assert_int_equal(buf[i], buf[0]);
	}
	assert_int_equal(thinp_pool_get_thin_status(pool, RACE_ID, &ts), 0);
	assert_int_equal(ts.mapped_blocks, RACE_BLOCKS);
	for (int i = 0; i < 2; i++) {
		thinp_thin_close(rc[i].thin);
		free(rc[i].buf);
	}
	(void)thin;
	free(buf);
}

static void test_threads(void **state)
{
	struct worker w[NWORKERS];
	struct snapper s;
	atomic_int stop = 0;
	pthread_t sth;
	struct tpool t;
	uint64_t seed = test_seed("pool threads");

	tpool_setup(&t, 512, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, SHARED_ID), 0);
	for (int i = 0; i < NWORKERS; i++) {
		assert_int_equal(thinp_pool_create_thin(t.pool, i), 0);
		w[i] = (struct worker){ .pool = t.pool, .idx = i, .seed = seed + i,
					.ops = 1500 * test_scale(), .stop = &stop };
		w[i].own = topen(t.pool, i, OWN_BLOCKS * (uint64_t)TEST_BS, NULL);
		w[i].shared = topen(t.pool, SHARED_ID,
				    NWORKERS * SLICE_BLOCKS * (uint64_t)TEST_BS, NULL);
		w[i].own_model = calloc(1, OWN_BLOCKS * (uint64_t)TEST_BS);
		w[i].slice_model = calloc(1, SLICE_BLOCKS * (uint64_t)TEST_BS);
		w[i].buf = malloc(2 * TEST_BS);
	}
	s = (struct snapper){ .pool = t.pool, .stop = &stop };
	assert_int_equal(pthread_create(&sth, NULL, snapper_main, &s), 0);
	for (int i = 0; i < NWORKERS; i++)
		assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	check_race(t.pool);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(w[i].th, NULL);
	atomic_store(&stop, 1);
	pthread_join(sth, NULL);
	print_message("%u snapshots taken and deleted during the run\n", s.snaps);

	/* Everything still reads back after a close and reopen. */
	for (int i = 0; i < NWORKERS; i++) {
		thinp_thin_close(w[i].own);
		thinp_thin_close(w[i].shared);
	}
	tpool_close(&t);
	tpool_open(&t);
	tpool_check_md(&t);
	for (int i = 0; i < NWORKERS; i++) {
		thinp_thin *own = topen(t.pool, i, OWN_BLOCKS * (uint64_t)TEST_BS, NULL);
		uint8_t *buf = malloc(OWN_BLOCKS * (uint64_t)TEST_BS);

		assert_int_equal(thinp_thin_read(own, buf, OWN_BLOCKS * (uint64_t)TEST_BS, 0), 0);
		assert_memory_equal(buf, w[i].own_model, OWN_BLOCKS * (uint64_t)TEST_BS);
		thinp_thin_close(own);
		free(buf);
		free(w[i].own_model);
		free(w[i].slice_model);
		free(w[i].buf);
	}
	tpool_teardown(&t);
}

/* Flushes from many threads share commits. */
struct flusher {
	pthread_t th;
	thinp_thin *thin;
	int n;
};

static void *flusher_main(void *p)
{
	struct flusher *f = p;

	for (int i = 0; i < f->n; i++) {
		assert_int_equal(thinp_thin_write(f->thin, &i, sizeof(i), (uint64_t)i * TEST_BS), 0);
		assert_int_equal(thinp_thin_flush(f->thin), 0);
	}
	return NULL;
}

static void test_concurrent_flushes(void **state)
{
	enum { NF = 4, N = 40 };
	struct flusher f[NF];
	struct tpool t;
	uint64_t commits;

	tpool_setup(&t, NF * N + 8, NULL);
	for (int i = 0; i < NF; i++) {
		assert_int_equal(thinp_pool_create_thin(t.pool, i), 0);
		f[i].thin = topen(t.pool, i, N * (uint64_t)TEST_BS, NULL);
		f[i].n = N;
	}
	commits = md_store_commits(t.store);
	for (int i = 0; i < NF; i++)
		assert_int_equal(pthread_create(&f[i].th, NULL, flusher_main, &f[i]), 0);
	for (int i = 0; i < NF; i++)
		pthread_join(f[i].th, NULL);
	commits = md_store_commits(t.store) - commits;
	print_message("%d flushes, %llu commits\n", NF * N, (unsigned long long)commits);
	assert_true(commits <= NF * N);
	for (int i = 0; i < NF; i++)
		thinp_thin_close(f[i].thin);
	/* All durable: a power loss now loses nothing. */
	tpool_crash(&t);
	tpool_open(&t);
	for (int i = 0; i < NF; i++) {
		thinp_thin *thin = topen(t.pool, i, N * (uint64_t)TEST_BS, NULL);

		for (int k = 0; k < N; k++) {
			int v;

			assert_int_equal(thinp_thin_read(thin, &v, sizeof(v), (uint64_t)k * TEST_BS), 0);
			assert_int_equal(v, k);
		}
		thinp_thin_close(thin);
	}
	tpool_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_concurrent_flushes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
