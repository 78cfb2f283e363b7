/*
 * The pool runtime's internals, shared by pool.c (lifecycle, commit policy,
 * messages), thin.c (the data path) and range_lock.c.
 *
 * Locks, outermost first (a thread never takes an earlier one while holding
 * a later one):
 *
 *   range locks  per (volume, virtual block range); held by a writer that
 *                provisions or breaks sharing, and by a discard, for the
 *                whole operation, so two of them never race on one block.
 *                A list under range_mutex; waiters sleep on range_cond.
 *   md_lock      rw-lock over the metadata (pool->md and the fields marked
 *                below): shared for lookups, exclusive for every metadata
 *                change and the commit. Never held across data I/O.
 *   state_lock   mutex over the small mutable state below (mode, counters,
 *                open volumes, low-water flag, errmsg), with state_cond for
 *                commits, space and mode changes. Never held across I/O or
 *                a callback.
 *   epochs       the I/O epochs' own mutex (io_epoch.h), innermost.
 *
 * No library lock is held while a user callback runs (log, low-water): log
 * messages from every layer are queued (pool_log.c) and handed to the
 * caller's function at the end of the public call, with nothing held.
 *
 * Data I/O without a metadata lock: a read or in-place write looks its
 * block up under md_lock shared, enters the current I/O epoch before
 * dropping the lock, does the I/O unlocked and leaves the epoch; a
 * provisioning write enters one when its block is allocated (under md_lock)
 * and leaves it once the block is filled. What the lock used to guarantee,
 * the epochs do (thin.c's opening comment has the argument for each): a
 * freed block is handed out again only after the I/Os that could still use
 * it have left (realloc_point); a copy-on-write of a shared block reads it
 * only after in-place writes older than the snapshot have landed
 * (snap_point); a discard passed down waits for older I/O to the blocks.
 *
 * Commit versus provisioning: a data block is allocated, filled and then
 * mapped in three steps, the first and last under md_lock. A commit between
 * them would record the allocation without the mapping (a leak after a
 * crash) or a mapping whose data had not been flushed. So such "metadata
 * operations in flight" are counted (ops_inflight), and a commit first stops
 * new ones (commit_waiting) and waits for the count to reach zero. A discard
 * is one operation per batch, so commits and allocations slip in between.
 */
#ifndef THINP_POOL_POOL_INTERNAL_H
#define THINP_POOL_POOL_INTERNAL_H

#include "os/os.h"

#include <libthinp/pool.h>
#include <libthinp/thin.h>
#include "pool/io_epoch.h"
#include "pool/pool_log.h"
#include "pool/pool_md.h"
#include "util/log.h"

struct range_lock {
	struct range_lock *next;
	uint64_t id, begin, end; /* [begin, end) in virtual blocks */
};

struct open_thin {
	struct open_thin *next;
	uint64_t id;
	unsigned count;
};

struct thinp_pool {
	/* Immutable after open. */
	thinp_io *meta_io, *data_io;      /* borrowed */
	bool owns_meta;                   /* holds meta_io's exclusive lock */
	uint64_t block_size;              /* bytes */
	uint32_t features;
	uint32_t data_align;
	uint64_t low_water_blocks;
	thinp_pool_low_water_fn low_water_fn;
	void *low_water_ctx;
	uint32_t no_space_timeout_ms;
	uint32_t commit_interval_ms;
	struct pool_log *logq;            /* owned; its own lock */
	struct tlog log;                  /* logq->queue: every message is queued */

	/* Guarded by md_lock. */
	thinp_os_rwlock md_lock;
	struct pool_md *md;
	bool md_dirty;                    /* changes since the last commit */
	uint64_t md_epoch;                /* bumped by every rollback (abort) */
	/* I/O epochs: I/Os at or before snap_point may still write blocks the
	 * last snapshot shares; those at or before realloc_point may still use
	 * blocks freed by a committed (or rolled back) transaction, so no
	 * block is allocated before it has passed. */
	uint64_t snap_point, realloc_point;
	uint64_t alloc_md_epoch;          /* md_epoch realloc_point accounts for */
	bool txn_frees;                   /* the open transaction freed data blocks */

	struct io_epoch epochs;           /* its own lock */

	/* Set after every data device write or discard returns, cleared by
	 * the commit that flushes it: a commit with nothing new to make
	 * durable on the data device skips that flush. */
	thinp_os_atomic_bool data_written;

	/* Guarded by range_mutex. */
	thinp_os_mutex range_mutex;
	thinp_os_cond range_cond;
	struct range_lock *ranges;

	/* Guarded by state_lock. */
	thinp_os_mutex state_lock;
	thinp_os_cond state_cond;
	uint32_t mode;                    /* THINP_POOL_MODE_* */
	bool meta_space_ro;               /* READ_ONLY because metadata ran out */
	bool no_space_error;              /* the no-space timeout expired */
	bool low_water_fired;
	uint64_t space_gen;               /* bumped by every data resize */
	struct open_thin *open;
	unsigned ops_inflight;
	unsigned commit_waiting;
	bool committing;
	unsigned commit_waiters;          /* callers waiting for a running commit */
	uint64_t commits_started, commits_done;
	int last_commit_result;
	bool stopping;                    /* the commit thread must exit */
	char errmsg[256];

	bool has_commit_thread;
	thinp_os_thread commit_thread;
};

struct thinp_thin {
	thinp_pool *pool;
	uint64_t id;
	uint64_t size;
	uint32_t flags;
	uint32_t align;
	thinp_io *origin;     /* borrowed, may be NULL */
	uint64_t origin_size;
};

/* Create a pool over an opened metadata implementation (ownership of md
 * passes to the pool, even on failure). meta may be NULL (no device to
 * measure on a metadata resize). */
int pool_create(thinp_pool **out, struct pool_md *md, thinp_io *meta, thinp_io *data,
		const thinp_pool_options *opts);
/* The same with the log queue the metadata was opened with (its layers log
 * to logq->queue); ownership of logq passes to the pool, even on failure. */
int pool_create_logged(thinp_pool **out, struct pool_md *md, struct pool_log *logq,
		       thinp_io *meta, thinp_io *data, const thinp_pool_options *opts);

/* End of a public call, with no library lock held: deliver the queued log
 * messages; returns r. */
int pool_done(thinp_pool *pool, int r);

/* Take the metadata device's exclusive lock for a pool opened for writing
 * (thinp_io_lock); -EBUSY, logged as "metadata device is in use by another
 * writer", when someone else owns it. The pool that gets owns_meta set
 * releases it when freed. */
int pool_own_meta(thinp_io *meta, const thinp_pool_options *opts);

/* Read the caller's options (NULL: defaults) into a full-size copy;
 * -EINVAL for an unknown version or feature bit. */
int pool_read_options(thinp_pool_options *dst, const thinp_pool_options *src);

/* Free the pool without committing (the open transaction is lost, as on
 * power loss). Volumes must be closed. For tests. */
void pool_abandon(thinp_pool *pool);

/* Record a failure message (and log it); returns err. */
int pool_err(thinp_pool *pool, int err, const char *fmt, ...) THINP_PRINTF(3, 4);

/* Called with md_lock held exclusively after a metadata change failed with
 * err: applies the decision of mode.c (the one table: roll back, mode,
 * needs_check) to the facts the metadata reports, and returns the error to
 * give the caller. Errors that only mean "no" (ENODATA, EEXIST, EINVAL,
 * EBUSY) change nothing. */
int pool_md_failed_locked(thinp_pool *pool, int err, const char *what);
/* The same for a failed read, with md_lock held shared or exclusively (a
 * read rolls nothing back and sets no needs_check): -ENOMEM fails the
 * request alone; I/O errors and corruption fail the pool. */
int pool_md_read_failed(thinp_pool *pool, int err, const char *what);

/* Mode checks, taken under state_lock: 0 or -EROFS/-EIO. */
int pool_check_writable(thinp_pool *pool);
int pool_check_readable(thinp_pool *pool);

/* Bracket a metadata operation that spans several md_lock sections (see
 * the commit-versus-provisioning note above). begin waits while a commit is
 * waiting. */
void pool_op_begin(thinp_pool *pool);
void pool_op_end(thinp_pool *pool);

/* Flush data then commit metadata; concurrent callers share one commit. */
int pool_flush_and_commit(thinp_pool *pool);

/* Allocate a data block for a write, applying the no-space policy. Must be
 * called inside pool_op_begin/end; may end and restart the op while
 * waiting for space. *epoch receives md_epoch at the allocation: if it has
 * moved when the block is to be mapped, a rollback undid the allocation.
 * On success the caller is inside the I/O epoch *io_ep (entered under
 * md_lock with the allocation), which it leaves once the block is filled. */
int pool_alloc_data(thinp_pool *pool, uint64_t *block, uint64_t *epoch, uint64_t *io_ep);

/* After an allocation: fire the low-water callback if due (no lock held). */
void pool_check_low_water(thinp_pool *pool);

/* Range locks on virtual blocks of one volume. */
int range_lock(thinp_pool *pool, uint64_t id, uint64_t begin, uint64_t end);
void range_unlock(thinp_pool *pool, uint64_t id, uint64_t begin, uint64_t end);

#endif
