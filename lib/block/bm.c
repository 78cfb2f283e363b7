/*
 * The block manager: locks, validation and write-back over the block cache.
 *
 * Method. Every resident block has one `struct block` (cache.h), which is also
 * the handle given to lock holders, so a cache hit costs a hash lookup and a
 * few field updates under the mutex, with no allocation. A miss allocates an
 * entry (or reuses the one last evicted), reads the block, checks it with the
 * caller's validator and only then inserts it: a block that fails its read
 * or its check is never visible in the cache.
 *
 * The cache holds at most max_blocks entries as long as something can be
 * evicted: before a miss adds an entry, the least recently used unlocked
 * entries are dropped, dirty ones first written back (prepare_for_write, then
 * write). Locked entries are never evicted, so with many locks held the cache
 * grows past its limit instead of failing.
 *
 * Validation is remembered: `block.v` is the validator the contents were
 * last checked with, so a relock with the same validator costs nothing, and a
 * relock with another one re-runs the check (catching a block reached through
 * a pointer of the wrong type). A dirty block is checked as it would be
 * written, i.e. after its own validator's prepare_for_write, on a copy.
 *
 * Locking: `lock` guards every field of struct bm below it and every field of
 * every struct block except the data of an entry being loaded. A miss inserts
 * its entry marked `loading`, already holding the caller's lock, and reads and
 * checks the block with the mutex dropped, so readers of cached blocks (and
 * misses on other blocks) proceed meanwhile. A second thread missing the same
 * block waits on `loaded` and then looks again: the load may have failed and
 * the entry gone. Write-back (at eviction and flush) is done with the mutex
 * held: an unlocked dirty block has no lock of its own to protect it.
 */
#include "os/os.h"

#include "block/bm.h"
#include "block/cache.h"
#include "io/io_internal.h"

#define DEFAULT_CACHE_BYTES (16u << 20)
#define FLUSH_RUN_BLOCKS 256 /* 1 MiB: the largest write of a flush */

enum lock_mode { LOCK_READ, LOCK_WRITE, LOCK_WRITE_ZERO };

struct bm {
	thinp_io *io;                /* not owned */
	const struct tlog *log;
	bool read_only;
	size_t max_blocks;           /* cache limit, in blocks, >= 1 */

	thinp_os_mutex lock;         /* guards everything below */
	thinp_os_cond loaded;        /* broadcast when a load ends */
	struct cache cache;
	uint64_t nr_blocks;          /* device size as last asked */
	size_t nr_locked;            /* entries with at least one lock */
	struct block *spare;         /* an evicted entry kept for the next miss */
	void *scratch;               /* a block buffer for checking dirty blocks */
	char *ahead;                 /* BM_PREFETCH_MAX blocks for bm_prefetch, lazily */
	bool ahead_busy;             /* a prefetch is reading into `ahead` */
	struct bm_stats stats;
};

static int refresh_size_locked(struct bm *bm)
{
	uint64_t bytes;
	int r = thinp_io_size(bm->io, &bytes);

	if (r)
		return r;
	bm->nr_blocks = bytes >> THINP_BLOCK_SHIFT;
	return 0;
}

int bm_create(struct bm **out, thinp_io *io, const struct bm_options *opts)
{
	size_t bytes = opts && opts->cache_bytes ? opts->cache_bytes : DEFAULT_CACHE_BYTES;
	struct bm *bm;
	int r;

	if (!out || !io)
		return -EINVAL;
	*out = NULL;
	bm = thinp_os_zalloc(sizeof(*bm));
	if (!bm)
		return -ENOMEM;
	bm->io = io;
	bm->log = opts ? opts->log : NULL;
	bm->read_only = thinp_io_is_read_only(io);
	bm->max_blocks = THINP_MAX(bytes / THINP_BLOCK_SIZE, (size_t)1);
	r = cache_init(&bm->cache);
	if (r)
		goto fail;
	r = -ENOMEM;
	bm->scratch = thinp_os_alloc_aligned(THINP_BLOCK_SIZE, THINP_BLOCK_SIZE);
	if (!bm->scratch)
		goto fail_cache;
	r = refresh_size_locked(bm);
	if (r)
		goto fail_cache;
	thinp_os_mutex_init(&bm->lock);
	thinp_os_cond_init(&bm->loaded);
	*out = bm;
	return 0;

fail_cache:
	thinp_os_free(bm->scratch);
	cache_exit(&bm->cache);
fail:
	thinp_os_free(bm);
	return r;
}

void bm_destroy(struct bm *bm)
{
	if (!bm)
		return;
	cache_exit(&bm->cache);
	block_free(bm->spare);
	thinp_os_free(bm->scratch);
	thinp_os_free(bm->ahead);
	thinp_os_mutex_destroy(&bm->lock);
	thinp_os_cond_destroy(&bm->loaded);
	thinp_os_free(bm);
}

bool bm_block_in_range(struct bm *bm, uint64_t b)
{
	bool ok;

	/* Only a miss asks the device again: asking is a system call, and
	 * this is on every space-map lookup. */
	thinp_os_mutex_lock(&bm->lock);
	ok = b < bm->nr_blocks || (!refresh_size_locked(bm) && b < bm->nr_blocks);
	thinp_os_mutex_unlock(&bm->lock);
	return ok;
}

uint64_t bm_nr_blocks(struct bm *bm)
{
	uint64_t n;

	thinp_os_mutex_lock(&bm->lock);
	refresh_size_locked(bm);
	n = bm->nr_blocks;
	thinp_os_mutex_unlock(&bm->lock);
	return n;
}

bool bm_is_read_only(const struct bm *bm)
{
	return bm->read_only;
}

const struct tlog *bm_log(const struct bm *bm)
{
	return bm->log;
}

uint64_t block_location(const struct block *blk)
{
	return blk->nr;
}

void *block_data(const struct block *blk)
{
	return blk->data;
}

static void update_resident(struct bm *bm)
{
	bm->stats.resident_bytes = bm->cache.nr_entries * (size_t)THINP_BLOCK_SIZE;
	if (bm->stats.resident_bytes > bm->stats.peak_resident_bytes)
		bm->stats.peak_resident_bytes = bm->stats.resident_bytes;
}

/* Log a validator's verdict on block b and return it. */
static int report_bad(struct bm *bm, uint64_t b, const struct validator *v, int r,
		      const char *why)
{
	if (!why)
		why = r == -ENOTBLK ? "block records a different location"
				    : "checksum or structure check failed";
	THINP_CORRUPT(bm->log, b, v->name ? v->name : "block", why);
	return r;
}

static int run_check(struct bm *bm, const struct validator *v, const void *data,
		     uint64_t b)
{
	const char *why = NULL;
	int r;

	if (!v || !v->check)
		return 0;
	r = v->check(v, data, b, &why);
	return r ? report_bad(bm, b, v, r, why) : 0;
}

static void stamp_locked(struct block *blk)
{
	if (blk->v && blk->v->prepare_for_write)
		blk->v->prepare_for_write(blk->v, blk->data, blk->nr);
}

/* Write one block back: stamp it with its validator, write, mark clean. */
static int write_back_locked(struct bm *bm, struct block *blk)
{
	int r;

	stamp_locked(blk);
	bm->stats.writes++;
	r = thinp_io_write(bm->io, blk->data, THINP_BLOCK_SIZE, blk->nr << THINP_BLOCK_SHIFT, 0);
	if (r) {
		tlog(bm->log, THINP_LOG_ERROR, "block manager: write of block %" PRIu64
		     " failed: %s", blk->nr, thinp_strerror(r));
		return r;
	}
	cache_mark_clean(&bm->cache, blk);
	return 0;
}

/*
 * Write back the n dirty blocks v[0..n), whose numbers are consecutive, with
 * one device write through the buffer run (room for n blocks). If that write
 * fails, each block is written alone, so that one bad sector leaves only its
 * own block dirty, as without coalescing.
 */
static int write_run_locked(struct bm *bm, struct block **v, size_t n, char *run)
{
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		stamp_locked(v[i]);
		memcpy(run + i * THINP_BLOCK_SIZE, v[i]->data, THINP_BLOCK_SIZE);
	}
	if (thinp_io_write(bm->io, run, n * THINP_BLOCK_SIZE, v[0]->nr << THINP_BLOCK_SHIFT, 0) == 0) {
		bm->stats.writes += n;
		for (size_t i = 0; i < n; i++)
			cache_mark_clean(&bm->cache, v[i]);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		int w = write_back_locked(bm, v[i]);

		if (w && !r)
			r = w;
	}
	return r;
}

/* Length of the run of consecutive block numbers starting at v[0], at most
 * max. */
static size_t run_length(struct block **v, size_t n, size_t max)
{
	size_t k = 1;

	while (k < n && k < max && v[k]->nr == v[0]->nr + k)
		k++;
	return k;
}

/* Free an entry no longer in the cache, keeping one for the next miss. */
static void drop_entry_locked(struct bm *bm, struct block *blk)
{
	if (!bm->spare)
		bm->spare = blk;
	else
		block_free(blk);
}

static void evict_locked(struct bm *bm, struct block *blk)
{
	cache_remove(&bm->cache, blk);
	bm->stats.evictions++;
	drop_entry_locked(bm, blk);
}

/*
 * Drop least recently used unlocked entries until one more fits. A failed
 * write-back leaves that block dirty and resident and stops the eviction:
 * the cache then exceeds its limit, and the error resurfaces at bm_flush,
 * which retries the write.
 */
static void make_room_locked(struct bm *bm)
{
	struct block *victim;

	while (bm->cache.nr_entries >= bm->max_blocks && (victim = lru_oldest(&bm->cache))) {
		if (victim->dirty && write_back_locked(bm, victim)) {
			lru_unlink(victim);
			lru_push_mru(&bm->cache, victim);
			return;
		}
		evict_locked(bm, victim);
	}
}

static struct block *new_entry_locked(struct bm *bm)
{
	struct block *blk;

	make_room_locked(bm);
	blk = bm->spare;
	if (blk) {
		bm->spare = NULL;
		return blk;
	}
	return block_alloc();
}

static void take_lock_locked(struct bm *bm, struct block *blk, enum lock_mode mode)
{
	if (!blk->read_locks && !blk->write_locked)
		bm->nr_locked++;
	if (block_on_lru(blk))
		lru_unlink(blk);
	if (mode == LOCK_READ) {
		blk->read_locks++;
		return;
	}
	blk->write_locked = true;
	cache_mark_dirty(&bm->cache, blk);
}

static bool conflicts(const struct block *blk, enum lock_mode mode)
{
	return blk->write_locked || (mode != LOCK_READ && blk->read_locks);
}

/* Check a cached block against a validator other than the one it passed. */
static int recheck_locked(struct bm *bm, struct block *blk, const struct validator *v)
{
	const void *data = blk->data;

	if (blk->dirty && blk->v && blk->v->prepare_for_write) {
		/* Check what would be written; holders may be reading the
		 * original, so stamp a copy. */
		memcpy(bm->scratch, blk->data, THINP_BLOCK_SIZE);
		blk->v->prepare_for_write(blk->v, bm->scratch, blk->nr);
		data = bm->scratch;
	}
	return run_check(bm, v, data, blk->nr);
}

/* Give up a read lock taken by take_lock_locked. */
static void drop_read_lock_locked(struct bm *bm, struct block *blk)
{
	if (--blk->read_locks || blk->write_locked)
		return;
	bm->nr_locked--;
	lru_push_mru(&bm->cache, blk);
}

/*
 * A read lock on a clean cached block that has not passed v (read ahead, or
 * read with another validator): the check hashes and walks 4 KiB, long
 * enough for other threads to queue on the mutex behind it, so it runs
 * without the mutex, as a miss's does. Meanwhile the entry is read-locked
 * (nothing evicts or changes it) and marked loading (other lockers wait
 * for the outcome instead of using it unchecked).
 */
static int lock_checked_locked(struct bm *bm, struct block *blk, const struct validator *v)
{
	int r;

	take_lock_locked(bm, blk, LOCK_READ);
	blk->loading = true;
	thinp_os_mutex_unlock(&bm->lock);
	r = run_check(bm, v, blk->data, blk->nr);
	thinp_os_mutex_lock(&bm->lock);
	blk->loading = false;
	thinp_os_cond_broadcast(&bm->loaded);
	if (!r) {
		blk->v = v;
		blk->read_ahead = false;
		return 0;
	}
	drop_read_lock_locked(bm, blk);
	/* Unchecked read-ahead: forgotten, as a miss's bad block. */
	if (blk->read_ahead && !blk->read_locks)
		evict_locked(bm, blk);
	return r;
}

static int lock_cached_locked(struct bm *bm, struct block *blk, const struct validator *v,
			      enum lock_mode mode)
{
	int r;

	if (conflicts(blk, mode))
		return -EBUSY;
	bm->stats.hits++;
	if (mode == LOCK_READ && v && v != blk->v && !blk->dirty)
		return lock_checked_locked(bm, blk, v);
	if (mode == LOCK_WRITE_ZERO) {
		memset(blk->data, 0, THINP_BLOCK_SIZE);
	} else if (v && v != blk->v) {
		r = recheck_locked(bm, blk, v);
		/* Unchecked read-ahead: forgotten, as a miss's bad block. */
		if (r && blk->read_ahead && !blk->read_locks && !blk->dirty)
			evict_locked(bm, blk);
		if (r)
			return r;
	}
	/* A read lock without a validator says nothing about the contents'
	 * type; a write lock decides how the block will be stamped. */
	if (v || mode != LOCK_READ) {
		blk->v = v;
		blk->read_ahead = false;
	}
	take_lock_locked(bm, blk, mode);
	return 0;
}

/* Read and check a block into an entry the caller has locked and marked
 * loading; called without the mutex. */
static int load(struct bm *bm, struct block *blk, const struct validator *v)
{
	int r = thinp_io_read(bm->io, blk->data, THINP_BLOCK_SIZE,
			      blk->nr << THINP_BLOCK_SHIFT, 0);

	if (r) {
		tlog(bm->log, THINP_LOG_ERROR, "block manager: read of block %" PRIu64
		     " failed: %s", blk->nr, thinp_strerror(r));
		return r;
	}
	return run_check(bm, v, blk->data, blk->nr);
}

/* Undo a failed load: the entry leaves the cache as if never inserted. */
static void unload_locked(struct bm *bm, struct block *blk)
{
	cache_remove(&bm->cache, blk);
	blk->read_locks = 0;
	blk->write_locked = false;
	bm->nr_locked--;
	drop_entry_locked(bm, blk);
	update_resident(bm);
}

static int lock_missing_locked(struct bm *bm, uint64_t b, const struct validator *v,
			       enum lock_mode mode, struct block **out)
{
	struct block *blk;
	void *data;
	int r;

	if (b >= bm->nr_blocks && (refresh_size_locked(bm) || b >= bm->nr_blocks))
		return -EINVAL;
	blk = new_entry_locked(bm);
	if (!blk)
		return -ENOMEM;
	data = blk->data;
	memset(blk, 0, sizeof(*blk));
	blk->data = data;
	blk->bm = bm;
	blk->nr = b;
	blk->v = v;
	if (mode == LOCK_WRITE_ZERO)
		memset(blk->data, 0, THINP_BLOCK_SIZE);
	else
		blk->loading = true;
	r = cache_insert(&bm->cache, blk);
	if (r) {
		drop_entry_locked(bm, blk);
		return r;
	}
	bm->stats.misses++;
	take_lock_locked(bm, blk, mode);
	update_resident(bm);
	if (blk->loading) {
		bm->stats.reads++;
		thinp_os_mutex_unlock(&bm->lock);
		r = load(bm, blk, v);
		thinp_os_mutex_lock(&bm->lock);
		blk->loading = false;
		thinp_os_cond_broadcast(&bm->loaded);
		if (r) {
			unload_locked(bm, blk);
			return r;
		}
	}
	*out = blk;
	return 0;
}

static int lock_block(struct bm *bm, uint64_t b, const struct validator *v,
		      enum lock_mode mode, struct block **out)
{
	struct block *blk;
	int r;

	if (!bm || !out)
		return -EINVAL;
	*out = NULL;
	if (mode != LOCK_READ && bm->read_only)
		return -EROFS;
	thinp_os_mutex_lock(&bm->lock);
	for (;;) {
		blk = cache_lookup(&bm->cache, b);
		if (!blk) {
			r = lock_missing_locked(bm, b, v, mode, out);
			break;
		}
		if (blk->loading && !conflicts(blk, mode)) {
			/* The entry may be gone when we wake: look again. */
			thinp_os_cond_wait(&bm->loaded, &bm->lock);
			continue;
		}
		r = lock_cached_locked(bm, blk, v, mode);
		if (!r)
			*out = blk;
		break;
	}
	thinp_os_mutex_unlock(&bm->lock);
	return r;
}

int bm_read_lock(struct bm *bm, uint64_t b, const struct validator *v, struct block **out)
{
	return lock_block(bm, b, v, LOCK_READ, out);
}

int bm_write_lock(struct bm *bm, uint64_t b, const struct validator *v, struct block **out)
{
	return lock_block(bm, b, v, LOCK_WRITE, out);
}

int bm_write_lock_zero(struct bm *bm, uint64_t b, const struct validator *v,
		       struct block **out)
{
	return lock_block(bm, b, v, LOCK_WRITE_ZERO, out);
}

/* Under the mutex: how many of [b, b + n) qualify for a prefetch, and
 * the buffer for them. */
static size_t prefetch_count_locked(struct bm *bm, uint64_t b, size_t n)
{
	size_t k;

	n = THINP_MIN(n, THINP_MIN((size_t)BM_PREFETCH_MAX, bm->max_blocks / 4));
	if (bm->ahead_busy || b >= bm->nr_blocks)
		return 0;
	n = (size_t)THINP_MIN((uint64_t)n, bm->nr_blocks - b);
	for (k = 0; k < n && !cache_lookup(&bm->cache, b + k); k++)
		;
	if (k < 2)
		return 0;
	if (!bm->ahead && !(bm->ahead = thinp_os_alloc_aligned(BM_PREFETCH_MAX * THINP_BLOCK_SIZE, THINP_BLOCK_SIZE))) {
		bm->ahead = NULL;
		return 0;
	}
	return k;
}

/* Insert entries for blocks b.. marked loading and read-locked (so that
 * nothing evicts them or reads them meanwhile); returns how many. */
static size_t prefetch_insert_locked(struct bm *bm, uint64_t b, size_t n, struct block **v)
{
	size_t k;

	for (k = 0; k < n; k++) {
		struct block *blk = new_entry_locked(bm);
		void *data;

		if (!blk)
			break;
		data = blk->data;
		*blk = (struct block){ .nr = b + k, .data = data, .bm = bm, .loading = true,
				       .read_ahead = true };
		if (cache_insert(&bm->cache, blk)) {
			drop_entry_locked(bm, blk);
			break;
		}
		take_lock_locked(bm, blk, LOCK_READ);
		v[k] = blk;
	}
	update_resident(bm);
	return k;
}

/* End a prefetch's loads: each entry unlocked (kept) or, the read failed,
 * removed. */
static void prefetch_finish_locked(struct bm *bm, struct block **v, size_t n, int r)
{
	for (size_t k = 0; k < n; k++) {
		v[k]->loading = false;
		if (r) {
			unload_locked(bm, v[k]);
			continue;
		}
		v[k]->read_locks = 0;
		bm->nr_locked--;
		lru_push_mru(&bm->cache, v[k]);
	}
	if (!r)
		bm->stats.reads += n;
	bm->ahead_busy = false;
	thinp_os_cond_broadcast(&bm->loaded);
}

void bm_prefetch(struct bm *bm, uint64_t b, size_t n)
{
	struct block *v[BM_PREFETCH_MAX];
	int r;

	if (!bm)
		return;
	thinp_os_mutex_lock(&bm->lock);
	n = prefetch_count_locked(bm, b, n);
	n = n ? prefetch_insert_locked(bm, b, n, v) : 0;
	if (!n) {
		thinp_os_mutex_unlock(&bm->lock);
		return;
	}
	/* As a miss: read with the mutex dropped; the entries are ours. */
	bm->ahead_busy = true;
	thinp_os_mutex_unlock(&bm->lock);
	r = thinp_io_read(bm->io, bm->ahead, n * THINP_BLOCK_SIZE, b << THINP_BLOCK_SHIFT, 0);
	for (size_t k = 0; !r && k < n; k++)
		memcpy(v[k]->data, bm->ahead + k * THINP_BLOCK_SIZE, THINP_BLOCK_SIZE);
	thinp_os_mutex_lock(&bm->lock);
	prefetch_finish_locked(bm, v, n, r);
	thinp_os_mutex_unlock(&bm->lock);
}

void bm_unlock(struct block *blk)
{
	struct bm *bm;

	if (!blk)
		return;
	bm = blk->bm;
	thinp_os_mutex_lock(&bm->lock);
	if (blk->write_locked)
		blk->write_locked = false;
	else if (blk->read_locks)
		blk->read_locks--;
	else
		goto out; /* not locked: a caller bug; don't corrupt the LRU */
	if (!blk->write_locked && !blk->read_locks) {
		bm->nr_locked--;
		lru_push_mru(&bm->cache, blk);
	}
out:
	thinp_os_mutex_unlock(&bm->lock);
}

static int cmp_block_nr(const void *a, const void *b)
{
	uint64_t x = (*(struct block *const *)a)->nr;
	uint64_t y = (*(struct block *const *)b)->nr;

	return x < y ? -1 : x > y;
}

/* The dirty entries, sorted by block number; -EBUSY if one is write-locked. */
static int collect_dirty_locked(struct bm *bm, struct block ***out, size_t *nr)
{
	struct cache *c = &bm->cache;
	struct block **v;
	size_t n = 0;

	*out = NULL;
	*nr = 0;
	for (struct block *blk = c->dirty.dirty_next; blk != &c->dirty; blk = blk->dirty_next)
		if (blk->write_locked)
			return -EBUSY;
	if (!c->nr_dirty)
		return 0;
	v = thinp_os_alloc(c->nr_dirty * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (struct block *blk = c->dirty.dirty_next; blk != &c->dirty; blk = blk->dirty_next)
		v[n++] = blk;
	thinp_os_sort(v, n, sizeof(*v), cmp_block_nr);
	*out = v;
	*nr = n;
	return 0;
}

/*
 * Blocks are written in ascending order, and each run of consecutive block
 * numbers (up to FLUSH_RUN_BLOCKS) as one write: a commit's dirty blocks
 * are mostly freshly allocated ones, side by side, so this turns hundreds
 * of 4 KiB writes into a few large sequential ones. Nothing about order
 * changes for the layers above: the tm keeps the superblock out of this
 * flush and writes it alone in the next. A failed write leaves its block
 * dirty; the others are still written, and the first error is returned
 * without flushing the device. Without memory for the run buffer, blocks
 * are written one by one.
 */
int bm_flush(struct bm *bm)
{
	struct block **dirty;
	char *run = NULL;
	size_t n, max = 1;
	int r;

	if (!bm)
		return -EINVAL;
	thinp_os_mutex_lock(&bm->lock);
	r = collect_dirty_locked(bm, &dirty, &n);
	if (n > 1 && (run = thinp_os_alloc_aligned(THINP_MIN(n, (size_t)FLUSH_RUN_BLOCKS) *
							   THINP_BLOCK_SIZE, THINP_BLOCK_SIZE)))
		max = THINP_MIN(n, (size_t)FLUSH_RUN_BLOCKS);
	for (size_t i = 0, k; i < n; i += k) {
		int w;

		k = run_length(dirty + i, n - i, max);
		w = k == 1 ? write_back_locked(bm, dirty[i]) : write_run_locked(bm, dirty + i, k, run);
		if (w && !r)
			r = w;
	}
	thinp_os_free(run);
	thinp_os_free(dirty);
	if (!r)
		r = thinp_io_flush(bm->io);
	thinp_os_mutex_unlock(&bm->lock);
	return r;
}

int bm_invalidate(struct bm *bm)
{
	int r = 0;

	if (!bm)
		return -EINVAL;
	thinp_os_mutex_lock(&bm->lock);
	if (bm->nr_locked) {
		r = -EBUSY;
	} else {
		cache_clear(&bm->cache);
		update_resident(bm);
	}
	thinp_os_mutex_unlock(&bm->lock);
	return r;
}

void bm_get_stats(struct bm *bm, struct bm_stats *out)
{
	thinp_os_mutex_lock(&bm->lock);
	*out = bm->stats;
	thinp_os_mutex_unlock(&bm->lock);
}
