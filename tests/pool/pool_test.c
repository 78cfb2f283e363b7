/* Helpers of the pool tests (see pool_test.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/testutil.h"
#include "pool/map_cache.h"
#include "pool/pool_test.h"
#include "pool/pool_internal.h"

/* Unflushed changes are tracked per CHUNK so a flush or a power loss
 * copies only what changed. */
#define CHUNK 4096u

struct crashdev {
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* held flushes wait on it */
	uint8_t *cur, *durable, *dirty;
	uint64_t size, discarded, flushes, reads;
	bool fail_flush;
	bool hold_flush;
	unsigned held;                /* flushes waiting for the release */
};

static void mark_dirty(struct crashdev *d, uint64_t off, uint64_t len)
{
	for (uint64_t c = off / CHUNK; len && c <= (off + len - 1) / CHUNK; c++)
		d->dirty[c] = 1;
}

/* Copy every dirty chunk from `from` to `to` and clean it. */
static void settle(struct crashdev *d, uint8_t *to, const uint8_t *from)
{
	for (uint64_t c = 0; c * CHUNK < d->size; c++) {
		uint64_t off = c * CHUNK;

		if (!d->dirty[c])
			continue;
		memcpy(to + off, from + off, d->size - off < CHUNK ? d->size - off : CHUNK);
		d->dirty[c] = 0;
	}
}

static int cd_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct crashdev *d = ctx;

	pthread_mutex_lock(&d->lock);
	d->reads++;
	memcpy(buf, d->cur + off, len);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int cd_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct crashdev *d = ctx;

	pthread_mutex_lock(&d->lock);
	memcpy(d->cur + off, buf, len);
	mark_dirty(d, off, len);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

static int cd_flush(void *ctx)
{
	struct crashdev *d = ctx;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	d->held++;
	pthread_cond_broadcast(&d->cond);
	while (d->hold_flush)
		pthread_cond_wait(&d->cond, &d->lock);
	d->held--;
	if (d->fail_flush) {
		r = -EIO;
	} else {
		settle(d, d->durable, d->cur);
		d->flushes++;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static int cd_size(void *ctx, uint64_t *bytes)
{
	*bytes = ((struct crashdev *)ctx)->size;
	return 0;
}

static int cd_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct crashdev *d = ctx;

	pthread_mutex_lock(&d->lock);
	memset(d->cur + off, 0, len);
	mark_dirty(d, off, len);
	d->discarded += len;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* Grow or shrink both images at once: a resize is durable when it returns
 * (io.h), so a power loss keeps the new size. */
static int cd_resize(void *ctx, uint64_t bytes)
{
	struct crashdev *d = ctx;
	uint8_t *cur, *durable, *dirty;

	pthread_mutex_lock(&d->lock);
	cur = realloc(d->cur, bytes);
	if (cur)
		d->cur = cur;
	durable = realloc(d->durable, bytes);
	if (durable)
		d->durable = durable;
	dirty = realloc(d->dirty, bytes / CHUNK + 1);
	if (dirty)
		d->dirty = dirty;
	if (cur && durable && dirty) {
		if (bytes > d->size) {
			memset(cur + d->size, 0, bytes - d->size);
			memset(durable + d->size, 0, bytes - d->size);
			memset(dirty + d->size / CHUNK + 1, 0, bytes / CHUNK - d->size / CHUNK);
		}
		d->size = bytes;
	}
	pthread_mutex_unlock(&d->lock);
	return cur && durable && dirty ? 0 : -ENOMEM;
}

static void cd_close(void *ctx)
{
	struct crashdev *d = ctx;

	free(d->cur);
	free(d->durable);
	free(d->dirty);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int crashdev_open(thinp_io **out, uint64_t size, bool discard, struct crashdev **dev)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	struct crashdev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->cur = calloc(1, size);
	d->durable = calloc(1, size);
	d->dirty = calloc(1, size / CHUNK + 1);
	d->size = size;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	ops.caps = THINP_IO_CAP_THREADSAFE | (discard ? THINP_IO_CAP_DISCARD : 0);
	ops.read = cd_read;
	ops.write = cd_write;
	ops.flush = cd_flush;
	ops.size = cd_size;
	ops.discard = discard ? cd_discard : NULL;
	ops.resize = cd_resize;
	ops.close = cd_close;
	r = thinp_io_new(out, &ops, d, 0);
	if (r) {
		cd_close(d);
		return r;
	}
	*dev = d;
	return 0;
}

void crashdev_power_loss(struct crashdev *d)
{
	pthread_mutex_lock(&d->lock);
	settle(d, d->cur, d->durable);
	pthread_mutex_unlock(&d->lock);
}

uint64_t crashdev_discarded_bytes(struct crashdev *d)
{
	uint64_t v;

	pthread_mutex_lock(&d->lock);
	v = d->discarded;
	pthread_mutex_unlock(&d->lock);
	return v;
}

uint64_t crashdev_flushes(struct crashdev *d)
{
	uint64_t v;

	pthread_mutex_lock(&d->lock);
	v = d->flushes;
	pthread_mutex_unlock(&d->lock);
	return v;
}

uint64_t crashdev_reads(struct crashdev *d)
{
	uint64_t v;

	pthread_mutex_lock(&d->lock);
	v = d->reads;
	pthread_mutex_unlock(&d->lock);
	return v;
}

void crashdev_save(struct crashdev *d, const char *path)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	pthread_mutex_lock(&d->lock);
	assert_int_equal(fwrite(d->cur, 1, d->size, f), d->size);
	pthread_mutex_unlock(&d->lock);
	assert_int_equal(fclose(f), 0);
}

void crashdev_fail_flushes(struct crashdev *d, bool fail)
{
	pthread_mutex_lock(&d->lock);
	d->fail_flush = fail;
	pthread_mutex_unlock(&d->lock);
}

void crashdev_hold_flushes(struct crashdev *d, bool hold)
{
	pthread_mutex_lock(&d->lock);
	d->hold_flush = hold;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

void crashdev_wait_held(struct crashdev *d, unsigned n)
{
	struct timespec deadline;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += TEST_WAIT_SECONDS;
	pthread_mutex_lock(&d->lock);
	while (d->held < n && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&d->cond, &d->lock, &deadline);
	pthread_mutex_unlock(&d->lock);
	if (r == ETIMEDOUT)
		fail_msg("%u flushes never reached the device", n);
}

void tpool_setup(struct tpool *t, uint64_t blocks, const thinp_pool_options *opts)
{
	thinp_pool_options def = THINP_POOL_OPTIONS_INIT;

	memset(t, 0, sizeof(*t));
	t->opts = opts ? *opts : def;
	t->store = md_store_new(TEST_BS >> 9, blocks, 1024);
	assert_non_null(t->store);
	assert_int_equal(crashdev_open(&t->data, blocks * TEST_BS, true, &t->dev), 0);
	tpool_open(t);
}

uint64_t tpool_commits(struct tpool *t)
{
	return t->store ? md_store_commits(t->store) : crashdev_flushes(t->meta_dev);
}

/* Poll until done() holds (it takes the locks it needs), TEST_WAIT_SECONDS
 * at most. */
static void wait_pool_state(thinp_pool *pool, bool (*done)(thinp_pool *, uint64_t), uint64_t arg,
			    const char *what)
{
	const struct timespec tick = { 0, 1000000 };
	struct timespec start, now;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		ok = done(pool, arg);
		if (ok)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > TEST_WAIT_SECONDS)
			fail_msg("%s: not within %d s", what, TEST_WAIT_SECONDS);
		nanosleep(&tick, NULL);
	}
}

static bool enough_waiters(thinp_pool *pool, uint64_t n)
{
	bool enough;

	thinp_os_mutex_lock(&pool->state_lock);
	enough = pool->commit_waiters >= n;
	thinp_os_mutex_unlock(&pool->state_lock);
	return enough;
}

static bool metadata_clean(thinp_pool *pool, uint64_t unused)
{
	bool clean;

	(void)unused;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	clean = !pool->md_dirty;
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	return clean;
}

void tpool_wait_md_clean(struct tpool *t)
{
	wait_pool_state(t->pool, metadata_clean, 0, "every metadata change committed");
}

void tpool_wait_commit_waiters(struct tpool *t, unsigned n)
{
	wait_pool_state(t->pool, enough_waiters, n, "threads waiting for the running commit");
}

void tpool_open(struct tpool *t)
{
	struct pool_md *md;

	if (!t->store) {
		assert_int_equal(t->open_real(t), 0);
		return;
	}
	assert_int_equal(md_model_open(t->store, &md), 0);
	assert_int_equal(pool_create(&t->pool, md, NULL, t->data, &t->opts), 0);
}

void tpool_close(struct tpool *t)
{
	assert_int_equal(thinp_pool_close(t->pool), 0);
	t->pool = NULL;
}

void tpool_crash(struct tpool *t)
{
	pool_abandon(t->pool);
	t->pool = NULL;
	crashdev_power_loss(t->dev);
	if (t->meta_dev)
		crashdev_power_loss(t->meta_dev);
}

void tpool_teardown(struct tpool *t)
{
	if (t->pool)
		tpool_close(t);
	thinp_io_close(t->data);
	thinp_io_close(t->meta);
	md_store_free(t->store);
}

void tpool_check_md(struct tpool *t)
{
	if (!t->store) {
		t->check_real(t);
		return;
	}
	thinp_os_rwlock_read_lock(&t->pool->md_lock);
	assert_int_equal(md_model_check(map_cache_inner(t->pool->md)), 0);
	thinp_os_rwlock_read_unlock(&t->pool->md_lock);
}

thinp_thin *topen(thinp_pool *pool, uint64_t id, uint64_t size, thinp_io *origin)
{
	thinp_thin_options o = THINP_THIN_OPTIONS_INIT;
	thinp_thin *thin = NULL;

	o.size = size;
	o.origin = origin;
	assert_int_equal(thinp_thin_open(&thin, pool, id, &o), 0);
	return thin;
}
