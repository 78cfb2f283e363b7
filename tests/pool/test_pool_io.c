/*
 * What the pool's data path costs and when it waits, over the metadata
 * model and a RAM data device behind the fault backend (whose counters see
 * every request): the device I/Os of provisioning and of breaking sharing,
 * user callbacks that call back into the pool, and data I/O that no
 * metadata change waits for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/testutil.h"
#include <libthinp/testing.h>
#include "pool/pool_internal.h"
#include "pool/pool_test.h"

#define BS TEST_BS
#define NBLOCKS 64u
#define VSIZE (16ull * BS)

/* A pool over the model, its data device behind a fault wrapper. */
struct iopool {
	struct md_store *store;
	thinp_io *mem, *data;
	thinp_io_fault *fault;
	thinp_pool *pool;
};

/* Fill a device with a pattern, as left by earlier use: a new block's
 * unwritten part must then really be zeroed, not merely found zero. */
static void garble(thinp_io *io, uint64_t size)
{
	uint8_t *b = malloc(BS);

	memset(b, 0xA5, BS);
	for (uint64_t off = 0; off < size; off += BS)
		assert_int_equal(thinp_io_write(io, b, BS, off, 0), 0);
	free(b);
}

/* The pool has `blocks` data blocks of a device of NBLOCKS, all holding
 * stale bytes. */
static void iopool_open_sized(struct iopool *p, uint64_t blocks, const thinp_pool_options *opts)
{
	struct pool_md *md;

	memset(p, 0, sizeof(*p));
	p->store = md_store_new(BS >> 9, blocks, 1024);
	assert_non_null(p->store);
	assert_int_equal(thinp_io_open_memory(&p->mem, NBLOCKS * BS, 0), 0);
	garble(p->mem, NBLOCKS * BS);
	assert_int_equal(thinp_io_open_fault(&p->data, &p->fault, p->mem, 0), 0);
	assert_int_equal(md_model_open(p->store, &md), 0);
	assert_int_equal(pool_create(&p->pool, md, NULL, p->data, opts), 0);
}

static void iopool_open(struct iopool *p, const thinp_pool_options *opts)
{
	iopool_open_sized(p, NBLOCKS, opts);
}

static void iopool_close(struct iopool *p)
{
	assert_int_equal(thinp_pool_close(p->pool), 0);
	thinp_io_close(p->data);
	thinp_io_fault_free(p->fault);
	thinp_io_close(p->mem);
	md_store_free(p->store);
}

struct counts {
	uint64_t reads, writes, zeroes, write_bytes;
};

static struct counts take_counts(thinp_io_fault *f)
{
	struct counts c;

	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_READ, &c.reads, NULL), 0);
	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE, &c.writes,
						 &c.write_bytes), 0);
	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_WRITE_ZEROES, &c.zeroes, NULL),
			 0);
	thinp_io_fault_reset_counters(f);
	return c;
}

static void expect_io(thinp_io_fault *f, uint64_t reads, uint64_t writes, uint64_t bytes,
		      uint64_t zeroes)
{
	struct counts c = take_counts(f);

	if (c.reads != reads || c.writes != writes || c.zeroes != zeroes ||
	    c.write_bytes != bytes)
		fail_msg("expected %llu reads, %llu writes of %llu bytes, %llu write-zeroes; got "
			 "%llu, %llu of %llu, %llu",
			 (unsigned long long)reads, (unsigned long long)writes,
			 (unsigned long long)bytes, (unsigned long long)zeroes,
			 (unsigned long long)c.reads, (unsigned long long)c.writes,
			 (unsigned long long)c.write_bytes, (unsigned long long)c.zeroes);
}

static void expect_counts(thinp_io_fault *f, uint64_t reads, uint64_t writes, uint64_t bytes)
{
	expect_io(f, reads, writes, bytes, 0);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 13);
}

/*
 * Provisioning with zeroing writes the data once and zeroes the rest with
 * the device's write-zeroes (the memory backend has one); breaking sharing
 * reads the old block once and writes the merged block once; an unshared
 * block is written in place. The contents are checked each time.
 */
static void test_cow_and_provision_io_counts(void **state)
{
	uint8_t *w = malloc(4096), *expect = malloc(BS), *got = malloc(BS);
	struct iopool p;
	thinp_thin *thin, *snap;

	iopool_open(&p, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	fill(w, 4096, 1);
	thinp_io_fault_reset_counters(p.fault);

	/* Unmapped, zeroing: the write, zeroes before and after. */
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS + 16384), 0);
	expect_io(p.fault, 0, 1, 4096, 2);
	memset(expect, 0, BS);
	memcpy(expect + 16384, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	take_counts(p.fault);

	/* A whole-block write: one write. */
	fill(got, BS, 9);
	assert_int_equal(thinp_thin_write(thin, got, BS, 3 * BS), 0);
	expect_counts(p.fault, 0, 1, BS);

	/* Breaking sharing: one read and one write of the block, in either
	 * volume, and the other keeps the old contents. */
	assert_int_equal(thinp_pool_create_snap(p.pool, 1, 0), 0);
	snap = topen(p.pool, 1, VSIZE, NULL);
	take_counts(p.fault);
	fill(w, 4096, 2);
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS + 8192), 0);
	expect_counts(p.fault, 1, 1, BS);
	assert_int_equal(thinp_thin_read(snap, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	memcpy(expect + 8192, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, 2 * BS), 0);
	assert_memory_equal(got, expect, BS);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write(snap, w, 4096, 3 * BS + BS - 4096), 0);
	expect_counts(p.fault, 1, 1, BS);

	/* Now private: in place, one 4 KiB write. */
	assert_int_equal(thinp_thin_write(thin, w, 4096, 2 * BS), 0);
	expect_counts(p.fault, 0, 1, 4096);

	thinp_thin_close(snap);
	thinp_thin_close(thin);
	iopool_close(&p);
	free(w);
	free(expect);
	free(got);
}

/* With an external origin: one origin read and one data write; with
 * skip_block_zeroing and no origin, only the written bytes. */
static void test_origin_and_skip_zeroing_io_counts(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint8_t *w = malloc(4096), *expect = malloc(BS), *got = malloc(BS);
	thinp_io *omem, *origin;
	thinp_io_fault *of;
	struct iopool p;
	thinp_thin *thin;
	uint64_t oreads;

	assert_int_equal(thinp_io_open_memory(&omem, 4 * BS, 0), 0);
	fill(expect, BS, 5);
	assert_int_equal(thinp_io_write(omem, expect, BS, BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&origin, &of, omem, 0), 0);
	iopool_open(&p, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, origin);
	thinp_io_fault_reset_counters(p.fault);
	fill(w, 4096, 3);
	assert_int_equal(thinp_thin_write(thin, w, 4096, BS + 4096), 0);
	expect_counts(p.fault, 0, 1, BS);
	assert_int_equal(thinp_io_fault_counters(of, THINP_IO_KIND_READ, &oreads, NULL), 0);
	assert_int_equal(oreads, 1);
	memcpy(expect + 4096, w, 4096);
	assert_int_equal(thinp_thin_read(thin, got, BS, BS), 0);
	assert_memory_equal(got, expect, BS);
	/* Past the origin's end: zeroes after the write, no origin read. */
	thinp_io_fault_reset_counters(of);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, 8 * BS), 0);
	expect_io(p.fault, 0, 1, 4096, 1);
	assert_int_equal(thinp_io_fault_counters(of, THINP_IO_KIND_READ, &oreads, NULL), 0);
	assert_int_equal(oreads, 0);
	thinp_thin_close(thin);
	iopool_close(&p);
	thinp_io_close(origin);
	thinp_io_fault_free(of);
	thinp_io_close(omem);

	o.features = THINP_POOL_SKIP_BLOCK_ZEROING;
	iopool_open(&p, &o);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	thinp_io_fault_reset_counters(p.fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, BS + 4096), 0);
	expect_counts(p.fault, 0, 1, 4096);
	thinp_thin_close(thin);
	iopool_close(&p);
	free(w);
	free(expect);
	free(got);
}

/* The data block vblock of volume id maps to. */
static uint64_t data_block_of(thinp_pool *pool, uint64_t id, uint64_t vblock)
{
	struct pool_md_mapping m;

	assert_int_equal(pool->md->ops->lookup(pool->md, id, vblock, &m), 0);
	return m.data_block;
}

/* Give every data block but the `n` in `used` to `op`: a write of stale
 * bytes or a discard, through the fault handle (pending until a flush). */
static void over_free_blocks(struct iopool *p, const uint64_t *used, unsigned n, bool discard)
{
	uint8_t *b = malloc(BS);

	memset(b, 0x5A, BS);
	for (uint64_t nb = 0; nb < NBLOCKS; nb++) {
		bool in_use = false;

		for (unsigned i = 0; i < n; i++)
			in_use |= used[i] == nb;
		if (in_use)
			continue;
		assert_int_equal(discard ? thinp_io_discard(p->data, BS, nb * BS, 0)
					 : thinp_io_write(p->data, b, BS, nb * BS, 0), 0);
	}
	free(b);
}

/* Write 4 KiB at 16 KiB into unmapped vblock, expect `zeroes` write-zeroes
 * around it, and read back the write with zeroes around it. */
static void provision_expecting(struct iopool *p, thinp_thin *thin, uint64_t vblock,
				uint64_t zeroes)
{
	uint8_t *w = malloc(4096), *expect = calloc(1, BS), *got = malloc(BS);

	fill(w, 4096, (uint8_t)vblock);
	memcpy(expect + 16384, w, 4096);
	take_counts(p->fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, vblock * BS + 16384), 0);
	expect_io(p->fault, 0, 1, 4096, zeroes);
	assert_int_equal(thinp_thin_read(thin, got, BS, vblock * BS), 0);
	assert_memory_equal(got, expect, BS);
	free(w);
	free(expect);
	free(got);
}

/*
 * A new block that reads as zeroes already (thinp_io_is_zero) is not zeroed
 * again around a partial write: a block never written, or discarded with the
 * discard flushed. One with stale bytes, or with a write or discard still
 * pending over it (the fault backend cannot say then), is zeroed. A
 * write-zeroes into such a block writes nothing, and the next commit still
 * flushes the data device first (the zeroes may rest on a discard not yet
 * durable).
 */
static void test_provision_into_zeroes_skips_zeroing(void **state)
{
	uint8_t *got = malloc(BS);
	uint64_t used[3], flushes;
	struct iopool p;
	thinp_thin *thin;

	iopool_open(&p, NULL);
	assert_int_equal(thinp_io_write_zeroes(p.mem, NBLOCKS * BS, 0, 0), 0);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);

	provision_expecting(&p, thin, 0, 0);
	used[0] = data_block_of(p.pool, 0, 0);
	over_free_blocks(&p, used, 1, false);
	provision_expecting(&p, thin, 1, 2);
	used[1] = data_block_of(p.pool, 0, 1);
	assert_int_equal(thinp_io_flush(p.data), 0);
	provision_expecting(&p, thin, 2, 2);
	used[2] = data_block_of(p.pool, 0, 2);
	over_free_blocks(&p, used, 3, true);
	provision_expecting(&p, thin, 3, 2);
	assert_int_equal(thinp_io_flush(p.data), 0);
	provision_expecting(&p, thin, 4, 0);

	assert_int_equal(thinp_pool_commit(p.pool), 0);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write_zeroes(thin, 4096, 5 * BS + 4096), 0);
	expect_io(p.fault, 0, 0, 0, 0);
	assert_int_equal(thinp_thin_read(thin, got, BS, 5 * BS), 0);
	for (size_t i = 0; i < BS; i++)
		if (got[i])
			fail_msg("byte %zu of a zeroed block is %u", i, got[i]);
	thinp_io_fault_reset_counters(p.fault);
	assert_int_equal(thinp_pool_commit(p.pool), 0);
	assert_int_equal(thinp_io_fault_counters(p.fault, THINP_IO_KIND_FLUSH, &flushes, NULL), 0);
	assert_int_equal(flushes, 1);

	thinp_thin_close(thin);
	iopool_close(&p);
	free(got);
}

/*
 * A read spanning several blocks looks them up at once and reads each run
 * of blocks that is contiguous on the data device with one device read;
 * holes read as zeroes without device I/O.
 */
static void test_multi_block_read_io_counts(void **state)
{
	uint8_t *w = malloc(4 * BS), *got = malloc(6 * BS);
	struct iopool p;
	thinp_thin *thin;

	iopool_open(&p, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	fill(w, 4 * BS, 3);
	assert_int_equal(thinp_thin_write(thin, w, 4 * BS, 0), 0); /* data blocks in order */
	take_counts(p.fault);
	assert_int_equal(thinp_thin_read(thin, got, 4 * BS - 200, 100), 0);
	expect_counts(p.fault, 1, 0, 0);
	assert_memory_equal(got, w + 100, 4 * BS - 200);

	/* A hole at virtual block 4, then block 5 mapped: two device reads. */
	assert_int_equal(thinp_thin_write(thin, w, BS, 5 * BS), 0);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_read(thin, got, 6 * BS, 0), 0);
	expect_counts(p.fault, 2, 0, 0);
	assert_memory_equal(got, w, 4 * BS);
	for (size_t i = 4 * BS; i < 5 * BS; i++)
		if (got[i])
			fail_msg("hole byte %zu is %u", i, got[i]);
	assert_memory_equal(got + 5 * BS, w, BS);
	thinp_thin_close(thin);
	iopool_close(&p);
	free(w);
	free(got);
}

/* ---- user callbacks ---- */

/* A log callback that checks it runs with no pool lock held and calls back
 * into the pool. */
struct reentrant_log {
	thinp_pool *pool;
	unsigned calls, unlocked, status_ok, errmsg_ok;
	int commit_result;
};

static bool pool_locks_free(thinp_pool *pool)
{
	bool md_free, state_free;

	/* The OS layer has no trylock: the POSIX backend's pthread objects. */
	md_free = pthread_rwlock_trywrlock(&pool->md_lock.l) == 0;
	if (md_free)
		thinp_os_rwlock_write_unlock(&pool->md_lock);
	state_free = pthread_mutex_trylock(&pool->state_lock.m) == 0;
	if (state_free)
		thinp_os_mutex_unlock(&pool->state_lock);
	return md_free && state_free;
}

static void reentrant_log_fn(int level, const char *msg, void *ctx)
{
	struct reentrant_log *l = ctx;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;

	if (!l->pool)
		return; /* still opening */
	l->calls++;
	l->unlocked += pool_locks_free(l->pool);
	l->status_ok += thinp_pool_get_status(l->pool, &st) == 0;
	l->errmsg_ok += thinp_pool_errmsg(l->pool, NULL, 0) > 0;
	l->commit_result = thinp_pool_commit(l->pool);
}

/*
 * Messages logged deep inside the pool (running out of data space inside a
 * provisioning operation; a failed commit under the metadata lock) reach a
 * callback that calls thinp_pool_get_status, thinp_pool_errmsg and
 * thinp_pool_commit: nothing deadlocks, and no pool lock is held.
 */
static void test_log_callback_calls_back(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	struct reentrant_log l = { 0 };
	struct iopool p;
	thinp_thin *thin;

	o.features = THINP_POOL_ERROR_IF_NO_SPACE;
	o.log_fn = reentrant_log_fn;
	o.log_ctx = &l;
	iopool_open_sized(&p, 2, &o);
	l.pool = p.pool;
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_write(thin, "a", 1, 0), 0);
	assert_int_equal(thinp_thin_write(thin, "b", 1, BS), 0);
	assert_int_equal(l.calls, 0);
	assert_int_equal(thinp_thin_write(thin, "c", 1, 2 * BS), -ENOSPC);
	assert_true(l.calls >= 1);
	assert_int_equal(l.unlocked, l.calls);
	assert_int_equal(l.status_ok, l.calls);
	assert_int_equal(l.errmsg_ok, l.calls);
	assert_int_equal(l.commit_result, 0);

	/* A commit that fails logs under the metadata lock. */
	l.calls = l.unlocked = l.status_ok = 0;
	md_store_faults(p.store)->fail_commit_at = 1;
	assert_int_equal(thinp_thin_write(thin, "d", 1, 1), 0);
	assert_int_equal(thinp_pool_create_thin(p.pool, 1), -EIO);
	assert_true(l.calls >= 1);
	assert_int_equal(l.unlocked, l.calls);
	assert_int_equal(l.status_ok, l.calls);
	assert_int_equal(l.commit_result, -EROFS); /* the pool failed */
	thinp_thin_close(thin);
	thinp_pool_close(p.pool);
	p.pool = NULL;
	thinp_io_close(p.data);
	thinp_io_fault_free(p.fault);
	thinp_io_close(p.mem);
	md_store_free(p.store);
}

struct resizer {
	uint64_t to;
	unsigned calls;
	int result;
	bool unlocked;
};

static void resize_on_low_water(thinp_pool *pool, uint64_t free_blocks, void *ctx)
{
	struct resizer *rs = ctx;

	rs->calls++;
	rs->unlocked = pool_locks_free(pool);
	rs->result = thinp_pool_resize_data(pool, rs->to);
}

/* A low-water callback that grows the pool: the write that crossed the
 * mark completes, the pool has the new size, later writes use it. */
static void test_low_water_callback_resizes(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	struct resizer rs = { 16, 0, 1, false };
	struct iopool p;
	thinp_thin *thin;

	o.low_water_blocks = 2;
	o.low_water_fn = resize_on_low_water;
	o.low_water_ctx = &rs;
	o.features = THINP_POOL_ERROR_IF_NO_SPACE;
	iopool_open_sized(&p, 8, &o);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	for (uint64_t v = 0; v < 6; v++)
		assert_int_equal(thinp_thin_write(thin, "x", 1, v * BS), 0);
	assert_int_equal(rs.calls, 1);
	assert_true(rs.unlocked);
	assert_int_equal(rs.result, 0);
	assert_int_equal(thinp_pool_get_status(p.pool, &st), 0);
	assert_int_equal(st.data_total, 16);
	for (uint64_t v = 6; v < 14; v++)
		assert_int_equal(thinp_thin_write(thin, "x", 1, v * BS), 0);
	thinp_thin_close(thin);
	iopool_close(&p);
}

/* ---- a data device that holds chosen requests ---- */

/*
 * A wrapper over a lower device that holds every request of the kinds in
 * `kinds` touching block `block` until opened, before the request reaches
 * the lower device (so a held write has not landed, a held read has not
 * read anything yet).
 */
struct gate {
	thinp_io *lower;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned kinds;  /* THINP_IO_KIND_BIT()s; 0: nothing held */
	uint64_t block;
	unsigned held;
};

static void gate_pass(struct gate *g, unsigned kind, uint64_t len, uint64_t off)
{
	pthread_mutex_lock(&g->lock);
	if ((g->kinds & THINP_IO_KIND_BIT(kind)) && off < (g->block + 1) * BS &&
	    g->block * BS < off + len) {
		g->held++;
		pthread_cond_broadcast(&g->cond);
		while (g->kinds & THINP_IO_KIND_BIT(kind))
			pthread_cond_wait(&g->cond, &g->lock);
		g->held--;
	}
	pthread_mutex_unlock(&g->lock);
}

static int g_read(void *ctx, void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct gate *g = ctx;

	gate_pass(g, THINP_IO_KIND_READ, len, off);
	return thinp_io_read(g->lower, buf, len, off, 0);
}

static int g_write(void *ctx, const void *buf, uint64_t len, uint64_t off, uint32_t flags)
{
	struct gate *g = ctx;

	gate_pass(g, THINP_IO_KIND_WRITE, len, off);
	return thinp_io_write(g->lower, buf, len, off, 0);
}

static int g_flush(void *ctx)
{
	return thinp_io_flush(((struct gate *)ctx)->lower);
}

static int g_size(void *ctx, uint64_t *bytes)
{
	return thinp_io_size(((struct gate *)ctx)->lower, bytes);
}

static int g_discard(void *ctx, uint64_t len, uint64_t off, uint32_t flags)
{
	struct gate *g = ctx;

	gate_pass(g, THINP_IO_KIND_DISCARD, len, off);
	return thinp_io_discard(g->lower, len, off, 0);
}

static thinp_io *gate_open(struct gate *g, thinp_io *lower)
{
	thinp_io_ops ops = THINP_IO_OPS_INIT;
	thinp_io *io;

	memset(g, 0, sizeof(*g));
	g->lower = lower;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	ops.caps = THINP_IO_CAP_THREADSAFE | THINP_IO_CAP_DISCARD;
	ops.read = g_read;
	ops.write = g_write;
	ops.flush = g_flush;
	ops.size = g_size;
	ops.discard = g_discard;
	assert_int_equal(thinp_io_new(&io, &ops, g, 0), 0);
	return io;
}

static void gate_set(struct gate *g, unsigned kinds, uint64_t block)
{
	pthread_mutex_lock(&g->lock);
	g->kinds = kinds;
	g->block = block;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static bool gate_holds(struct gate *g)
{
	bool held;

	pthread_mutex_lock(&g->lock);
	held = g->held > 0;
	pthread_mutex_unlock(&g->lock);
	return held;
}

/* Poll until done(arg) (a bounded wait: it asserts that something happens,
 * never how fast). */
static void wait_until(bool (*done)(void *), void *arg, const char *what)
{
	for (unsigned i = 0; !done(arg); i++) {
		if (i > TEST_WAIT_SECONDS * 1000u)
			fail_msg("timed out waiting for %s", what);
		usleep(1000);
	}
}

static bool gate_held(void *arg)
{
	return gate_holds(arg);
}

/* A pool over the model on a gated data device over the fault wrapper (for
 * its counters; the wrapper serializes requests, so the gate sits above
 * it). */
struct gpool {
	struct md_store *store;
	thinp_io *mem, *counted, *data;
	thinp_io_fault *fault;
	struct gate gate;
	thinp_pool *pool;
};

static void gpool_open(struct gpool *p, uint64_t blocks, const thinp_pool_options *opts)
{
	struct pool_md *md;

	p->store = md_store_new(BS >> 9, blocks, 1024);
	assert_non_null(p->store);
	assert_int_equal(thinp_io_open_memory(&p->mem, blocks * BS, 0), 0);
	assert_int_equal(thinp_io_open_fault(&p->counted, &p->fault, p->mem, 0), 0);
	p->data = gate_open(&p->gate, p->counted);
	assert_int_equal(md_model_open(p->store, &md), 0);
	assert_int_equal(pool_create(&p->pool, md, NULL, p->data, opts), 0);
}

static void gpool_close(struct gpool *p)
{
	assert_int_equal(thinp_pool_close(p->pool), 0);
	thinp_io_close(p->data);
	thinp_io_close(p->counted);
	thinp_io_fault_free(p->fault);
	thinp_io_close(p->mem);
	md_store_free(p->store);
}

/* One pool call on its own thread. */
struct job {
	pthread_t tid;
	thinp_thin *thin;
	thinp_pool *pool;
	int kind; /* 'r' read, 'w' write, 'd' discard, 'c' commit, 's' snapshot */
	void *buf;
	uint64_t len, off;
	int result;
	bool done;
	pthread_mutex_t lock;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	int r = -EINVAL;

	switch (j->kind) {
	case 'r': r = thinp_thin_read(j->thin, j->buf, j->len, j->off); break;
	case 'w': r = thinp_thin_write(j->thin, j->buf, j->len, j->off); break;
	case 'd': r = thinp_thin_discard(j->thin, j->len, j->off); break;
	case 'c': r = thinp_pool_commit(j->pool); break;
	case 's': r = thinp_pool_create_snap(j->pool, j->len, j->off); break;
	}
	pthread_mutex_lock(&j->lock);
	j->result = r;
	j->done = true;
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static void job_start(struct job *j, int kind, thinp_thin *thin, thinp_pool *pool, void *buf,
		      uint64_t len, uint64_t off)
{
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->thin = thin;
	j->pool = pool;
	j->buf = buf;
	j->len = len;
	j->off = off;
	pthread_mutex_init(&j->lock, NULL);
	assert_int_equal(pthread_create(&j->tid, NULL, job_main, j), 0);
}

static bool job_done(void *arg)
{
	struct job *j = arg;
	bool d;

	pthread_mutex_lock(&j->lock);
	d = j->done;
	pthread_mutex_unlock(&j->lock);
	return d;
}

static int job_join(struct job *j)
{
	pthread_join(j->tid, NULL);
	pthread_mutex_destroy(&j->lock);
	return j->result;
}

/* Wait until a commit waits for the operations in flight. */
static bool commit_is_waiting(void *arg)
{
	thinp_pool *pool = arg;
	bool w;

	thinp_os_mutex_lock(&pool->state_lock);
	w = pool->commit_waiting > 0;
	thinp_os_mutex_unlock(&pool->state_lock);
	return w;
}

static void wait_commit_waiting(thinp_pool *pool)
{
	wait_until(commit_is_waiting, pool, "the commit to wait for the discard batch");
}

/* The job has finished, or waits for I/O epochs to drain. */
static thinp_pool *epoch_pool;
static struct job *epoch_job;

static bool done_or_waiting_for_epochs(void *unused)
{
	unsigned w;

	thinp_os_mutex_lock(&epoch_pool->epochs.lock);
	w = epoch_pool->epochs.waiters;
	thinp_os_mutex_unlock(&epoch_pool->epochs.lock);
	return w > 0 || job_done(epoch_job);
}

static void wait_done_or_epoch_wait(thinp_pool *pool, struct job *j)
{
	epoch_pool = pool;
	epoch_job = j;
	wait_until(done_or_waiting_for_epochs, NULL, "the job to end or wait for I/O epochs");
}

/* On a device without its own write-zeroes (the gate declares none),
 * provisioning assembles the block and writes it once. */
static void test_provision_without_write_zeroes(void **state)
{
	uint8_t *w = malloc(4096), *got = malloc(BS);
	struct gpool p;
	thinp_thin *thin;

	gpool_open(&p, NBLOCKS, NULL);
	memset(got, 0xEE, BS); /* garbage must not show through */
	for (uint64_t b = 0; b < NBLOCKS; b++)
		assert_int_equal(thinp_io_write(p.mem, got, BS, b * BS, 0), 0);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	fill(w, 4096, 6);
	take_counts(p.fault);
	assert_int_equal(thinp_thin_write(thin, w, 4096, BS + 4096), 0);
	expect_counts(p.fault, 0, 1, BS);
	assert_int_equal(thinp_thin_read(thin, got, BS, BS), 0);
	assert_memory_equal(got + 4096, w, 4096);
	for (size_t i = 0; i < BS; i++)
		if ((i < 4096 || i >= 8192) && got[i])
			fail_msg("byte %zu not zeroed", i);
	thinp_thin_close(thin);
	gpool_close(&p);
	free(w);
	free(got);
}

/*
 * While a read of one volume is held in the data device, metadata changes
 * go on: provisioning on another volume, a commit, a snapshot of a third.
 * (With a metadata lock held across the read, each would wait for it.)
 */
static void test_metadata_changes_do_not_wait_for_data_io(void **state)
{
	uint8_t *buf = malloc(BS), *rd = malloc(BS);
	struct gpool p;
	thinp_thin *a, *b;
	struct job reader, writer, commit, snap;

	gpool_open(&p, NBLOCKS, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	assert_int_equal(thinp_pool_create_thin(p.pool, 1), 0);
	assert_int_equal(thinp_pool_create_thin(p.pool, 2), 0);
	a = topen(p.pool, 0, VSIZE, NULL);
	b = topen(p.pool, 1, VSIZE, NULL);
	fill(buf, BS, 7);
	assert_int_equal(thinp_thin_write(a, buf, BS, 0), 0);
	gate_set(&p.gate, THINP_IO_KIND_BIT(THINP_IO_KIND_READ), 0);

	job_start(&reader, 'r', a, p.pool, rd, 4096, 0);
	wait_until(gate_held, &p.gate, "the read to reach the device");
	job_start(&writer, 'w', b, p.pool, buf, 4096, 5 * BS);
	wait_until(job_done, &writer, "a provisioning write on another volume");
	assert_int_equal(job_join(&writer), 0);
	job_start(&commit, 'c', NULL, p.pool, NULL, 0, 0);
	wait_until(job_done, &commit, "a commit");
	assert_int_equal(job_join(&commit), 0);
	job_start(&snap, 's', NULL, p.pool, NULL, 3, 2);
	wait_until(job_done, &snap, "a snapshot");
	assert_int_equal(job_join(&snap), 0);
	assert_false(job_done(&reader));

	gate_set(&p.gate, 0, 0);
	assert_int_equal(job_join(&reader), 0);
	assert_memory_equal(rd, buf, 4096);
	thinp_thin_close(a);
	thinp_thin_close(b);
	gpool_close(&p);
	free(buf);
	free(rd);
}

/*
 * An in-place write in flight when a snapshot shares its block lands before
 * a copy-on-write of that block reads it: the origin keeps both writes.
 */
static void test_cow_waits_for_in_place_write_before_snapshot(void **state)
{
	uint8_t *w1 = malloc(4096), *w2 = malloc(4096), *got = malloc(BS);
	struct gpool p;
	thinp_thin *a;
	struct job inplace, snap, cow;

	gpool_open(&p, NBLOCKS, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	a = topen(p.pool, 0, VSIZE, NULL);
	memset(got, 0, BS);
	assert_int_equal(thinp_thin_write(a, got, BS, 0), 0); /* block 0, unshared */
	fill(w1, 4096, 1);
	fill(w2, 4096, 2);
	gate_set(&p.gate, THINP_IO_KIND_BIT(THINP_IO_KIND_WRITE), 0);
	job_start(&inplace, 'w', a, p.pool, w1, 4096, 0);
	wait_until(gate_held, &p.gate, "the in-place write to reach the device");
	job_start(&snap, 's', NULL, p.pool, NULL, 1, 0);
	wait_until(job_done, &snap, "the snapshot");
	assert_int_equal(job_join(&snap), 0);

	/* Breaking the sharing must wait for the write held in the device. */
	job_start(&cow, 'w', a, p.pool, w2, 4096, 8192);
	wait_done_or_epoch_wait(p.pool, &cow);
	gate_set(&p.gate, 0, 0);
	assert_int_equal(job_join(&inplace), 0);
	assert_int_equal(job_join(&cow), 0);
	assert_int_equal(thinp_thin_read(a, got, BS, 0), 0);
	assert_memory_equal(got, w1, 4096);
	assert_memory_equal(got + 8192, w2, 4096);
	thinp_thin_close(a);
	gpool_close(&p);
	free(w1);
	free(w2);
	free(got);
}

/* A discard passed down waits for a read of the block that was in flight
 * before the unmap: the device discards nothing while the read is held. */
static void test_passdown_waits_for_older_read(void **state)
{
	uint8_t *buf = malloc(BS), *rd = malloc(BS);
	struct gpool p;
	thinp_thin *a;
	struct job reader, discard;
	uint64_t discards;

	gpool_open(&p, NBLOCKS, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	a = topen(p.pool, 0, VSIZE, NULL);
	fill(buf, BS, 3);
	assert_int_equal(thinp_thin_write(a, buf, BS, 0), 0);
	thinp_io_fault_reset_counters(p.fault);
	gate_set(&p.gate, THINP_IO_KIND_BIT(THINP_IO_KIND_READ), 0);
	job_start(&reader, 'r', a, p.pool, rd, BS, 0);
	wait_until(gate_held, &p.gate, "the read to reach the device");
	job_start(&discard, 'd', a, p.pool, NULL, BS, 0);
	wait_done_or_epoch_wait(p.pool, &discard);
	assert_int_equal(thinp_io_fault_counters(p.fault, THINP_IO_KIND_DISCARD, &discards, NULL),
			 0);
	assert_int_equal(discards, 0);
	gate_set(&p.gate, 0, 0);
	assert_int_equal(job_join(&reader), 0);
	assert_memory_equal(rd, buf, BS);
	assert_int_equal(job_join(&discard), 0);
	assert_int_equal(thinp_io_fault_counters(p.fault, THINP_IO_KIND_DISCARD, &discards, NULL),
			 0);
	assert_int_equal(discards, 1);
	thinp_thin_close(a);
	gpool_close(&p);
	free(buf);
	free(rd);
}

static uint64_t flushes(thinp_io_fault *f)
{
	uint64_t n;

	assert_int_equal(thinp_io_fault_counters(f, THINP_IO_KIND_FLUSH, &n, NULL), 0);
	thinp_io_fault_reset_counters(f);
	return n;
}

/*
 * A commit flushes the data device only when something was written to or
 * discarded from it since the last flush (and the first commit always):
 * messages and flushes with no data I/O commit the metadata alone, and a
 * failed data flush still fails the commit, the pool going to FAIL mode
 * without committing the metadata that points at the data.
 */
static void test_commit_flushes_data_only_after_data_io(void **state)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	uint8_t w[4096];
	struct iopool p;
	thinp_thin *thin;
	uint64_t commits;

	iopool_open(&p, NULL);
	thinp_io_fault_reset_counters(p.fault);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	assert_int_equal(flushes(p.fault), 1);
	assert_int_equal(thinp_pool_create_thin(p.pool, 1), 0);
	assert_int_equal(flushes(p.fault), 0);
	thin = topen(p.pool, 0, VSIZE, NULL);
	assert_int_equal(thinp_thin_flush(thin), 0);
	assert_int_equal(flushes(p.fault), 0);

	fill(w, sizeof(w), 3);
	assert_int_equal(thinp_thin_write(thin, w, sizeof(w), BS), 0);
	assert_int_equal(thinp_thin_flush(thin), 0);
	assert_int_equal(flushes(p.fault), 1);
	assert_int_equal(thinp_pool_create_snap(p.pool, 2, 0), 0);
	assert_int_equal(flushes(p.fault), 0);
	/* An unshared block's discard reaches the device. */
	assert_int_equal(thinp_thin_write(thin, w, sizeof(w), 4 * BS), 0);
	assert_int_equal(thinp_thin_flush(thin), 0);
	assert_int_equal(flushes(p.fault), 1);
	assert_int_equal(thinp_thin_discard(thin, BS, 4 * BS), 0);
	assert_int_equal(thinp_thin_flush(thin), 0);
	assert_int_equal(flushes(p.fault), 1);

	/* A failed data flush: no metadata commit, FAIL mode. */
	assert_int_equal(thinp_thin_write(thin, w, sizeof(w), 5 * BS), 0);
	commits = md_store_commits(p.store);
	assert_int_equal(thinp_io_fault_fail_nth(p.fault, THINP_IO_KIND_BIT(THINP_IO_KIND_FLUSH), 1,
					       -EIO, 0), 0);
	assert_int_not_equal(thinp_thin_flush(thin), 0);
	assert_int_equal(md_store_commits(p.store), commits);
	assert_int_equal(thinp_pool_get_status(p.pool, &st), 0);
	assert_int_equal(st.mode, THINP_POOL_MODE_FAIL);
	thinp_thin_close(thin);
	thinp_pool_close(p.pool);
	thinp_io_close(p.data);
	thinp_io_fault_free(p.fault);
	thinp_io_close(p.mem);
	md_store_free(p.store);
	(void)state;
}

/*
 * A block freed (discard without passdown) and committed while a read of it
 * is in flight is not handed to a new write before the read is done: the
 * read returns the old data.
 */
static void test_freed_block_not_reused_under_a_read(void **state)
{
	thinp_pool_options o = THINP_POOL_OPTIONS_INIT;
	uint8_t *buf = malloc(BS), *rd = malloc(BS), *w = malloc(BS);
	struct gpool p;
	thinp_thin *a;
	thinp_mapping m = THINP_MAPPING_INIT;
	struct job reader, writer;

	o.features = THINP_POOL_NO_DISCARD_PASSDOWN;
	gpool_open(&p, 4, &o);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	a = topen(p.pool, 0, VSIZE, NULL);
	fill(buf, BS, 4);
	for (uint64_t v = 0; v < 4; v++)
		assert_int_equal(thinp_thin_write(a, buf, BS, v * BS), 0);
	assert_int_equal(thinp_pool_thin_map(p.pool, 0, 2, &m), 0);
	gate_set(&p.gate, THINP_IO_KIND_BIT(THINP_IO_KIND_READ), m.data_block);
	job_start(&reader, 'r', a, p.pool, rd, BS, 2 * BS);
	wait_until(gate_held, &p.gate, "the read to reach the device");
	assert_int_equal(thinp_thin_discard(a, BS, 2 * BS), 0);
	assert_int_equal(thinp_pool_commit(p.pool), 0);
	/* The only free block is the one being read. */
	fill(w, BS, 9);
	job_start(&writer, 'w', a, p.pool, w, BS, 7 * BS);
	wait_done_or_epoch_wait(p.pool, &writer);
	gate_set(&p.gate, 0, 0);
	assert_int_equal(job_join(&reader), 0);
	assert_memory_equal(rd, buf, BS);
	assert_int_equal(job_join(&writer), 0);
	assert_int_equal(thinp_pool_thin_map(p.pool, 0, 7, &m), 0);
	assert_int_equal(thinp_thin_read(a, rd, BS, 7 * BS), 0);
	assert_memory_equal(rd, w, BS);
	thinp_thin_close(a);
	gpool_close(&p);
	free(buf);
	free(rd);
	free(w);
}

/*
 * A long discard is one metadata operation per batch of 256 mappings: a
 * commit asked for while the first batch is passed down runs before the
 * second batch starts, and records a valid partial discard (seen after a
 * power loss: the first batch unmapped, the rest still mapped).
 */
static void test_commit_between_discard_batches(void **state)
{
	const uint64_t nblocks = 300;
	uint8_t *buf = malloc(BS);
	struct pool_md *md;
	thinp_pool *pool;
	thinp_mapping m = THINP_MAPPING_INIT;
	struct gpool p;
	thinp_thin *a;
	struct job discard, commit;

	gpool_open(&p, nblocks + 4, NULL);
	assert_int_equal(thinp_pool_create_thin(p.pool, 0), 0);
	a = topen(p.pool, 0, nblocks * BS, NULL);
	fill(buf, BS, 8);
	for (uint64_t v = 0; v < nblocks; v++)
		assert_int_equal(thinp_thin_write(a, buf, BS, v * BS), 0);
	assert_int_equal(thinp_thin_flush(a), 0);
	assert_int_equal(thinp_pool_thin_map(p.pool, 0, 0, &m), 0);
	gate_set(&p.gate, THINP_IO_KIND_BIT(THINP_IO_KIND_DISCARD), m.data_block);
	job_start(&discard, 'd', a, p.pool, NULL, nblocks * BS, 0);
	wait_until(gate_held, &p.gate, "the first batch's passdown to reach the device");
	job_start(&commit, 'c', NULL, p.pool, NULL, 0, 0);
	wait_commit_waiting(p.pool);
	gate_set(&p.gate, 0, 0);
	assert_int_equal(job_join(&commit), 0);
	assert_int_equal(job_join(&discard), 0);
	assert_int_equal(thinp_pool_thin_map(p.pool, 0, nblocks - 1, &m), -ENODATA);

	/* Power loss: the commit in between is what survives. */
	thinp_thin_close(a);
	pool_abandon(p.pool);
	assert_int_equal(md_model_open(p.store, &md), 0);
	assert_int_equal(pool_create(&pool, md, NULL, p.data, NULL), 0);
	p.pool = pool;
	assert_int_equal(thinp_pool_thin_map(pool, 0, 0, &m), -ENODATA);
	assert_int_equal(thinp_pool_thin_map(pool, 0, 255, &m), -ENODATA);
	assert_int_equal(thinp_pool_thin_map(pool, 0, 256, &m), 0);
	assert_int_equal(thinp_pool_thin_map(pool, 0, nblocks - 1, &m), 0);
	gpool_close(&p);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cow_and_provision_io_counts),
		cmocka_unit_test(test_origin_and_skip_zeroing_io_counts),
		cmocka_unit_test(test_provision_without_write_zeroes),
		cmocka_unit_test(test_provision_into_zeroes_skips_zeroing),
		cmocka_unit_test(test_multi_block_read_io_counts),
		cmocka_unit_test(test_log_callback_calls_back),
		cmocka_unit_test(test_low_water_callback_resizes),
		cmocka_unit_test(test_metadata_changes_do_not_wait_for_data_io),
		cmocka_unit_test(test_cow_waits_for_in_place_write_before_snapshot),
		cmocka_unit_test(test_passdown_waits_for_older_read),
		cmocka_unit_test(test_freed_block_not_reused_under_a_read),
		cmocka_unit_test(test_commit_between_discard_batches),
		cmocka_unit_test(test_commit_flushes_data_only_after_data_io),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
