/*
 * The pool: lifecycle, modes, commit policy and the pool "messages"
 * (create/snapshot/delete volumes, resize, transaction id, metadata snapshot).
 *
 * Commit policy, as the kernel's: a commit flushes the data device first, so
 * that data written to newly mapped blocks is durable before metadata points
 * at it, then commits the metadata. The data flush is skipped when nothing
 * was written to (or discarded from) the data device since the last one:
 * a message's commit then costs the metadata writes alone. Commits happen on
 * every message, on thinp_thin_flush()/thinp_pool_commit() (shared between
 * concurrent callers), every commit_interval_ms if set, when space freed by
 * the open transaction is needed, and on close.
 *
 * Failure policy: a metadata operation that fails with an I/O or corruption
 * error puts the pool in FAIL mode for good (the in-memory state can no
 * longer be trusted); running out of metadata space rolls the open
 * transaction back to the last commit and makes the pool READ_ONLY until the
 * metadata device grows. A failed data-device flush is a failed commit.
 */
#include "os/os.h"

#include "pool/map_cache.h"
#include "pool/mode.h"
#include "pool/origin_ops.h"
#include "pool/pool_internal.h"
#include "util/abi_struct.h"
#include "util/compiler.h"

#define SECTOR_SHIFT 9
#define MAX_THIN_ID ((1ull << 24) - 1)
#define MAX_DATA_BLOCKS (1ull << 40)

/* ---- errors and modes ---- */

static int pool_verr(thinp_pool *pool, int err, const char *fmt, va_list ap)
{
	char msg[160];

	thinp_os_vsnprintf(msg, sizeof(msg), fmt, ap);
	thinp_os_mutex_lock(&pool->state_lock);
	snprintf(pool->errmsg, sizeof(pool->errmsg), "%s: %s", msg, thinp_strerror(err));
	thinp_os_mutex_unlock(&pool->state_lock);
	tlog(&pool->log, THINP_LOG_ERROR, "%s: %s", msg, thinp_strerror(err));
	return err;
}

int pool_err(thinp_pool *pool, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = pool_verr(pool, err, fmt, ap);
	va_end(ap);
	return err;
}

int pool_report(thinp_pool *pool, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = pool_verr(pool, err, fmt, ap);
	va_end(ap);
	return pool_done(pool, err);
}

static void set_mode(thinp_pool *pool, uint32_t mode)
{
	thinp_os_mutex_lock(&pool->state_lock);
	/* FAIL is sticky; nothing leaves it. */
	if (pool->mode != THINP_POOL_MODE_FAIL)
		pool->mode = mode;
	thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
}

static uint32_t get_mode(thinp_pool *pool)
{
	uint32_t m;

	thinp_os_mutex_lock(&pool->state_lock);
	m = pool->mode;
	thinp_os_mutex_unlock(&pool->state_lock);
	return m;
}

int pool_check_writable(thinp_pool *pool)
{
	uint32_t m = get_mode(pool);

	return m == THINP_POOL_MODE_RW || m == THINP_POOL_MODE_OUT_OF_DATA_SPACE ? 0 : -EROFS;
}

int pool_check_readable(thinp_pool *pool)
{
	return get_mode(pool) == THINP_POOL_MODE_FAIL ? -EIO : 0;
}

/* Carry out the decision of mode.c. md_lock is held (exclusively when the
 * decision rolls back or sets needs_check: only changes ask for those). */
static int apply_decision(thinp_pool *pool, const struct pool_mode_out *d, const char *what)
{
	if (d->rollback) {
		int r = pool->md->ops->abort(pool->md);

		pool->md_dirty = false;
		pool->md_epoch++;
		if (r) {
			set_mode(pool, THINP_POOL_MODE_FAIL);
			return pool_err(pool, -EIO, "%s: %s, and the rollback failed", what,
					d->why);
		}
	}
	if (d->meta_space_ro) {
		thinp_os_mutex_lock(&pool->state_lock);
		pool->meta_space_ro = true;
		thinp_os_mutex_unlock(&pool->state_lock);
	}
	if (d->mode != get_mode(pool))
		set_mode(pool, d->mode);
	if (d->needs_check)
		pool->md->ops->set_needs_check(pool->md);
	if (!d->why)
		return pool_err(pool, d->err, "%s", what);
	return pool_err(pool, d->err, "%s: %s", what, d->why);
}

static int md_failed(thinp_pool *pool, int err, const char *what, bool change)
{
	struct pool_mode_in in = { .mode = get_mode(pool), .err = err, .change = change };
	struct pool_md_info info;
	struct pool_mode_out d;

	/* If even the facts cannot be read, assume the worst. */
	in.damaged = change && (pool->md->ops->info(pool->md, &info) || info.tx_damaged);
	pool_mode_decide(&in, &d);
	return apply_decision(pool, &d, what);
}

int pool_md_failed_locked(thinp_pool *pool, int err, const char *what)
{
	return md_failed(pool, err, what, true);
}

int pool_md_read_failed(thinp_pool *pool, int err, const char *what)
{
	return md_failed(pool, err, what, false);
}

int pool_done(thinp_pool *pool, int r)
{
	pool_log_deliver(pool->logq);
	return r;
}

size_t thinp_pool_errmsg(thinp_pool *pool, char *buf, size_t len)
{
	if (!pool)
		return thinp_abi_copy_string(buf, len, "", NULL);
	return thinp_abi_copy_string(buf, len, pool->errmsg, &pool->state_lock);
}

/* ---- metadata operations in flight versus commit ---- */

void pool_op_begin(thinp_pool *pool)
{
	thinp_os_mutex_lock(&pool->state_lock);
	while (pool->commit_waiting)
		thinp_os_cond_wait(&pool->state_cond, &pool->state_lock);
	pool->ops_inflight++;
	thinp_os_mutex_unlock(&pool->state_lock);
}

void pool_op_end(thinp_pool *pool)
{
	thinp_os_mutex_lock(&pool->state_lock);
	if (--pool->ops_inflight == 0)
		thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
}

/* ---- commit ---- */

/* The open transaction is committed: the data blocks it freed may now be
 * handed out, once the I/Os in flight that may still use them are done. */
static void committed_locked(thinp_pool *pool)
{
	pool->md_dirty = false;
	if (pool->txn_frees)
		pool->realloc_point = io_epoch_close(&pool->epochs);
	pool->txn_frees = false;
}

/* One commit: data flush, then metadata. Called by the one thread that won
 * the right to commit (pool->committing). Waits for in-flight operations. */
static int do_commit(thinp_pool *pool)
{
	int r = 0;

	thinp_os_mutex_lock(&pool->state_lock);
	pool->commit_waiting++;
	while (pool->ops_inflight)
		thinp_os_cond_wait(&pool->state_cond, &pool->state_lock);
	thinp_os_mutex_unlock(&pool->state_lock);

	/* Cleared before the flush starts: a write returning later sets it
	 * again, and the next commit flushes that write. */
	if (thinp_os_atomic_bool_exchange(&pool->data_written, false))
		r = thinp_io_flush(pool->data_io);
	if (r) {
		set_mode(pool, THINP_POOL_MODE_FAIL);
		pool_err(pool, r, "data device flush failed, pool is in fail mode");
		goto out;
	}
	thinp_os_rwlock_write_lock(&pool->md_lock);
	if (pool->md_dirty && pool_check_writable(pool) == 0) {
		r = pool->md->ops->commit(pool->md);
		if (r)
			r = pool_md_failed_locked(pool, r, "metadata commit");
		else
			committed_locked(pool);
	}
	thinp_os_rwlock_write_unlock(&pool->md_lock);
out:
	thinp_os_mutex_lock(&pool->state_lock);
	pool->commit_waiting--;
	thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
	return r;
}

/*
 * Group commit. A caller needs a commit that *starts* after it arrived (one
 * already running may have flushed the data device before the caller's
 * writes completed). So it waits for any running commit, then either finds
 * that a commit started after its arrival has finished (and shares its
 * result) or runs one itself.
 */
int pool_flush_and_commit(thinp_pool *pool)
{
	uint64_t target, gen;
	int r;

	thinp_os_mutex_lock(&pool->state_lock);
	if (pool->mode == THINP_POOL_MODE_FAIL) {
		thinp_os_mutex_unlock(&pool->state_lock);
		return -EROFS;
	}
	target = pool->commits_started + 1;
	pool->commit_waiters++;
	while (pool->committing)
		thinp_os_cond_wait(&pool->state_cond, &pool->state_lock);
	pool->commit_waiters--;
	if (pool->commits_done >= target) {
		r = pool->last_commit_result;
		thinp_os_mutex_unlock(&pool->state_lock);
		return r;
	}
	pool->committing = true;
	gen = ++pool->commits_started;
	thinp_os_mutex_unlock(&pool->state_lock);

	r = do_commit(pool);

	thinp_os_mutex_lock(&pool->state_lock);
	pool->committing = false;
	pool->commits_done = gen;
	pool->last_commit_result = r;
	thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
	return r;
}

int thinp_pool_commit(thinp_pool *pool)
{
	int r;

	if (!pool)
		return -EINVAL;
	r = pool_check_writable(pool);
	if (r)
		return get_mode(pool) == THINP_POOL_MODE_FAIL ? -EROFS : r;
	return pool_done(pool, pool_flush_and_commit(pool));
}

/* ---- data allocation and the no-space policy ---- */

/* Did the -ENOSPC of alloc_data mean the metadata ran out (counting the
 * block needed a metadata block), rather than the data device? */
static bool meta_out_of_space_locked(thinp_pool *pool)
{
	struct pool_md_info info;

	return pool->md->ops->info(pool->md, &info) == 0 && info.meta_out_of_space;
}

/*
 * 0 if blocks freed by earlier transactions may be handed out now, else the
 * I/O epoch point to wait for first. A rollback since the last look gave
 * every block allocated after the last commit back to the free space, while
 * I/O to them may still be in flight: everything in flight now is waited
 * for.
 */
static uint64_t realloc_barrier_locked(thinp_pool *pool)
{
	if (pool->md_epoch != pool->alloc_md_epoch) {
		pool->realloc_point = io_epoch_close(&pool->epochs);
		pool->alloc_md_epoch = pool->md_epoch;
	}
	return io_epoch_passed(&pool->epochs, pool->realloc_point) ? 0 : pool->realloc_point;
}

/* *no_data: the data device is full (the caller may wait for space). */
static int alloc_once(thinp_pool *pool, uint64_t *block, uint64_t *epoch, uint64_t *io_ep,
		      bool *no_data)
{
	uint64_t barrier;
	int r;

	*no_data = false;
	thinp_os_rwlock_write_lock(&pool->md_lock);
	while ((barrier = realloc_barrier_locked(pool))) {
		thinp_os_rwlock_write_unlock(&pool->md_lock);
		io_epoch_wait(&pool->epochs, barrier);
		thinp_os_rwlock_write_lock(&pool->md_lock);
	}
	*epoch = pool->md_epoch;
	r = pool_check_writable(pool);
	if (!r) {
		r = pool->md->ops->alloc_data(pool->md, block);
		*no_data = r == -ENOSPC && !meta_out_of_space_locked(pool);
		if (r && !*no_data)
			r = pool_md_failed_locked(pool, r, "data block allocation");
		else if (!r)
			pool->md_dirty = true;
	}
	if (!r)
		*io_ep = io_epoch_enter(&pool->epochs);
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	return r;
}

/* ms from now, on the clock of thinp_os_cond_wait_until. */
static uint64_t deadline_after(uint32_t ms)
{
	return thinp_os_monotonic_ns() + (uint64_t)ms * 1000000u;
}

static int wait_state_until(thinp_pool *pool, uint64_t deadline)
{
	return thinp_os_cond_wait_until(&pool->state_cond, &pool->state_lock, deadline);
}

/* Out of data space: error at once, or wait for a resize (space_gen moves)
 * up to the timeout. Called outside any op bracket. */
static int wait_for_space(thinp_pool *pool)
{
	uint64_t deadline = 0;
	uint64_t gen;
	int r = 0;

	thinp_os_mutex_lock(&pool->state_lock);
	if (pool->mode == THINP_POOL_MODE_RW)
		pool->mode = THINP_POOL_MODE_OUT_OF_DATA_SPACE;
	gen = pool->space_gen;
	if ((pool->features & THINP_POOL_ERROR_IF_NO_SPACE) || pool->no_space_error) {
		thinp_os_mutex_unlock(&pool->state_lock);
		return -ENOSPC;
	}
	if (pool->no_space_timeout_ms)
		deadline = deadline_after(pool->no_space_timeout_ms);
	while (pool->space_gen == gen && !pool->stopping && pool->mode != THINP_POOL_MODE_FAIL) {
		if (!pool->no_space_timeout_ms) {
			thinp_os_cond_wait(&pool->state_cond, &pool->state_lock);
			continue;
		}
		if (wait_state_until(pool, deadline) == -ETIMEDOUT) {
			if (pool->space_gen == gen)
				pool->no_space_error = true;
			break;
		}
	}
	if (pool->space_gen == gen)
		r = -ENOSPC;
	thinp_os_mutex_unlock(&pool->state_lock);
	return r;
}

/* Space was found again (freed by a discard or delete and a commit). */
static void leave_no_space_mode(thinp_pool *pool)
{
	thinp_os_mutex_lock(&pool->state_lock);
	if (pool->mode == THINP_POOL_MODE_OUT_OF_DATA_SPACE)
		pool->mode = THINP_POOL_MODE_RW;
	thinp_os_mutex_unlock(&pool->state_lock);
}

int pool_alloc_data(thinp_pool *pool, uint64_t *block, uint64_t *epoch, uint64_t *io_ep)
{
	bool committed = false, no_data;
	int r;

	for (;;) {
		r = alloc_once(pool, block, epoch, io_ep, &no_data);
		if (!r)
			leave_no_space_mode(pool);
		if (!no_data)
			return r;
		/* Blocks freed in the open transaction become usable after a
		 * commit; try that once before declaring the pool full. The
		 * op bracket is left so the commit can proceed. */
		pool_op_end(pool);
		if (!committed) {
			committed = true;
			r = pool_flush_and_commit(pool);
		} else {
			r = wait_for_space(pool);
			if (!r)
				committed = false;
		}
		pool_op_begin(pool);
		if (r)
			return r == -ENOSPC ? pool_err(pool, r, "out of data space") : r;
	}
}

void pool_check_low_water(thinp_pool *pool)
{
	struct pool_md_info info;
	bool fire = false;

	if (!pool->low_water_fn || !pool->low_water_blocks)
		return;
	thinp_os_mutex_lock(&pool->state_lock);
	fire = !pool->low_water_fired;
	thinp_os_mutex_unlock(&pool->state_lock);
	if (!fire)
		return;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	fire = pool->md->ops->info(pool->md, &info) == 0 &&
	       info.data_nr_free <= pool->low_water_blocks;
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (!fire)
		return;
	thinp_os_mutex_lock(&pool->state_lock);
	fire = !pool->low_water_fired;
	pool->low_water_fired = true;
	thinp_os_mutex_unlock(&pool->state_lock);
	if (fire)
		pool->low_water_fn(pool, info.data_nr_free, pool->low_water_ctx);
}

/* ---- periodic commits ---- */

/* A timed commit is for the metadata: with none changed there is nothing to
 * commit, and the data device is not flushed either (overwrites are made
 * durable by a flush, as on any disk with a write cache; syncing them every
 * interval cost front-ends a data sync per second of overwrites). */
static bool metadata_dirty(thinp_pool *pool)
{
	bool dirty;

	thinp_os_rwlock_read_lock(&pool->md_lock);
	dirty = pool->md_dirty;
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	return dirty;
}

static void commit_thread(void *arg)
{
	thinp_pool *pool = arg;
	uint64_t deadline;

	thinp_os_mutex_lock(&pool->state_lock);
	while (!pool->stopping) {
		deadline = deadline_after(pool->commit_interval_ms);
		while (!pool->stopping && wait_state_until(pool, deadline) != -ETIMEDOUT)
			;
		if (pool->stopping || pool->mode != THINP_POOL_MODE_RW)
			continue;
		thinp_os_mutex_unlock(&pool->state_lock);
		if (metadata_dirty(pool))
			pool_done(pool, pool_flush_and_commit(pool));
		thinp_os_mutex_lock(&pool->state_lock);
	}
	thinp_os_mutex_unlock(&pool->state_lock);
}

/* ---- lifecycle ---- */

static int check_block_size(uint64_t bs)
{
	if (bs < THINP_POOL_MIN_BLOCK_SIZE || bs > THINP_POOL_MAX_BLOCK_SIZE ||
	    bs % THINP_POOL_MIN_BLOCK_SIZE)
		return -EINVAL;
	return 0;
}

static void copy_options(thinp_pool *pool, const thinp_pool_options *o)
{
	pool->features = o->features;
	pool->low_water_blocks = o->low_water_blocks;
	pool->low_water_fn = o->low_water_fn;
	pool->low_water_ctx = o->low_water_ctx;
	pool->no_space_timeout_ms = o->no_space_timeout_ms;
	pool->commit_interval_ms = o->commit_interval_ms;
}

int pool_read_options(thinp_pool_options *dst, const thinp_pool_options *src)
{
	thinp_pool_options def = THINP_POOL_OPTIONS_INIT;

	if (!src) {
		*dst = def;
		return 0;
	}
	if (thinp_abi_copy_in(dst, sizeof(*dst), src,
			      offsetof(thinp_pool_options, metadata_cache_bytes) + 8,
			      THINP_POOL_OPTIONS_VERSION))
		return -EINVAL;
	if (dst->features & ~(uint32_t)0x1f)
		return -EINVAL;
	return 0;
}

int pool_own_meta(thinp_io *meta, const thinp_pool_options *opts)
{
	const struct tlog log = { opts->log_fn, opts->log_ctx };
	int r = thinp_io_lock(meta, THINP_IO_LOCK_EXCLUSIVE);

	if (r == -EBUSY)
		tlog(&log, THINP_LOG_ERROR, "metadata device is in use by another writer");
	return r;
}

static void free_pool(thinp_pool *pool)
{
	/* While the callback may still use the pool; what the teardown below
	 * logs is delivered when the pool is gone. */
	pool_log_deliver(pool->logq);
	pool->md->ops->destroy(pool->md);
	if (pool->owns_meta)
		thinp_io_lock(pool->meta_io, THINP_IO_LOCK_NONE);
	pool_log_free(pool->logq);
	thinp_os_cond_destroy(&pool->state_cond);
	thinp_os_mutex_destroy(&pool->state_lock);
	thinp_os_cond_destroy(&pool->range_cond);
	thinp_os_mutex_destroy(&pool->range_mutex);
	io_epoch_destroy(&pool->epochs);
	thinp_os_rwlock_destroy(&pool->md_lock);
	thinp_os_free(pool);
}

int pool_create(thinp_pool **out, struct pool_md *md, thinp_io *meta, thinp_io *data,
		const thinp_pool_options *user_opts)
{
	thinp_pool_options opts;
	struct pool_log *logq;
	int r = pool_read_options(&opts, user_opts);

	if (!r)
		r = pool_log_new(&logq, opts.log_fn, opts.log_ctx);
	if (r) {
		*out = NULL;
		md->ops->destroy(md);
		return r;
	}
	return pool_create_logged(out, md, logq, meta, data, &opts);
}

int pool_create_logged(thinp_pool **out, struct pool_md *md, struct pool_log *logq,
		       thinp_io *meta, thinp_io *data, const thinp_pool_options *user_opts)
{
	thinp_pool_options opts;
	struct pool_md_info info;
	thinp_pool *pool;
	int r;

	*out = NULL;
	r = map_cache_wrap(md, &md);
	if (!r)
		r = pool_read_options(&opts, user_opts);
	if (!r)
		r = md->ops->info(md, &info);
	if (r)
		goto fail_md;
	pool = thinp_os_zalloc(sizeof(*pool));
	if (!pool) {
		r = -ENOMEM;
		goto fail_md;
	}
	pool->logq = logq;
	pool->log = logq->queue;
	copy_options(pool, &opts);
	pool->md = md;
	pool->meta_io = meta;
	pool->data_io = data;
	/* What was written to the device before the pool opened it is made
	 * durable by the first commit too. */
	thinp_os_atomic_bool_store(&pool->data_written, true);
	pool->block_size = (uint64_t)info.data_block_sectors << SECTOR_SHIFT;
	pool->data_align = thinp_io_align(data);
	if (check_block_size(pool->block_size) || pool->block_size % pool->data_align) {
		thinp_os_free(pool);
		r = -EINVAL;
		goto fail_md;
	}
	pool->mode = THINP_POOL_MODE_RW;
	if ((opts.features & THINP_POOL_READ_ONLY) || info.needs_check)
		pool->mode = THINP_POOL_MODE_READ_ONLY;
	/* Writer preference: a metadata change must not starve behind a
	 * stream of lookups. */
	thinp_os_rwlock_init(&pool->md_lock);
	thinp_os_mutex_init(&pool->state_lock);
	thinp_os_cond_init(&pool->state_cond);
	thinp_os_mutex_init(&pool->range_mutex);
	thinp_os_cond_init(&pool->range_cond);
	io_epoch_init(&pool->epochs);
	/* A pool asked to commit periodically that cannot is refused rather
	 * than opened without the durability its caller counts on. */
	if (pool->commit_interval_ms && pool->mode == THINP_POOL_MODE_RW) {
		r = thinp_os_thread_start(&pool->commit_thread, "thinp-commit", commit_thread,
					  pool);
		if (r) {
			free_pool(pool);
			return r;
		}
		pool->has_commit_thread = true;
	}
	*out = pool;
	return 0;
fail_md:
	md->ops->destroy(md);
	pool_log_free(logq);
	return r;
}

static void stop_commit_thread(thinp_pool *pool)
{
	thinp_os_mutex_lock(&pool->state_lock);
	pool->stopping = true;
	thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
	if (pool->has_commit_thread)
		thinp_os_thread_join(&pool->commit_thread);
	pool->has_commit_thread = false;
}

void pool_abandon(thinp_pool *pool)
{
	stop_commit_thread(pool);
	free_pool(pool);
}

int thinp_pool_close(thinp_pool *pool)
{
	int r = 0;

	if (!pool)
		return 0;
	thinp_os_mutex_lock(&pool->state_lock);
	if (pool->open) {
		thinp_os_mutex_unlock(&pool->state_lock);
		return pool_done(pool, pool_err(pool, -EBUSY, "close: thin volumes are still open"));
	}
	thinp_os_mutex_unlock(&pool->state_lock);
	stop_commit_thread(pool);
	if (pool_check_writable(pool) == 0)
		r = pool_flush_and_commit(pool);
	free_pool(pool);
	return r;
}

/* ---- status ---- */

static uint64_t meta_reserve(uint64_t total)
{
	return THINP_MIN(4096, total / 10);
}

int thinp_pool_get_status(thinp_pool *pool, thinp_pool_status *st)
{
	thinp_pool_status s;
	struct pool_md_info info;
	uint64_t free_meta;
	int r;

	if (!pool || thinp_abi_copy_out(st, NULL, 0, 8))
		return -EINVAL;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->info(pool->md, &info);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r)
		return pool_done(pool, pool_err(pool, r, "status"));
	memset(&s, 0, sizeof(s));
	s.mode = get_mode(pool);
	s.transaction_id = info.trans_id;
	s.metadata_total = info.meta_nr_blocks;
	free_meta = info.meta_nr_free > meta_reserve(info.meta_nr_blocks)
			    ? info.meta_nr_free - meta_reserve(info.meta_nr_blocks)
			    : 0;
	s.metadata_used = info.meta_nr_blocks - free_meta;
	s.data_total = info.data_nr_blocks;
	s.data_used = info.data_nr_blocks - info.data_nr_free;
	s.held_root = info.held_root;
	s.data_block_size = (uint32_t)pool->block_size;
	s.features = pool->features;
	s.needs_check = info.needs_check;
	s.time = info.time;
	return thinp_abi_copy_out(st, &s, sizeof(s), 8);
}

/* ---- messages ---- */

/*
 * Run one metadata change as the kernel runs a pool message: refused unless
 * the pool is writable, then committed (with a data flush first, which
 * snapshots need anyway: data written before the snapshot must be in it).
 */
struct message {
	const char *name;
	int (*fn)(thinp_pool *pool, struct message *m);
	uint64_t a, b;
	bool recovers; /* allowed while read-only for lack of metadata space */
};

/* 0 if m may run now. */
static int message_allowed(thinp_pool *pool, const struct message *m)
{
	bool ok;

	thinp_os_mutex_lock(&pool->state_lock);
	ok = pool->mode == THINP_POOL_MODE_RW || pool->mode == THINP_POOL_MODE_OUT_OF_DATA_SPACE ||
	     (m->recovers && pool->mode == THINP_POOL_MODE_READ_ONLY && pool->meta_space_ro);
	thinp_os_mutex_unlock(&pool->state_lock);
	return ok ? 0 : -EROFS;
}

static int run_message(thinp_pool *pool, struct message *m)
{
	int r;

	if (!pool)
		return -EINVAL;
	r = message_allowed(pool, m);
	if (r)
		return pool_done(pool, pool_err(pool, r, "%s: pool is not writable", m->name));
	pool_op_begin(pool);
	thinp_os_rwlock_write_lock(&pool->md_lock);
	r = message_allowed(pool, m);
	if (!r)
		r = m->fn(pool, m);
	if (r)
		r = pool_md_failed_locked(pool, r, m->name);
	else
		pool->md_dirty = true;
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	pool_op_end(pool);
	return pool_done(pool, r ? r : pool_flush_and_commit(pool));
}

static bool thin_is_open(thinp_pool *pool, uint64_t id)
{
	struct open_thin *o;
	bool found = false;

	thinp_os_mutex_lock(&pool->state_lock);
	for (o = pool->open; o; o = o->next)
		if (o->id == id)
			found = true;
	thinp_os_mutex_unlock(&pool->state_lock);
	return found;
}

static int msg_create_thin(thinp_pool *pool, struct message *m)
{
	return pool->md->ops->create_thin(pool->md, m->a);
}

static int msg_create_snap(thinp_pool *pool, struct message *m)
{
	struct pool_md_info info;
	int r = pool->md->ops->info(pool->md, &info);

	/* The mapping time field is 24 bits (FORMAT.md 5.3). */
	if (!r && info.time + 1 >= (1u << 24))
		return -EINVAL;
	if (!r)
		r = pool->md->ops->create_snap(pool->md, m->a, m->b);
	/* In-place writes in flight may target blocks now shared (thin.c). */
	if (!r)
		pool->snap_point = io_epoch_close(&pool->epochs);
	return r;
}

static int msg_delete(thinp_pool *pool, struct message *m)
{
	/* Checked under md_lock exclusively: thinp_thin_open() registers the
	 * volume while holding md_lock shared, so neither can slip past. */
	if (thin_is_open(pool, m->a))
		return -EBUSY;
	pool->txn_frees = true;
	return pool->md->ops->delete_thin(pool->md, m->a);
}

static int msg_set_trans_id(thinp_pool *pool, struct message *m)
{
	return pool->md->ops->set_trans_id(pool->md, m->a, m->b);
}

static int msg_reserve_snap(thinp_pool *pool, struct message *m)
{
	return pool->md->ops->reserve_snap(pool->md);
}

static int msg_release_snap(thinp_pool *pool, struct message *m)
{
	return pool->md->ops->release_snap(pool->md);
}

int thinp_pool_create_thin(thinp_pool *pool, uint64_t id)
{
	struct message m = { "create_thin", msg_create_thin, id, 0, false };

	if (id > MAX_THIN_ID)
		return -EINVAL;
	return run_message(pool, &m);
}

int thinp_pool_create_snap(thinp_pool *pool, uint64_t id, uint64_t origin)
{
	struct message m = { "create_snap", msg_create_snap, id, origin, false };

	if (id > MAX_THIN_ID || origin > MAX_THIN_ID)
		return -EINVAL;
	return run_message(pool, &m);
}

int thinp_pool_delete_thin(thinp_pool *pool, uint64_t id)
{
	struct message m = { "delete", msg_delete, id, 0, false };

	return run_message(pool, &m);
}

int thinp_pool_set_transaction_id(thinp_pool *pool, uint64_t old, uint64_t new_id)
{
	struct message m = { "set_transaction_id", msg_set_trans_id, old, new_id, false };

	return run_message(pool, &m);
}

int thinp_pool_reserve_metadata_snap(thinp_pool *pool)
{
	struct message m = { "reserve_metadata_snap", msg_reserve_snap, 0, 0, false };
	int r;

	/* The snapshot copies the committed superblock: commit first. */
	if (!pool)
		return -EINVAL;
	r = pool_check_writable(pool);
	if (!r)
		r = pool_flush_and_commit(pool);
	return r ? pool_done(pool, r) : run_message(pool, &m);
}

int thinp_pool_release_metadata_snap(thinp_pool *pool)
{
	struct message m = { "release_metadata_snap", msg_release_snap, 0, 0, false };

	return run_message(pool, &m);
}

/* ---- resize ---- */

static int data_device_blocks(thinp_pool *pool, uint64_t *nr)
{
	uint64_t bytes;
	int r = thinp_io_size(pool->data_io, &bytes);

	*nr = r ? 0 : bytes / pool->block_size;
	return r;
}

static int msg_resize_data(thinp_pool *pool, struct message *m)
{
	struct pool_md_info info;
	int r = pool->md->ops->info(pool->md, &info);

	if (r)
		return r;
	if (m->a < info.data_nr_blocks)
		return -EINVAL;
	if (m->a == info.data_nr_blocks)
		return 0;
	return pool->md->ops->resize_data(pool->md, m->a);
}

int thinp_pool_resize_data(thinp_pool *pool, uint64_t nr_blocks)
{
	struct message m = { "resize_data", msg_resize_data, nr_blocks, 0, false };
	uint64_t dev_blocks;
	int r;

	if (!pool)
		return -EINVAL;
	r = data_device_blocks(pool, &dev_blocks);
	if (r)
		return pool_done(pool, pool_err(pool, r, "resize_data: data device size"));
	if (nr_blocks > dev_blocks || nr_blocks > MAX_DATA_BLOCKS)
		return pool_done(pool, pool_err(pool, -EINVAL, "resize_data: %llu blocks do not fit "
						"the data device", (unsigned long long)nr_blocks));
	r = run_message(pool, &m);
	if (r)
		return r;
	/* Space arrived: waiting writers go on, the low-water mark re-arms. */
	thinp_os_mutex_lock(&pool->state_lock);
	pool->space_gen++;
	pool->no_space_error = false;
	pool->low_water_fired = false;
	if (pool->mode == THINP_POOL_MODE_OUT_OF_DATA_SPACE)
		pool->mode = THINP_POOL_MODE_RW;
	thinp_os_cond_broadcast(&pool->state_cond);
	thinp_os_mutex_unlock(&pool->state_lock);
	return 0;
}

static int msg_resize_meta(thinp_pool *pool, struct message *m)
{
	struct pool_md_info info;
	int r = pool->md->ops->info(pool->md, &info);

	if (r)
		return r;
	if (m->a < info.meta_nr_blocks)
		return -EINVAL;
	if (m->a == info.meta_nr_blocks)
		return 0;
	return pool->md->ops->resize_meta(pool->md, m->a);
}

int thinp_pool_resize_metadata(thinp_pool *pool, uint64_t nr_blocks)
{
	struct message m = { "resize_metadata", msg_resize_meta, nr_blocks, 0, true };
	uint64_t bytes;
	int r;

	if (!pool)
		return -EINVAL;
	r = pool->meta_io ? thinp_io_size(pool->meta_io, &bytes) : 0;
	if (r)
		return pool_done(pool, pool_err(pool, r, "resize_metadata: metadata device size"));
	if (pool->meta_io && nr_blocks > bytes / 4096)
		return pool_done(pool, pool_err(pool, -EINVAL, "resize_metadata: %llu blocks do not "
						"fit the device", (unsigned long long)nr_blocks));
	r = run_message(pool, &m);
	if (r)
		return r;
	/* Growing is how a pool that ran out of metadata space recovers. */
	thinp_os_mutex_lock(&pool->state_lock);
	if (pool->meta_space_ro && pool->mode == THINP_POOL_MODE_READ_ONLY) {
		pool->meta_space_ro = false;
		pool->mode = THINP_POOL_MODE_RW;
	}
	thinp_os_mutex_unlock(&pool->state_lock);
	/* The message's own commit was skipped while read-only. */
	return pool_done(pool, pool_flush_and_commit(pool));
}
