/*
 * Allocation failures, SQLite's faultsim countdown: for n = 1, 2, ... the
 * n-th allocation made during one API call fails, until the call makes
 * fewer than n. Each time the call must fail cleanly with a negative errno
 * (or absorb the failure and succeed), leak nothing (ASan's leak check at
 * exit), and leave devices that, after closing the pool and a power cut,
 * pass libthinp's full check and thin_check, reopen, and read back what
 * was flushed before, plus what the call made durable if it succeeded.
 *
 * The library has no allocator hook, so this program is linked with
 * -Wl,--wrap for malloc, calloc, realloc, posix_memalign and pthread_create
 * (the commit thread): every call of those from the library (linked in
 * statically) goes through the wrappers below. Calls from libc itself are
 * not counted.
 *
 * The calls: pool format and open (with a commit thread), create_thin,
 * create_snap, thin open, a read, a write that provisions and breaks
 * sharing, a discard, a flush, and close.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/meta.h>
#include "common/testutil.h"
#include "pool/pool_test.h"

/* ---- the failing allocator ---- */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
int __real_posix_memalign(void **p, size_t align, size_t size);
int __real_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
int __wrap_posix_memalign(void **p, size_t align, size_t size);
int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);

static atomic_ulong countdown; /* 0: nothing fails; n: the n-th from now fails */
static atomic_bool fired;

static bool alloc_fails(void)
{
	unsigned long n = atomic_load(&countdown);

	while (n) {
		if (atomic_compare_exchange_weak(&countdown, &n, n - 1)) {
			if (n == 1)
				atomic_store(&fired, true);
			return n == 1;
		}
	}
	return false;
}

void *__wrap_malloc(size_t size)
{
	return alloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	return alloc_fails() ? NULL : __real_realloc(p, size);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
	return alloc_fails() ? ENOMEM : __real_posix_memalign(p, align, size);
}

int __wrap_pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg)
{
	return alloc_fails() ? EAGAIN : __real_pthread_create(th, attr, fn, arg);
}

static void arm(unsigned long n)
{
	atomic_store(&fired, false);
	atomic_store(&countdown, n);
}

/* Stop failing; whether the armed allocation was reached. */
static bool disarm(void)
{
	atomic_store(&countdown, 0);
	return atomic_load(&fired);
}

/* ---- the pool every call starts from ---- */

#define VBLOCKS 8
#define VSIZE ((uint64_t)VBLOCKS * TEST_BS)
#define POOL_BLOCKS 32
#define META_BYTES (4u << 20)
/* The written range: half of block 2 and block 3 (shared with the
 * snapshot: breaking sharing), blocks 4 and half of 5 (unmapped). */
#define WRITE_OFF (2 * TEST_BS + TEST_BS / 2)
#define WRITE_LEN (3 * TEST_BS)

/*
 * Volume 0 has blocks 0-3 written with a pattern; volume 1 is its snapshot.
 * Every call below may change volume 0 only: volume 1 must always read as
 * it was; volume 0 reads, byte by byte, as before or as `want` (the call's
 * effect), and as `want` when the call succeeded and made it durable.
 */
struct env {
	struct tpool t;
	uint8_t *meta_img, *data_img;
	uint8_t *base, *want, *buf;
	thinp_thin *a;
	bool durable; /* the call's effect on volume 0 must have survived */
	int thin_checks;
};

static void pattern(uint8_t *buf, uint64_t len, uint8_t seed)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 11 + (i >> 9));
}

static thinp_pool_options pool_options(void)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;

	/* A commit thread that never wakes on its own: only its creation
	 * and its end matter here. */
	o.commit_interval_ms = 3600 * 1000;
	o.data_block_size = TEST_BS;
	return o;
}

static void env_setup(struct env *e)
{
	thinp_pool_options o = pool_options();

	memset(e, 0, sizeof(*e));
	e->base = calloc(1, VSIZE);
	e->want = malloc(VSIZE);
	e->buf = malloc(VSIZE);
	pattern(e->base, 4 * TEST_BS, 0xA0);
	tpool_setup_real(&e->t, POOL_BLOCKS, META_BYTES, &o);
	assert_int_equal(thinp_pool_create_thin(e->t.pool, 0), 0);
	e->a = topen(e->t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(e->a, e->base, 4 * TEST_BS, 0), 0);
	thinp_thin_close(e->a);
	e->a = NULL;
	assert_int_equal(thinp_pool_create_snap(e->t.pool, 1, 0), 0);
	tpool_close(&e->t);
	e->meta_img = malloc(META_BYTES);
	e->data_img = malloc(POOL_BLOCKS * TEST_BS);
	assert_int_equal(thinp_io_read(e->t.meta, e->meta_img, META_BYTES, 0, 0), 0);
	assert_int_equal(thinp_io_read(e->t.data, e->data_img, POOL_BLOCKS * TEST_BS, 0, 0), 0);
}

static void env_teardown(struct env *e)
{
	tpool_teardown(&e->t);
	free(e->meta_img);
	free(e->data_img);
	free(e->base);
	free(e->want);
	free(e->buf);
}

static void restore_images(struct env *e)
{
	assert_int_equal(thinp_io_write(e->t.meta, e->meta_img, META_BYTES, 0, 0), 0);
	assert_int_equal(thinp_io_write(e->t.data, e->data_img, POOL_BLOCKS * TEST_BS, 0, 0), 0);
	assert_int_equal(thinp_io_flush(e->t.meta), 0);
	assert_int_equal(thinp_io_flush(e->t.data), 0);
	memcpy(e->want, e->base, VSIZE);
	e->durable = false;
}

static void open_pool(struct env *e)
{
	tpool_open(&e->t);
}

static void open_pool_and_volume(struct env *e)
{
	tpool_open(&e->t);
	e->a = topen(e->t.pool, 0, VSIZE, NULL);
}

/* Close what is open (a close that fails still frees the pool). */
static void close_all(struct env *e)
{
	thinp_thin_close(e->a);
	e->a = NULL;
	if (e->t.pool)
		thinp_pool_close(e->t.pool);
	e->t.pool = NULL;
}

/* After a call that succeeded, a flush must succeed and make it durable. */
static void flush_then_close(struct env *e, int r)
{
	if (r == 0) {
		assert_int_equal(thinp_thin_flush(e->a), 0);
		e->durable = true;
	}
	close_all(e);
}

static void power_cut(struct env *e)
{
	crashdev_power_loss(e->t.meta_dev);
	crashdev_power_loss(e->t.dev);
}

/* ---- checks after each call ---- */

static uint32_t pool_mode(thinp_pool *pool)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_pool_get_status(pool, &ps), 0);
	return ps.mode;
}

static bool pool_needs_check(thinp_pool *pool)
{
	thinp_pool_status ps = THINP_POOL_STATUS_INIT;

	assert_int_equal(thinp_pool_get_status(pool, &ps), 0);
	return ps.needs_check;
}

static void check_report(const thinp_meta_finding *f, void *ctx)
{
	print_message("metadata check: %s\n", f->line);
}

static void check_volumes(struct env *e)
{
	thinp_thin *thin = topen(e->t.pool, 1, VSIZE, NULL);

	assert_int_equal(thinp_thin_read(thin, e->buf, VSIZE, 0), 0);
	assert_memory_equal(e->buf, e->base, VSIZE);
	thinp_thin_close(thin);
	thin = topen(e->t.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_read(thin, e->buf, VSIZE, 0), 0);
	for (uint64_t i = 0; i < VSIZE; i++) {
		if (e->buf[i] == e->want[i] || (!e->durable && e->buf[i] == e->base[i]))
			continue;
		fail_msg("volume 0 byte %llu is %u: before the call %u, its effect %u%s",
			 (unsigned long long)i, e->buf[i], e->base[i], e->want[i],
			 e->durable ? " (made durable)" : "");
	}
	thinp_thin_close(thin);
}

/* The image checks clean (thin_check on every 4th: a fork each), reopens,
 * and reads as it must. */
static void check_after(struct env *e, unsigned long n)
{
	int r = thinp_meta_check_io(e->t.meta, NULL, check_report, NULL);

	if (r)
		fail_msg("allocation %lu: the metadata check failed: %d", n, r);
	if (n % 4 == 1) {
		r = tpool_thin_check(&e->t);
		if (r > 0)
			fail_msg("allocation %lu: thin_check failed (%d)", n, r);
		e->thin_checks += r == 0;
	}
	open_pool(e);
	check_volumes(e);
}

/* ---- the calls ---- */

struct scenario {
	const char *name;
	void (*prepare)(struct env *e);
	int (*call)(struct env *e);
	/* Close everything; set e->durable if the call's effect must last. */
	void (*finish)(struct env *e, int r);
	/* On the reopened pool, when the call succeeded. May be NULL. */
	void (*verify)(struct env *e);
};

static int call_open(struct env *e)
{
	thinp_pool_options o = pool_options();

	return thinp_pool_open(&e->t.pool, e->t.meta, e->t.data, &o);
}

static int call_create_thin(struct env *e)
{
	return thinp_pool_create_thin(e->t.pool, 2);
}

static void verify_created(struct env *e, uint64_t id)
{
	thinp_thin_status ts = THINP_THIN_STATUS_INIT;

	assert_int_equal(thinp_pool_get_thin_status(e->t.pool, id, &ts), 0);
}

static void verify_create_thin(struct env *e)
{
	verify_created(e, 2);
}

static int call_create_snap(struct env *e)
{
	return thinp_pool_create_snap(e->t.pool, 3, 0);
}

static void verify_create_snap(struct env *e)
{
	thinp_thin *s = topen(e->t.pool, 3, VSIZE, NULL);

	verify_created(e, 3);
	assert_int_equal(thinp_thin_read(s, e->buf, VSIZE, 0), 0);
	assert_memory_equal(e->buf, e->base, VSIZE);
	thinp_thin_close(s);
}

static int call_thin_open(struct env *e)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;

	o.size = VSIZE;
	return thinp_thin_open(&e->a, e->t.pool, 0, &o);
}

static int call_read(struct env *e)
{
	int r = thinp_thin_read(e->a, e->buf, VSIZE, 0);

	if (!r)
		assert_memory_equal(e->buf, e->base, VSIZE);
	return r;
}

/* A lookup that ran out of memory changed nothing: the pool stays up and
 * the read works again. */
static void finish_read(struct env *e, int r)
{
	assert_int_equal(pool_mode(e->t.pool), THINP_POOL_MODE_RW);
	assert_int_equal(call_read(e), 0);
	close_all(e);
}

static void write_want(struct env *e)
{
	pattern(e->want + WRITE_OFF, WRITE_LEN, 0x3C);
}

static int call_write(struct env *e)
{
	write_want(e);
	return thinp_thin_write(e->a, e->want + WRITE_OFF, WRITE_LEN, WRITE_OFF);
}

static int call_discard(struct env *e)
{
	/* Whole blocks 1-3 (shared with the snapshot) and 4 (unmapped); the
	 * half of block 5 stays. */
	memset(e->want + TEST_BS, 0, 4 * TEST_BS);
	return thinp_thin_discard(e->a, 4 * TEST_BS + TEST_BS / 2, TEST_BS);
}

static void prepare_unflushed_write(struct env *e)
{
	open_pool_and_volume(e);
	write_want(e);
	assert_int_equal(thinp_thin_write(e->a, e->want + WRITE_OFF, WRITE_LEN, WRITE_OFF), 0);
}

static int call_flush(struct env *e)
{
	return thinp_thin_flush(e->a);
}

/* Power is cut without the close's commit: only the flush made it durable. */
static void finish_flush(struct env *e, int r)
{
	e->durable = r == 0;
	thinp_thin_close(e->a);
	e->a = NULL;
	tpool_crash(&e->t);
}

static void prepare_close(struct env *e)
{
	prepare_unflushed_write(e);
	thinp_thin_close(e->a);
	e->a = NULL;
}

static int call_close(struct env *e)
{
	int r = thinp_pool_close(e->t.pool);

	e->t.pool = NULL;
	return r;
}

static void finish_close(struct env *e, int r)
{
	e->durable = r == 0;
}

static void finish_plain(struct env *e, int r)
{
	close_all(e);
}

static const struct scenario scenarios[] = {
	{ "pool open", NULL, call_open, finish_plain, NULL },
	{ "create_thin", open_pool, call_create_thin, finish_plain, verify_create_thin },
	{ "create_snap", open_pool, call_create_snap, finish_plain, verify_create_snap },
	{ "thin open", open_pool, call_thin_open, finish_plain, NULL },
	{ "read", open_pool_and_volume, call_read, finish_read, NULL },
	{ "provisioning write", open_pool_and_volume, call_write, flush_then_close, NULL },
	{ "discard", open_pool_and_volume, call_discard, flush_then_close, NULL },
	{ "flush", prepare_unflushed_write, call_flush, finish_flush, NULL },
	{ "close", prepare_close, call_close, finish_close, NULL },
};

struct tally {
	unsigned enomem, eagain, other, absorbed;
	unsigned failed;      /* left the open pool in FAIL mode */
	unsigned needs_check; /* left NEEDS_CHECK set: the pool reopens read-only */
};

static void count(struct tally *tl, const char *name, unsigned long n, int r)
{
	if (r > 0)
		fail_msg("%s, allocation %lu failing: returned %d", name, n, r);
	if (r == -ENOMEM)
		tl->enomem++;
	else if (r == -EAGAIN)
		tl->eagain++;
	else if (r)
		tl->other++;
	else
		tl->absorbed++;
}

static void report(const char *name, unsigned long points, const struct tally *tl)
{
	print_message("%-18s %3lu allocations, each failed in turn: %u -ENOMEM, %u -EAGAIN, "
		      "%u other errors, %u absorbed; pool failed %u times, needs_check %u\n",
		      name, points, tl->enomem, tl->eagain, tl->other, tl->absorbed, tl->failed,
		      tl->needs_check);
}

static void run_scenario(struct env *e, const struct scenario *s)
{
	struct tally tl = { 0 };
	unsigned long n;
	bool hit;
	int r;

	for (n = 1;; n++) {
		restore_images(e);
		if (s->prepare)
			s->prepare(e);
		arm(n);
		r = s->call(e);
		hit = disarm();
		if (hit)
			count(&tl, s->name, n, r);
		else if (r)
			fail_msg("%s: %d with no allocation failing", s->name, r);
		if (e->t.pool)
			tl.failed += pool_mode(e->t.pool) == THINP_POOL_MODE_FAIL;
		s->finish(e, r);
		power_cut(e);
		check_after(e, n);
		tl.needs_check += pool_needs_check(e->t.pool);
		if (r == 0 && s->verify)
			s->verify(e);
		close_all(e);
		if (!hit)
			break;
	}
	report(s->name, n - 1, &tl);
}

static void test_calls(void **state)
{
	struct env e;

	env_setup(&e);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&e, &scenarios[i]);
	print_message("thin_check ran on %d images\n", e.thin_checks);
	env_teardown(&e);
}

/*
 * Format writes a fresh pool: when it fails, nothing is returned and the
 * device may hold anything but a pool that checks clean or none at all;
 * formatting again must work.
 */
static void test_format(void **state)
{
	thinp_pool_options o = pool_options();
	struct tally tl = { 0 };
	thinp_io *meta, *data;
	thinp_pool *pool;
	unsigned long n;
	bool hit;
	int r;

	assert_int_equal(thinp_io_open_memory(&meta, META_BYTES, 0), 0);
	assert_int_equal(thinp_io_open_memory(&data, POOL_BLOCKS * TEST_BS, 0), 0);
	for (n = 1;; n++) {
		pool = (thinp_pool *)&n; /* must be reset to NULL on failure */
		arm(n);
		r = thinp_pool_format(&pool, meta, data, &o);
		hit = disarm();
		if (hit)
			count(&tl, "pool format", n, r);
		if (r) {
			assert_true(hit);
			assert_null(pool);
			r = thinp_meta_check_io(meta, NULL, NULL, NULL);
			assert_true(r == 0 || r == -ENODATA || r == -EILSEQ);
			assert_int_equal(thinp_pool_format(&pool, meta, data, &o), 0);
		}
		assert_int_equal(thinp_pool_create_thin(pool, 0), 0);
		assert_int_equal(thinp_pool_close(pool), 0);
		assert_int_equal(thinp_meta_check_io(meta, NULL, check_report, NULL), 0);
		if (!hit)
			break;
	}
	report("pool format", n - 1, &tl);
	thinp_io_close(meta);
	thinp_io_close(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_calls),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	test_tmpdir_cleanup();
	return r;
}
