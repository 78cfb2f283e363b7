/*
 * Many threads on one pool, over the metadata model and over the real
 * dm-thin metadata; meant to run under ThreadSanitizer too (configure
 * --enable-tsan; scripts/test-all.sh does).
 *
 * The stress test: each worker owns a volume and a slice of one shared
 * volume and runs random writes, write-zeroes, reads, discards and flushes
 * on both, checking every read against its own model. It also snapshots its
 * volume and the shared one while the others write: no one else writes its
 * regions, so the snapshot must hold them exactly as its model does. A
 * background thread snapshots and deletes volumes under everyone's feet (so
 * writes break sharing concurrently), and two threads race to provision the
 * same blocks. At the end each worker flushes, the power is cut, and every
 * region must read back as its model says.
 *
 * Then: concurrent flushes share commits (made deterministic by holding the
 * data device's flush), and the periodic commit thread (commit_interval_ms)
 * makes unflushed writes durable and stops on close.
 *
 * Threads other than the main one never call cmocka's asserts (a failure
 * would longjmp into the main thread's stack): they record the first
 * failure and stop, and the main thread fails the test with it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include "pool/pool_test.h"
#include "pool/pool_internal.h"
#include "util/compiler.h"

#define NWORKERS 6
#define OWN_BLOCKS 8
#define OWN_SIZE ((uint64_t)OWN_BLOCKS * TEST_BS)
#define SLICE_BLOCKS 3
#define SLICE_SIZE ((uint64_t)SLICE_BLOCKS * TEST_BS)
#define SHARED_ID 100
#define SHARED_SIZE (NWORKERS * SLICE_SIZE)
#define RACE_ID 200
#define RACE_BLOCKS 16
#define WORKER_SNAP_ID(w) (1000 + (uint64_t)(w) * 100000)
#define SNAPPER_ID 900000
#define POOL_BLOCKS 512
#define META_BYTES (8u << 20)

/* ---- failures in threads ---- */

static struct {
	pthread_mutex_t lock;
	atomic_int failed;
	char msg[512];
} failure = { .lock = PTHREAD_MUTEX_INITIALIZER };

THINP_PRINTF(2, 3) static bool thread_fail(int line, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&failure.lock);
	if (!atomic_load(&failure.failed)) {
		int n = snprintf(failure.msg, sizeof(failure.msg), "line %d: ", line);

		va_start(ap, fmt);
		vsnprintf(failure.msg + n, sizeof(failure.msg) - n, fmt, ap);
		va_end(ap);
		atomic_store(&failure.failed, 1);
	}
	pthread_mutex_unlock(&failure.lock);
	return false;
}

/* In a thread: record the failure and return false unless cond holds. */
#define TRY(cond, ...)                                                                     \
	do {                                                                               \
		if (!(cond))                                                               \
			return thread_fail(__LINE__, __VA_ARGS__);                         \
	} while (0)

static void reset_failure(void)
{
	atomic_store(&failure.failed, 0);
	failure.msg[0] = 0;
}

/* In the main thread, after joining: fail with what a thread recorded. */
static void assert_no_thread_failure(void)
{
	if (atomic_load(&failure.failed))
		fail_msg("a thread failed: %s", failure.msg);
}

static uint64_t first_difference(const uint8_t *a, const uint8_t *b, uint64_t len)
{
	uint64_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return i;
}

/* Read [off, off + len) of thin and compare it with model. */
static bool read_matches(thinp_thin *thin, uint64_t off, uint64_t len, const uint8_t *model,
			 uint8_t *buf, const char *what)
{
	int r = thinp_thin_read(thin, buf, len, off);
	uint64_t i;

	TRY(r == 0, "%s: read at %llu: %d", what, (unsigned long long)off, r);
	i = first_difference(buf, model, len);
	TRY(i == len, "%s: byte %llu reads %u, the model has %u", what,
	    (unsigned long long)(off + i), buf[i], model[i]);
	return true;
}

static bool open_thin(thinp_thin **out, thinp_pool *pool, uint64_t id, uint64_t size)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	int r;

	o.size = size;
	r = thinp_thin_open(out, pool, id, &o);
	TRY(r == 0, "open thin %llu: %d", (unsigned long long)id, r);
	return true;
}

/* ---- the stress test ---- */

/* A region of a volume that one thread alone writes: [base, base + size). */
struct region {
	thinp_thin *thin;
	uint64_t base, size;
	uint8_t *model;
};

struct worker {
	pthread_t th;
	thinp_pool *pool;
	int idx;
	uint64_t seed;
	unsigned ops;
	struct region own, slice;
	uint8_t *buf;
	unsigned snaps;
	atomic_uint *flushes;
};

static void rand_range(struct test_rng *r, uint64_t size, uint64_t *off, uint64_t *len)
{
	*off = test_rng_below(r, size);
	*len = 1 + test_rng_below(r, 2 * TEST_BS);
	if (*off + *len > size)
		*len = size - *off;
}

static bool region_write(struct test_rng *r, struct region *g, uint8_t *buf)
{
	uint64_t off, len;
	uint8_t v = (uint8_t)test_rng_next(r);
	int e;

	rand_range(r, g->size, &off, &len);
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(v + i / 512);
	e = thinp_thin_write(g->thin, buf, len, g->base + off);
	TRY(e == 0, "write %llu+%llu: %d", (unsigned long long)(g->base + off),
	    (unsigned long long)len, e);
	memcpy(g->model + off, buf, len);
	return true;
}

static bool region_zeroes(struct test_rng *r, struct region *g)
{
	uint64_t off, len;
	int e;

	rand_range(r, g->size, &off, &len);
	e = thinp_thin_write_zeroes(g->thin, len, g->base + off);
	TRY(e == 0, "write_zeroes: %d", e);
	memset(g->model + off, 0, len);
	return true;
}

/* Discard unmaps the whole blocks inside the range; regions are
 * block-aligned, so those lie inside the region too. */
static bool region_discard(struct test_rng *r, struct region *g)
{
	uint64_t off, len, b0, b1;
	int e;

	rand_range(r, g->size, &off, &len);
	e = thinp_thin_discard(g->thin, len, g->base + off);
	TRY(e == 0, "discard: %d", e);
	b0 = (g->base + off + TEST_BS - 1) / TEST_BS;
	b1 = (g->base + off + len) / TEST_BS;
	for (uint64_t b = b0; b < b1; b++)
		memset(g->model + b * TEST_BS - g->base, 0, TEST_BS);
	return true;
}

static bool region_read(struct test_rng *r, struct region *g, uint8_t *buf)
{
	uint64_t off, len;

	rand_range(r, g->size, &off, &len);
	return read_matches(g->thin, g->base + off, len, g->model + off, buf, "read");
}

/* Snapshot the volume holding g while other threads write elsewhere in it:
 * the snapshot's copy of g is g's model. Writing to the snapshot breaks
 * sharing there and must not show through g. */
static bool snapshot_region(struct worker *w, struct test_rng *r, struct region *g,
			    uint64_t origin, uint64_t vsize)
{
	uint64_t id = WORKER_SNAP_ID(w->idx) + w->snaps++;
	uint64_t off = g->base + test_rng_below(r, g->size);
	thinp_thin *s;
	int e;

	e = thinp_pool_create_snap(w->pool, id, origin);
	TRY(e == 0, "snapshot %llu of %llu: %d", (unsigned long long)id,
	    (unsigned long long)origin, e);
	if (!open_thin(&s, w->pool, id, vsize))
		return false;
	if (!read_matches(s, g->base, g->size, g->model, w->buf, "snapshot"))
		return false;
	e = thinp_thin_write(s, "snap", 4, THINP_MIN(off, vsize - 4));
	TRY(e == 0, "write to snapshot: %d", e);
	thinp_thin_close(s);
	if (!read_matches(g->thin, g->base, g->size, g->model, w->buf, "origin of a snapshot"))
		return false;
	e = thinp_pool_delete_thin(w->pool, id);
	TRY(e == 0, "delete snapshot %llu: %d", (unsigned long long)id, e);
	return true;
}

static bool flush(struct worker *w, thinp_thin *thin)
{
	int e = thinp_thin_flush(thin);

	TRY(e == 0, "flush: %d", e);
	atomic_fetch_add(w->flushes, 1);
	return true;
}

static bool worker_op(struct worker *w, struct test_rng *r)
{
	struct region *g = test_rng_below(r, 2) ? &w->own : &w->slice;
	unsigned k = (unsigned)test_rng_below(r, 100);

	if (k < 35)
		return region_write(r, g, w->buf);
	if (k < 60)
		return region_read(r, g, w->buf);
	if (k < 68)
		return region_discard(r, g);
	if (k < 73)
		return region_zeroes(r, g);
	if (k < 88)
		return flush(w, g->thin);
	if (k < 94)
		return snapshot_region(w, r, &w->own, (uint64_t)w->idx, OWN_SIZE);
	return snapshot_region(w, r, &w->slice, SHARED_ID, SHARED_SIZE);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct test_rng r;

	test_rng_init(&r, w->seed);
	for (unsigned i = 0; i < w->ops && !atomic_load(&failure.failed); i++)
		if (!worker_op(w, &r))
			return NULL;
	/* Everything this worker wrote is durable once this returns. */
	flush(w, w->own.thin);
	return NULL;
}

/* Snapshots the shared volume and the workers' volumes under their feet,
 * writes to them (breaking sharing from the other side) and deletes them. */
struct snapper {
	thinp_pool *pool;
	atomic_int *stop;
	unsigned snaps;
};

static bool snapper_round(struct snapper *s)
{
	uint64_t origin = s->snaps % (NWORKERS + 1), id = SNAPPER_ID + s->snaps;
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;
	thinp_thin *t;
	uint8_t b;
	int e;

	if (origin == NWORKERS)
		origin = SHARED_ID;
	e = thinp_pool_create_snap(s->pool, id, origin);
	TRY(e == 0, "snapper: snapshot of %llu: %d", (unsigned long long)origin, e);
	if (!open_thin(&t, s->pool, id, OWN_SIZE))
		return false;
	e = thinp_thin_read(t, &b, 1, 0);
	if (!e)
		e = thinp_thin_write(t, "s", 1, TEST_BS);
	thinp_thin_close(t);
	TRY(e == 0, "snapper: snapshot I/O: %d", e);
	e = thinp_pool_get_status(s->pool, &ps);
	TRY(e == 0, "snapper: status: %d", e);
	e = thinp_pool_delete_thin(s->pool, id);
	TRY(e == 0, "snapper: delete: %d", e);
	s->snaps++;
	return true;
}

static void *snapper_main(void *p)
{
	struct snapper *s = p;

	while (!atomic_load(s->stop) && !atomic_load(&failure.failed))
		if (!snapper_round(s))
			break;
	return NULL;
}

/* Two threads write whole blocks of one volume, same blocks, same order. */
struct racer {
	pthread_t th;
	thinp_thin *thin;
	uint8_t v;
	uint8_t *buf;
};

static void *racer_main(void *p)
{
	struct racer *rc = p;
	int e = 0;

	memset(rc->buf, rc->v, TEST_BS);
	for (uint64_t b = 0; b < RACE_BLOCKS && !e; b++)
		e = thinp_thin_write(rc->thin, rc->buf, TEST_BS, b * TEST_BS);
	if (!e)
		e = thinp_thin_flush(rc->thin);
	if (e)
		thread_fail(__LINE__, "racer: %d", e);
	return NULL;
}

static void start_racers(thinp_pool *pool, struct racer rc[2])
{
	assert_int_equal(thinp_pool_create_thin(pool, RACE_ID), 0);
	for (int i = 0; i < 2; i++) {
		rc[i].thin = topen(pool, RACE_ID, RACE_BLOCKS * (uint64_t)TEST_BS, NULL);
		rc[i].v = (uint8_t)(0xA0 + i);
		rc[i].buf = malloc(TEST_BS);
		assert_int_equal(pthread_create(&rc[i].th, NULL, racer_main, &rc[i]), 0);
	}
}

static void join_racers(struct racer rc[2])
{
	for (int i = 0; i < 2; i++) {
		pthread_join(rc[i].th, NULL);
		thinp_thin_close(rc[i].thin);
		free(rc[i].buf);
	}
}

/* Each raced block holds one writer's data, whole, and is mapped once. */
static void check_race(thinp_pool *pool)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;
	thinp_thin *thin = topen(pool, RACE_ID, RACE_BLOCKS * (uint64_t)TEST_BS, NULL);
	uint8_t *buf = malloc(TEST_BS);

	for (uint64_t b = 0; b < RACE_BLOCKS; b++) {
		assert_int_equal(thinp_thin_read(thin, buf, TEST_BS, b * TEST_BS), 0);
		assert_true(buf[0] == 0xA0 || buf[0] == 0xA1);
		for (uint64_t i = 1; i < TEST_BS; i++)
			assert_int_equal(buf[i], buf[0]);
	}
	assert_int_equal(thinp_pool_get_thin_status(pool, RACE_ID, &ts), 0);
	assert_int_equal(ts.mapped_blocks, RACE_BLOCKS);
	thinp_thin_close(thin);
	free(buf);
}

static void setup(struct tpool *t, bool real, uint64_t blocks, const thinp_pool_options *o)
{
	if (real)
		tpool_setup_real(t, blocks, META_BYTES, o);
	else
		tpool_setup(t, blocks, o);
}

static uint64_t pool_commits_done(thinp_pool *pool)
{
	uint64_t n;

	thinp_os_mutex_lock(&pool->state_lock);
	n = pool->commits_done;
	thinp_os_mutex_unlock(&pool->state_lock);
	return n;
}

static void stress(bool real)
{
	struct worker w[NWORKERS];
	struct racer rc[2];
	struct snapper s;
	atomic_int stop = 0;
	atomic_uint flushes = 0;
	pthread_t sth;
	struct tpool t;
	uint64_t seed = test_seed(real ? "pool threads (real metadata)" : "pool threads");
	uint64_t commits;
	uint8_t *buf = malloc(OWN_SIZE);

	reset_failure();
	setup(&t, real, POOL_BLOCKS, NULL);
	assert_int_equal(thinp_pool_create_thin(t.pool, SHARED_ID), 0);
	for (int i = 0; i < NWORKERS; i++) {
		assert_int_equal(thinp_pool_create_thin(t.pool, i), 0);
		w[i] = (struct worker){ .pool = t.pool, .idx = i, .seed = seed + i,
					.ops = 300 * test_scale(), .flushes = &flushes };
		w[i].own = (struct region){ topen(t.pool, i, OWN_SIZE, NULL), 0, OWN_SIZE,
					    calloc(1, OWN_SIZE) };
		w[i].slice = (struct region){ topen(t.pool, SHARED_ID, SHARED_SIZE, NULL),
					      i * SLICE_SIZE, SLICE_SIZE, calloc(1, SLICE_SIZE) };
		w[i].buf = malloc(OWN_SIZE);
	}
	commits = pool_commits_done(t.pool);
	s = (struct snapper){ .pool = t.pool, .stop = &stop };
	assert_int_equal(pthread_create(&sth, NULL, snapper_main, &s), 0);
	for (int i = 0; i < NWORKERS; i++)
		assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	start_racers(t.pool, rc);
	join_racers(rc);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(w[i].th, NULL);
	atomic_store(&stop, 1);
	pthread_join(sth, NULL);
	assert_no_thread_failure();
	print_message("%u flushes, %u snapshots deleted again: %llu commits\n",
		      atomic_load(&flushes), s.snaps,
		      (unsigned long long)(pool_commits_done(t.pool) - commits));

	/* Every worker flushed last: a power cut loses nothing. */
	for (int i = 0; i < NWORKERS; i++) {
		thinp_thin_close(w[i].own.thin);
		thinp_thin_close(w[i].slice.thin);
	}
	tpool_crash(&t);
	tpool_open(&t);
	tpool_check_md(&t);
	check_race(t.pool);
	for (int i = 0; i < NWORKERS; i++) {
		thinp_thin *own = topen(t.pool, i, OWN_SIZE, NULL);
		thinp_thin *shared = topen(t.pool, SHARED_ID, SHARED_SIZE, NULL);

		assert_true(read_matches(own, 0, OWN_SIZE, w[i].own.model, buf, "after the cut"));
		assert_true(read_matches(shared, w[i].slice.base, SLICE_SIZE, w[i].slice.model, buf,
					 "shared volume after the cut"));
		thinp_thin_close(own);
		thinp_thin_close(shared);
		free(w[i].own.model);
		free(w[i].slice.model);
		free(w[i].buf);
	}
	assert_no_thread_failure();
	tpool_teardown(&t);
	free(buf);
}

static void test_stress(void **state)
{
	stress(false);
}

static void test_stress_real_metadata(void **state)
{
	stress(true);
}

/* ---- group commit ---- */

struct flusher {
	pthread_t th;
	thinp_thin *thin;
	int result;
};

static void *flusher_main(void *p)
{
	struct flusher *f = p;

	f->result = thinp_thin_flush(f->thin);
	return NULL;
}

/*
 * One flush's commit is held in the data device's flush; the other
 * flushers arrive and wait. They need a commit that starts after they
 * arrived, and one is enough for all of them: two commits in all. Every
 * write returned before the first data flush began, so the second commit
 * has no data to flush: one data flush in all.
 */
static void flushes_share_commits(bool real)
{
	enum { NF = 5 };
	struct flusher f[NF];
	struct tpool t;
	uint64_t commits, flushes;
	uint8_t v;

	setup(&t, real, 16, NULL);
	for (int i = 0; i < NF; i++) {
		assert_int_equal(thinp_pool_create_thin(t.pool, i), 0);
		f[i].thin = topen(t.pool, i, TEST_BS, NULL);
		v = (uint8_t)(i + 1);
		assert_int_equal(thinp_thin_write(f[i].thin, &v, 1, 0), 0);
	}
	commits = pool_commits_done(t.pool);
	flushes = crashdev_flushes(t.dev);
	crashdev_hold_flushes(t.dev, true);
	assert_int_equal(pthread_create(&f[0].th, NULL, flusher_main, &f[0]), 0);
	crashdev_wait_held(t.dev, 1);
	for (int i = 1; i < NF; i++)
		assert_int_equal(pthread_create(&f[i].th, NULL, flusher_main, &f[i]), 0);
	tpool_wait_commit_waiters(&t, NF - 1);
	crashdev_hold_flushes(t.dev, false);
	for (int i = 0; i < NF; i++) {
		pthread_join(f[i].th, NULL);
		assert_int_equal(f[i].result, 0);
		thinp_thin_close(f[i].thin);
	}
	assert_int_equal(pool_commits_done(t.pool) - commits, 2);
	assert_int_equal(crashdev_flushes(t.dev) - flushes, 1);
	/* And each flusher's write is durable. */
	tpool_crash(&t);
	tpool_open(&t);
	tpool_check_md(&t);
	for (int i = 0; i < NF; i++) {
		thinp_thin *thin = topen(t.pool, i, TEST_BS, NULL);

		assert_int_equal(thinp_thin_read(thin, &v, 1, 0), 0);
		assert_int_equal(v, i + 1);
		thinp_thin_close(thin);
	}
	tpool_teardown(&t);
}

static void test_flushes_share_commits(void **state)
{
	flushes_share_commits(false);
}

static void test_flushes_share_commits_real_metadata(void **state)
{
	flushes_share_commits(true);
}

/* ---- periodic commits (commit_interval_ms) ---- */

static void fill(uint8_t *buf, uint64_t len, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7 + (i >> 12));
}

/* Writes never flushed survive a power cut once the commit thread has
 * committed after them. */
static void periodic_commit(bool real)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint64_t len = 3 * TEST_BS + 1000, off = TEST_BS / 2;
	uint8_t *want = malloc(len), *got = malloc(len);
	struct tpool t;
	thinp_thin *a;

	o.commit_interval_ms = 5;
	setup(&t, real, 16, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, 8 * (uint64_t)TEST_BS, NULL);
	fill(want, len, 0x5a);
	assert_int_equal(thinp_thin_write(a, want, len, off), 0);
	tpool_wait_md_clean(&t);
	thinp_thin_close(a);
	tpool_crash(&t);
	tpool_open(&t);
	tpool_check_md(&t);
	a = topen(t.pool, 0, 8 * (uint64_t)TEST_BS, NULL);
	assert_int_equal(thinp_thin_read(a, got, len, off), 0);
	assert_memory_equal(got, want, len);
	thinp_thin_close(a);
	tpool_teardown(&t);
	free(want);
	free(got);
}

static void test_periodic_commit(void **state)
{
	periodic_commit(false);
}

static void test_periodic_commit_real_metadata(void **state)
{
	periodic_commit(true);
}

static uint64_t commits_started(struct tpool *t)
{
	uint64_t n;

	thinp_os_mutex_lock(&t->pool->state_lock);
	n = t->pool->commits_started;
	thinp_os_mutex_unlock(&t->pool->state_lock);
	return n;
}

/* Timed commits are for the metadata: overwrites of provisioned blocks
 * start none (no data sync every interval), a provisioning write does. */
static void test_periodic_commit_needs_metadata_change(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint8_t buf[512] = { 1 };
	struct tpool t;
	thinp_thin *a;
	uint64_t n;

	o.commit_interval_ms = 2;
	setup(&t, false, 16, &o);
	assert_int_equal(thinp_pool_create_thin(t.pool, 0), 0);
	a = topen(t.pool, 0, 8 * (uint64_t)TEST_BS, NULL);
	assert_int_equal(thinp_thin_write(a, buf, sizeof(buf), 0), 0);
	/* Once clean, only the commit thread could start a commit, and it
	 * starts none while the metadata stays clean. */
	tpool_wait_md_clean(&t);
	n = commits_started(&t);
	for (int i = 0; i < 20; i++) {
		buf[0] = (uint8_t)i;
		assert_int_equal(thinp_thin_write(a, buf, sizeof(buf), 0), 0);
		usleep(2000);
	}
	assert_int_equal(commits_started(&t), n);
	assert_int_equal(thinp_thin_write(a, buf, sizeof(buf), TEST_BS), 0);
	tpool_wait_md_clean(&t);
	assert_true(commits_started(&t) > n);
	thinp_thin_close(a);
	tpool_teardown(&t);
}

struct io_thread {
	pthread_t th;
	thinp_thin *thin;
	uint8_t v;
	unsigned rounds;
};

static void *io_main(void *p)
{
	struct io_thread *it = p;
	uint8_t got;
	int e = 0;

	for (unsigned i = 0; i < it->rounds && !e; i++) {
		uint64_t off = (i % 8) * (uint64_t)TEST_BS + i;

		e = thinp_thin_write(it->thin, &it->v, 1, off);
		if (!e)
			e = thinp_thin_read(it->thin, &got, 1, off);
		if (!e && got != it->v)
			e = -EILSEQ;
		if (!e && i % 16 == 0)
			e = thinp_thin_discard(it->thin, TEST_BS, ((i / 16) % 8) * (uint64_t)TEST_BS);
	}
	if (e)
		thread_fail(__LINE__, "I/O beside the commit thread: %d", e);
	return NULL;
}

/*
 * Close stops the commit thread wherever it is: committing every
 * millisecond beside I/O threads, or sleeping through an interval of an
 * hour (close must not wait for it). Either way close commits, and under
 * ASan and TSan the thread's end is clean.
 */
static void commit_thread_stops(bool real, uint32_t interval_ms)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct io_thread it[2];
	struct tpool t;
	uint8_t v;

	reset_failure();
	o.commit_interval_ms = interval_ms;
	setup(&t, real, 64, &o);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(thinp_pool_create_thin(t.pool, i), 0);
		it[i] = (struct io_thread){ .thin = topen(t.pool, i, 8 * (uint64_t)TEST_BS, NULL),
					    .v = (uint8_t)(0x10 + i), .rounds = 200 };
		assert_int_equal(pthread_create(&it[i].th, NULL, io_main, &it[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(it[i].th, NULL);
		assert_int_equal(thinp_thin_write(it[i].thin, &it[i].v, 1, 7 * TEST_BS), 0);
		thinp_thin_close(it[i].thin);
	}
	assert_no_thread_failure();
	assert_int_equal(thinp_pool_close(t.pool), 0);
	t.pool = NULL;
	if (t.meta_dev)
		crashdev_power_loss(t.meta_dev);
	crashdev_power_loss(t.dev);
	tpool_open(&t);
	tpool_check_md(&t);
	for (int i = 0; i < 2; i++) {
		thinp_thin *thin = topen(t.pool, i, 8 * (uint64_t)TEST_BS, NULL);

		assert_int_equal(thinp_thin_read(thin, &v, 1, 7 * TEST_BS), 0);
		assert_int_equal(v, 0x10 + i);
		thinp_thin_close(thin);
	}
	tpool_teardown(&t);
}

static void test_commit_thread_stops_on_close(void **state)
{
	commit_thread_stops(false, 1);
	commit_thread_stops(false, 3600 * 1000);
	commit_thread_stops(true, 1);
	commit_thread_stops(true, 3600 * 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stress),
		cmocka_unit_test(test_stress_real_metadata),
		cmocka_unit_test(test_flushes_share_commits),
		cmocka_unit_test(test_flushes_share_commits_real_metadata),
		cmocka_unit_test(test_periodic_commit),
		cmocka_unit_test(test_periodic_commit_real_metadata),
		cmocka_unit_test(test_periodic_commit_needs_metadata_change),
		cmocka_unit_test(test_commit_thread_stops_on_close),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
