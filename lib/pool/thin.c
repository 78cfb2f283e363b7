/*
 * The data path of thin volumes: block arithmetic, provisioning, breaking
 * sharing, external origins, discard with passdown.
 *
 * A request is cut at data-block boundaries and each piece handled alone:
 *
 *   read    lookup under md_lock shared; if mapped, enter the current I/O
 *           epoch before dropping the lock, read the data block with no
 *           lock held, leave the epoch. Unmapped pieces come from the
 *           origin or are zeroes. A read spanning several blocks looks up
 *           to READ_RUN of them at once (lookup_run) in one epoch and reads
 *           each run of blocks contiguous on the data device at once.
 *   write   fast path as for read: a mapped block that is not shared is
 *           written in place, in an epoch, unlocked. Otherwise the piece's
 *           virtual block is range-locked, looked up again, and a new data
 *           block is allocated (entering an epoch under md_lock), filled
 *           (old data, origin data or zeroes for the part the write does
 *           not cover, assembled in memory: one read and one write to break
 *           sharing; no zeroes where the new block reads as zeroes already,
 *           thinp_io_is_zero), and only then mapped: a reader never sees a mapping to
 *           a block whose contents are not there yet, and a crash never
 *           leaves one committed (the commit waits for the operation and
 *           flushes data first).
 *   discard rounded inwards to whole blocks, range-locked, mappings removed
 *           in batches, each batch one metadata operation (a commit or an
 *           allocation elsewhere waits for one batch at most); with passdown
 *           each removed block is held by an extra reference while the
 *           others are dropped, and discarded on the data device only if the
 *           hold is then its only reference.
 *   fill    (hydration, pool_thin_fill_hole) a whole block written only if
 *           the block is still unprovisioned once its range lock is held:
 *           the provisioning path of a write, with "a write came first"
 *           meaning "do nothing".
 *
 * No metadata lock is held across data I/O, so provisioning, snapshots and
 * commits never wait for the reads and writes of other volumes. What the
 * lock used to guarantee follows from the I/O epochs (io_epoch.h) instead.
 * Every data I/O to a block found by a lookup, or allocated, entered its
 * epoch inside the md_lock section that found or allocated the block. So a
 * metadata change made later under md_lock exclusive can close the epoch
 * and know: every I/O that may still use a block as it was before the
 * change is at or before that point.
 *
 *  (a) A freed data block is reused only after the I/O to it is done. The
 *      space maps hand out a block freed in a transaction only after the
 *      commit that freed it (lib/sm: the old-state check and ll_note_freed;
 *      tests/sm/test_sm.c's model asserts it on every allocation, and the
 *      pool tests' metadata model keeps the same rule).
 *      Every operation that can free a data block (a mapping replaced by a
 *      copy, unmapping, releasing a passdown hold, delete_thin) marks the
 *      transaction (txn_frees); its commit closes the epoch into
 *      realloc_point, and an allocation first waits until realloc_point
 *      has passed. I/O that found the block did its lookup before the free
 *      (after it, no lookup finds the block) and so entered an epoch at or
 *      before realloc_point. A rollback returns the blocks allocated since
 *      the last commit to the free space at once; the first allocation after
 *      it (md_epoch moved) closes the epoch and waits likewise.
 *  (b) A snapshot does not lose an in-place write in flight. create_snap
 *      closes the epoch into snap_point. An in-place write looked its block
 *      up as unshared, so before the snapshot, and entered an epoch at or
 *      before snap_point; after the snapshot no lookup finds the block
 *      unshared, so no new in-place write starts. A copy of a shared block
 *      waits for snap_point before it reads the block, so the write has
 *      landed and is in the copy (otherwise the origin would lose it, and
 *      a snapshot's contents could change after a read).
 *  (c) Discard passdown: the batch closes the epoch after unmapping and
 *      waits for it before discarding on the device, so a read or write
 *      that found the block before the unmap is done first; no new one can
 *      find it (unmapped, and held so not reallocated).
 *  (d) delete_thin refuses an open volume (-EBUSY), so no I/O goes through
 *      it; blocks it shared stay referenced by the other volumes; the
 *      blocks it frees are covered by (a).
 *
 * The block under a copy cannot change meanwhile: the copier holds the
 * range lock of its virtual block, and the volume (open) cannot be deleted,
 * so the old block keeps its reference.
 */
#include "os/os.h"

#include <libthinp/meta.h>
#include "pool/origin_ops.h"
#include "pool/pool_internal.h"
#include "util/abi_struct.h"
#include "util/compiler.h"

#define COPY_CHUNK (1024u * 1024)
#define DISCARD_BATCH 256
#define READ_RUN 64 /* blocks per batched lookup of a read */

/* A read of the metadata failed: mode.c decides (pool_md_read_failed). */
static int md_read_failed(thinp_pool *pool, int err, const char *what)
{
	return pool_md_read_failed(pool, err, what);
}

static uint64_t block_off(thinp_pool *pool, uint64_t block, uint64_t off_in_block)
{
	return block * pool->block_size + off_in_block;
}

/* ---- open / close ---- */

static int read_thin_options(thinp_thin_options *dst, const thinp_thin_options *src)
{
	if (thinp_abi_copy_in(dst, sizeof(*dst), src,
			      offsetof(thinp_thin_options, origin) + sizeof(void *),
			      THINP_THIN_OPTIONS_VERSION))
		return -EINVAL;
	if (!dst->size || (dst->flags & ~(uint32_t)THINP_THIN_RDONLY))
		return -EINVAL;
	return 0;
}

/* Count one more handle on id. Called with md_lock held (shared), which
 * orders it against delete (exclusive). */
static int register_open(thinp_pool *pool, uint64_t id)
{
	struct open_thin *o;
	int r = 0;

	thinp_os_mutex_lock(&pool->state_lock);
	for (o = pool->open; o && o->id != id; o = o->next)
		;
	if (o) {
		o->count++;
	} else if ((o = thinp_os_zalloc(sizeof(*o)))) {
		o->id = id;
		o->count = 1;
		o->next = pool->open;
		pool->open = o;
	} else {
		r = -ENOMEM;
	}
	thinp_os_mutex_unlock(&pool->state_lock);
	return r;
}

static void unregister_open(thinp_pool *pool, uint64_t id)
{
	struct open_thin **pp, *o;

	thinp_os_mutex_lock(&pool->state_lock);
	for (pp = &pool->open; (o = *pp); pp = &o->next) {
		if (o->id != id)
			continue;
		if (--o->count == 0) {
			*pp = o->next;
			thinp_os_free(o);
		}
		break;
	}
	thinp_os_mutex_unlock(&pool->state_lock);
}

static unsigned open_count(thinp_pool *pool, uint64_t id)
{
	struct open_thin *o;
	unsigned n = 0;

	thinp_os_mutex_lock(&pool->state_lock);
	for (o = pool->open; o; o = o->next)
		if (o->id == id)
			n = o->count;
	thinp_os_mutex_unlock(&pool->state_lock);
	return n;
}

static int setup_origin(thinp_thin *thin, thinp_io *origin)
{
	int r;

	thin->origin = origin;
	if (!origin)
		return 0;
	r = thinp_io_size(origin, &thin->origin_size);
	if (r)
		return r;
	thin->align = THINP_MAX(thin->align, thinp_io_align(origin));
	return 0;
}

int thinp_thin_open(thinp_thin **out, thinp_pool *pool, uint64_t id,
		    const thinp_thin_options *user_opts)
{
	struct pool_md_thin_info ti;
	thinp_thin_options opts;
	thinp_thin *thin;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!pool || read_thin_options(&opts, user_opts))
		return -EINVAL;
	thin = thinp_os_zalloc(sizeof(*thin));
	if (!thin)
		return -ENOMEM;
	thin->pool = pool;
	thin->id = id;
	thin->size = opts.size;
	thin->flags = opts.flags;
	thin->align = pool->data_align;
	r = setup_origin(thin, opts.origin);
	if (r) {
		thinp_os_free(thin);
		return pool_done(pool, pool_err(pool, r, "thin %llu: origin size",
						(unsigned long long)id));
	}
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->thin_info(pool->md, id, &ti);
	if (!r)
		r = register_open(pool, id);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r) {
		thinp_os_free(thin);
		return pool_done(pool, pool_err(pool, r, "open thin %llu", (unsigned long long)id));
	}
	*out = thin;
	return 0;
}

void thinp_thin_close(thinp_thin *thin)
{
	if (!thin)
		return;
	unregister_open(thin->pool, thin->id);
	thinp_os_free(thin);
}

uint64_t thinp_thin_size(const thinp_thin *thin)
{
	return thin ? thin->size : 0;
}

uint64_t thinp_thin_id(const thinp_thin *thin)
{
	return thin ? thin->id : 0;
}

static int check_range(const thinp_thin *thin, uint64_t len, uint64_t off)
{
	if (off > thin->size || len > thin->size - off)
		return -EINVAL;
	if (thin->align > 1 && ((off | len) & (thin->align - 1)))
		return -EINVAL;
	return 0;
}

/* ---- reads ---- */

/* Bytes [off, off + len) of the volume as if never written: origin data
 * where the origin has some, zeroes elsewhere. */
static int read_unmapped(thinp_thin *thin, void *buf, uint64_t len, uint64_t off)
{
	uint64_t from_origin = 0;
	int r;

	if (thin->origin && off < thin->origin_size)
		from_origin = THINP_MIN(len, thin->origin_size - off);
	if (from_origin) {
		r = thinp_io_read(thin->origin, buf, from_origin, off, 0);
		if (r)
			return pool_err(thin->pool, r, "thin %llu: origin read",
					(unsigned long long)thin->id);
	}
	memset((char *)buf + from_origin, 0, len - from_origin);
	return 0;
}

static int read_piece(thinp_thin *thin, uint64_t vblock, uint64_t boff, uint64_t len, void *buf)
{
	thinp_pool *pool = thin->pool;
	struct pool_md_mapping m;
	uint64_t ep;
	int r;

	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->lookup(pool->md, thin->id, vblock, &m);
	if (!r)
		ep = io_epoch_enter(&pool->epochs);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (!r) {
		r = thinp_io_read(pool->data_io, buf, len, block_off(pool, m.data_block, boff), 0);
		io_epoch_leave(&pool->epochs, ep);
		return r ? pool_err(pool, r, "data device read") : 0;
	}
	if (r != -ENODATA)
		return md_read_failed(pool, r, "mapping lookup");
	return read_unmapped(thin, buf, len, vblock * pool->block_size + boff);
}

/* Call fn on each block-sized piece of [off, off + len). */
typedef int (*piece_fn)(thinp_thin *thin, uint64_t vblock, uint64_t boff, uint64_t len,
			void *buf);

static int for_each_piece(thinp_thin *thin, uint64_t len, uint64_t off, char *buf, piece_fn fn)
{
	uint64_t bs = thin->pool->block_size;
	int r;

	while (len) {
		uint64_t boff = off % bs, n = THINP_MIN(len, bs - boff);

		r = fn(thin, off / bs, boff, n, buf);
		if (r)
			return r;
		off += n;
		len -= n;
		if (buf)
			buf += n;
	}
	return 0;
}

/*
 * Read the pieces [off, off + len) of the blocks m[0..n) describe (the
 * mappings of n consecutive virtual blocks): each run of mapped blocks that
 * are consecutive on the data device too is one device read; holes come
 * from the origin or are zeroes.
 */
static int read_mapped_run(thinp_thin *thin, const struct pool_md_mapping *m, uint32_t n,
			   char *buf, uint64_t len, uint64_t off)
{
	thinp_pool *pool = thin->pool;
	uint64_t bs = pool->block_size;
	int r = 0;

	for (uint32_t i = 0, j; i < n && !r; i = j) {
		uint64_t boff = off % bs, span = THINP_MIN(len, bs - boff);

		for (j = i + 1; j < n && m[i].mapped && m[j].mapped &&
				m[j].data_block == m[i].data_block + (j - i);
		     j++)
			span += THINP_MIN(len - span, bs);
		if (!m[i].mapped)
			r = read_unmapped(thin, buf, span, off);
		else if ((r = thinp_io_read(pool->data_io, buf, span,
					   block_off(pool, m[i].data_block, boff), 0)))
			r = pool_err(pool, r, "data device read");
		buf += span;
		off += span;
		len -= span;
	}
	return r;
}

/*
 * A read spanning 2..READ_RUN blocks: one lookup of all of them (one
 * md_lock section, one I/O epoch for the whole read), then as few device
 * reads as the mappings allow.
 */
static int read_run(thinp_thin *thin, char *buf, uint64_t len, uint64_t off)
{
	thinp_pool *pool = thin->pool;
	uint64_t first = off / pool->block_size;
	uint32_t n = (uint32_t)((off + len - 1) / pool->block_size - first + 1);
	struct pool_md_mapping m[READ_RUN];
	uint64_t ep = 0;
	int r;

	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->lookup_run(pool->md, thin->id, first, n, m);
	if (!r)
		ep = io_epoch_enter(&pool->epochs);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r)
		return md_read_failed(pool, r, "mapping lookup");
	r = read_mapped_run(thin, m, n, buf, len, off);
	io_epoch_leave(&pool->epochs, ep);
	return r;
}

/* Reads go in runs of up to READ_RUN blocks; a one-block read takes the
 * single lookup (the cache's fast path). */
static int read_all(thinp_thin *thin, char *buf, uint64_t len, uint64_t off)
{
	uint64_t bs = thin->pool->block_size;
	int r = 0;

	while (len && !r) {
		uint64_t n = THINP_MIN(len, READ_RUN * bs - off % bs);

		if (off % bs + n <= bs)
			r = read_piece(thin, off / bs, off % bs, n, buf);
		else
			r = read_run(thin, buf, n, off);
		buf += n;
		off += n;
		len -= n;
	}
	return r;
}

int thinp_thin_read(thinp_thin *thin, void *buf, uint64_t len, uint64_t off)
{
	int r;

	if (!thin || (!buf && len))
		return -EINVAL;
	r = check_range(thin, len, off);
	if (!r)
		r = pool_check_readable(thin->pool);
	return r ? r : pool_done(thin->pool, read_all(thin, buf, len, off));
}

/* ---- writes ---- */

/* Write to the data device; src NULL writes zeroes. */
static int data_write(thinp_pool *pool, const void *src, uint64_t len, uint64_t off)
{
	int r = src ? thinp_io_write(pool->data_io, src, len, off, 0)
		    : thinp_io_write_zeroes(pool->data_io, len, off, 0);

	thinp_os_atomic_bool_store(&pool->data_written, true);
	return r ? pool_err(pool, r, "data device write") : 0;
}

/* What a write found at its block. */
struct write_lookup {
	bool done;     /* written in place (or failed) */
	bool mapped;   /* otherwise: m holds the (shared) mapping */
	struct pool_md_mapping m;
	uint64_t snap_point; /* the last snapshot's I/O epoch point */
};

/*
 * Look vblock up and, if it is mapped and not shared, write in place, in an
 * I/O epoch entered under md_lock shared, with no lock held. Otherwise *wl
 * describes what is there now.
 */
static int write_in_place(thinp_thin *thin, uint64_t vblock, uint64_t boff, uint64_t len,
			  const void *src, struct write_lookup *wl)
{
	thinp_pool *pool = thin->pool;
	uint64_t ep;
	int r;

	wl->done = true;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->lookup(pool->md, thin->id, vblock, &wl->m);
	wl->snap_point = pool->snap_point;
	if (!r && !wl->m.shared) {
		ep = io_epoch_enter(&pool->epochs);
		thinp_os_rwlock_read_unlock(&pool->md_lock);
		r = data_write(pool, src, len, block_off(pool, wl->m.data_block, boff));
		io_epoch_leave(&pool->epochs, ep);
		return r;
	}
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r && r != -ENODATA)
		return md_read_failed(pool, r, "mapping lookup");
	wl->mapped = r == 0;
	wl->done = false;
	return 0;
}

/*
 * The contents vblock had in [off, off + n) of its block before the write:
 * the old block's (breaking sharing), or origin data and zeroes (unmapped).
 * One read at most.
 */
static int read_old(thinp_thin *thin, uint64_t vblock, const struct pool_md_mapping *old,
		    void *buf, uint64_t n, uint64_t off)
{
	thinp_pool *pool = thin->pool;
	int r;

	if (!old)
		return read_unmapped(thin, buf, n, vblock * pool->block_size + off);
	r = thinp_io_read(pool->data_io, buf, n, block_off(pool, old->data_block, off), 0);
	return r ? pool_err(pool, r, "data device read (copy)") : 0;
}

/* Has the origin data at byte off of vblock's block? */
static bool origin_has(thinp_thin *thin, uint64_t vblock, uint64_t off)
{
	return thin->origin && vblock * thin->pool->block_size + off < thin->origin_size;
}

/*
 * Write src at [lo, hi) of block nb and zeroes around it in
 * [off, off + n) with the device's own write-zeroes: on a file that is an
 * extent change (ZERO_RANGE) rather than moving zero bytes, which costs
 * less than one assembled write of the whole block (bench_datapath: 0.6
 * vs 0.4 of the raw file for random first writes with a flush every 64).
 */
static int write_between_zeroes(thinp_pool *pool, uint64_t nb, uint64_t off, uint64_t n,
				uint64_t lo, uint64_t hi, const char *src)
{
	int r = 0;

	if (lo > off)
		r = data_write(pool, NULL, lo - off, block_off(pool, nb, off));
	if (!r)
		r = data_write(pool, src, hi - lo, block_off(pool, nb, lo));
	if (!r && off + n > hi)
		r = data_write(pool, NULL, off + n - hi, block_off(pool, nb, hi));
	return r;
}

/* A new block being filled: the write [woff, woff + wlen) of src (NULL:
 * zeroes) laid over the contents vblock had (the old block's, or the
 * origin's and zeroes where it was unmapped). */
struct fill {
	thinp_thin *thin;
	uint64_t vblock;
	const struct pool_md_mapping *old; /* NULL: vblock was unmapped */
	uint64_t nb;
	uint64_t woff, wlen;
	const char *src;
	bool zeroed; /* nb reads as zeroes already: nothing to zero around the write */
	char *buf;   /* a chunk, for old contents */
};

/* Write the part [lo, hi) of the block that the write covers (nothing when
 * it misses, or writes zeroes over a block that is zeroes already). */
static int write_covered(const struct fill *f, uint64_t lo, uint64_t hi)
{
	thinp_pool *pool = f->thin->pool;

	if (hi == lo || (!f->src && f->zeroed))
		return 0;
	return data_write(pool, f->src ? f->src + (lo - f->woff) : NULL, hi - lo,
			  block_off(pool, f->nb, lo));
}

/*
 * Fill [off, off + n) of the new block, one chunk of it: the old contents
 * with the write laid over them, assembled in f->buf and written once. So
 * breaking the sharing of a block costs one read and one write, and
 * provisioning an unmapped one a single write (plus one origin read where it
 * has an origin), except that zeroes around the write go to a device's
 * native write-zeroes, or nowhere where the block reads as zeroes already.
 */
static int fill_chunk(const struct fill *f, uint64_t off, uint64_t n)
{
	thinp_pool *pool = f->thin->pool;
	uint64_t lo = THINP_MAX(off, f->woff), hi = THINP_MIN(off + n, f->woff + f->wlen);
	int r;

	if (lo >= hi)
		lo = hi = off; /* the write misses this chunk */
	if (lo == off && hi == off + n)
		return write_covered(f, lo, hi);
	if (!f->old && !origin_has(f->thin, f->vblock, off)) {
		/* The old contents are zeroes: nothing to read. */
		if (f->zeroed || (pool->features & THINP_POOL_SKIP_BLOCK_ZEROING))
			return write_covered(f, lo, hi);
		if (hi == lo || !f->src)
			return data_write(pool, NULL, n, block_off(pool, f->nb, off));
		if (thinp_io_caps(pool->data_io) & THINP_IO_CAP_WRITE_ZEROES)
			return write_between_zeroes(pool, f->nb, off, n, lo, hi,
						    f->src + (lo - f->woff));
	}
	r = read_old(f->thin, f->vblock, f->old, f->buf, n, off);
	if (r)
		return r;
	if (f->src)
		memcpy(f->buf + (lo - off), f->src + (lo - f->woff), hi - lo);
	else
		memset(f->buf + (lo - off), 0, hi - lo);
	return data_write(pool, f->buf, n, block_off(pool, f->nb, off));
}

/*
 * Does the new block nb of an unmapped vblock with no origin read as zeroes
 * already, so that zeroing around a partial write would only write zeroes
 * over zeroes? On a sparse file a block never used, or punched out by a
 * discard's passdown, is a hole, and one lseek says so where zeroing would
 * cost two fallocates (bench_datapath, random writes into a fresh volume).
 * The answer may rest on a passdown not yet flushed: data_written makes the
 * commit that maps nb flush the data device first, so the block cannot be
 * durably mapped before its zeroes are durable. An error answers no: the
 * block is then zeroed as usual.
 */
static bool reads_as_zeroes(const struct fill *f)
{
	thinp_pool *pool = f->thin->pool;

	if (f->old || f->wlen == pool->block_size || origin_has(f->thin, f->vblock, 0) ||
	    (pool->features & THINP_POOL_SKIP_BLOCK_ZEROING))
		return false;
	if (thinp_io_is_zero(pool->data_io, pool->block_size, block_off(pool, f->nb, 0)) != 1)
		return false;
	thinp_os_atomic_bool_store(&pool->data_written, true);
	return true;
}

/* Write the new block nb for vblock: the write [boff, boff + len) of src
 * over the contents the volume had there, in chunks of at most COPY_CHUNK. */
static int fill_new_block(thinp_thin *thin, uint64_t vblock, const struct pool_md_mapping *old,
			  uint64_t nb, uint64_t boff, uint64_t len, const void *src)
{
	uint64_t bs = thin->pool->block_size, chunk = THINP_MIN(bs, COPY_CHUNK);
	struct fill f = { thin, vblock, old, nb, boff, len, src, false, NULL };
	int r = 0;

	f.zeroed = reads_as_zeroes(&f);
	if (len < bs && !f.zeroed && !(f.buf = thinp_os_alloc_aligned(chunk, 4096)))
		return -ENOMEM;
	for (uint64_t off = 0; off < bs && !r; off += chunk)
		r = fill_chunk(&f, off, THINP_MIN(chunk, bs - off));
	thinp_os_free(f.buf);
	return r;
}

/* Map vblock to the filled block nb (replacing a mapping if `replaces`), or
 * give nb back on failure. An abort (md_epoch moved) since nb was allocated
 * already undid the allocation. */
static int map_new_block(thinp_thin *thin, uint64_t vblock, uint64_t nb, bool replaces,
			 uint64_t epoch, int fill_err)
{
	thinp_pool *pool = thin->pool;
	int r = fill_err;

	thinp_os_rwlock_write_lock(&pool->md_lock);
	if (pool->md_epoch != epoch) {
		r = r ? r : -EROFS;
	} else if (r) {
		int r2 = pool->md->ops->dec_data(pool->md, nb);

		if (r2)
			pool_md_failed_locked(pool, r2, "data block release");
	} else {
		/* The replaced block may lose its last reference (its other
		 * sharer deleted since), with reads of it in flight. */
		pool->txn_frees |= replaces;
		r = pool->md->ops->insert(pool->md, thin->id, vblock, nb);
		if (r)
			r = pool_md_failed_locked(pool, r, "mapping insert");
		pool->md_dirty = true;
	}
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	return r;
}

/* Provision vblock (unmapped, or mapped to the shared block *old) with a new
 * block holding the write. The caller holds the range lock. */
static int provision(thinp_thin *thin, uint64_t vblock, const struct pool_md_mapping *old,
		     uint64_t boff, uint64_t len, const void *src)
{
	thinp_pool *pool = thin->pool;
	uint64_t nb, epoch, ep;
	int r;

	r = pool_check_writable(pool);
	if (r)
		return pool_err(pool, r, "thin %llu: write needs a new block, pool is not writable",
				(unsigned long long)thin->id);
	pool_op_begin(pool);
	r = pool_alloc_data(pool, &nb, &epoch, &ep);
	if (!r) {
		r = fill_new_block(thin, vblock, old, nb, boff, len, src);
		io_epoch_leave(&pool->epochs, ep);
		r = map_new_block(thin, vblock, nb, old != NULL, epoch, r);
	}
	pool_op_end(pool);
	return r;
}

static int write_piece(thinp_thin *thin, uint64_t vblock, uint64_t boff, uint64_t len,
		       void *buf)
{
	thinp_pool *pool = thin->pool;
	struct write_lookup wl;
	int r;

	r = write_in_place(thin, vblock, boff, len, buf, &wl);
	if (wl.done)
		return r;
	r = range_lock(pool, thin->id, vblock, vblock + 1);
	if (r)
		return r;
	/* Look again: another writer may have provisioned it meanwhile. */
	r = write_in_place(thin, vblock, boff, len, buf, &wl);
	if (!wl.done) {
		/* Copying a shared block: in-place writes to it from before the
		 * snapshot must have landed (their data belongs in the copy). */
		if (wl.mapped)
			io_epoch_wait(&pool->epochs, wl.snap_point);
		r = provision(thin, vblock, wl.mapped ? &wl.m : NULL, boff, len, buf);
	}
	range_unlock(pool, thin->id, vblock, vblock + 1);
	if (!r && !wl.done)
		pool_check_low_water(pool);
	return r;
}

static int check_write(thinp_thin *thin, uint64_t len, uint64_t off)
{
	int r;

	if (thin->flags & THINP_THIN_RDONLY)
		return -EROFS;
	r = check_range(thin, len, off);
	if (r)
		return r;
	return pool_check_readable(thin->pool) ? -EROFS : 0;
}

int thinp_thin_write(thinp_thin *thin, const void *buf, uint64_t len, uint64_t off)
{
	int r;

	if (!thin || (!buf && len))
		return -EINVAL;
	r = check_write(thin, len, off);
	return r ? r : pool_done(thin->pool, for_each_piece(thin, len, off, (char *)buf, write_piece));
}

/* A whole block that was never provisioned already reads as zeroes when
 * there is no origin: leave it unprovisioned. */
static int zero_piece(thinp_thin *thin, uint64_t vblock, uint64_t boff, uint64_t len,
		      void *unused)
{
	thinp_pool *pool = thin->pool;
	struct pool_md_mapping m;
	int r;

	if (len == pool->block_size && !thin->origin) {
		thinp_os_rwlock_read_lock(&pool->md_lock);
		r = pool->md->ops->lookup(pool->md, thin->id, vblock, &m);
		thinp_os_rwlock_read_unlock(&pool->md_lock);
		if (r == -ENODATA)
			return 0;
		if (r)
			return md_read_failed(pool, r, "mapping lookup");
	}
	return write_piece(thin, vblock, boff, len, NULL);
}

int thinp_thin_write_zeroes(thinp_thin *thin, uint64_t len, uint64_t off)
{
	int r;

	if (!thin)
		return -EINVAL;
	r = check_write(thin, len, off);
	return r ? r : pool_done(thin->pool, for_each_piece(thin, len, off, NULL, zero_piece));
}

/* ---- discard ---- */

struct discard_batch {
	uint64_t vb[DISCARD_BATCH];
	uint64_t db[DISCARD_BATCH];
	bool pass[DISCARD_BATCH];
	unsigned n;
	uint64_t end; /* the batch covers [cursor, end) */
};

/* Under md_lock exclusive: collect the next mappings in [cursor, stop),
 * hold their blocks if passing down, unmap them, and mark the blocks no one
 * else uses. */
static int unmap_batch_locked(thinp_thin *thin, uint64_t cursor, uint64_t stop, bool passdown,
			      struct discard_batch *b)
{
	struct pool_md *md = thin->pool->md;
	struct pool_md_mapping m;
	uint64_t vb;
	uint32_t count;
	int r = 0;

	b->n = 0;
	b->end = stop;
	while (b->n < DISCARD_BATCH && cursor < stop) {
		r = md->ops->next_mapping(md, thin->id, cursor, &vb, &m);
		if (r == -ENODATA || (!r && vb >= stop)) {
			r = 0;
			break;
		}
		if (r)
			return r;
		b->vb[b->n] = vb;
		b->db[b->n++] = m.data_block;
		cursor = vb + 1;
	}
	if (b->n == DISCARD_BATCH)
		b->end = cursor;
	for (unsigned i = 0; passdown && i < b->n && !r; i++)
		r = md->ops->inc_data(md, b->db[i]);
	if (!r && b->n)
		r = md->ops->remove_range(md, thin->id, b->vb[0], b->end);
	for (unsigned i = 0; passdown && i < b->n && !r; i++) {
		r = md->ops->data_ref(md, b->db[i], &count);
		b->pass[i] = count == 1;
	}
	return r;
}

/* Discard the marked blocks on the data device, contiguous runs at once. */
static int pass_down(thinp_pool *pool, const struct discard_batch *b)
{
	int r = 0;

	for (unsigned i = 0; i < b->n && !r; i++) {
		unsigned j = i;

		if (!b->pass[i])
			continue;
		while (j + 1 < b->n && b->pass[j + 1] && b->db[j + 1] == b->db[j] + 1)
			j++;
		r = thinp_io_discard(pool->data_io, (b->db[j] - b->db[i] + 1) * pool->block_size,
				     b->db[i] * pool->block_size, 0);
		thinp_os_atomic_bool_store(&pool->data_written, true);
		if (r == -EOPNOTSUPP)
			r = 0;
		i = j;
	}
	return r ? pool_err(pool, r, "data device discard") : 0;
}

static int release_holds(thinp_pool *pool, const struct discard_batch *b, uint64_t epoch)
{
	int r = 0;

	thinp_os_rwlock_write_lock(&pool->md_lock);
	for (unsigned i = 0; i < b->n && !r && pool->md_epoch == epoch; i++)
		r = pool->md->ops->dec_data(pool->md, b->db[i]);
	if (r)
		r = pool_md_failed_locked(pool, r, "discard: releasing data blocks");
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	return r;
}

/*
 * One batch of a discard, as one metadata operation: unmap the next
 * mappings from *cursor on and, with passdown, discard the blocks no one
 * else uses on the data device and drop the holds. A commit waits for the
 * whole batch (it must not record the holds) and slips in between batches.
 * *done: nothing was left to unmap.
 */
static int discard_batch(thinp_thin *thin, struct discard_batch *b, uint64_t *cursor,
			 uint64_t end, bool passdown, bool *done)
{
	thinp_pool *pool = thin->pool;
	uint64_t epoch, point = 0;
	int r;

	pool_op_begin(pool);
	thinp_os_rwlock_write_lock(&pool->md_lock);
	epoch = pool->md_epoch;
	r = pool_check_writable(pool);
	if (!r) {
		r = unmap_batch_locked(thin, *cursor, end, passdown, b);
		if (r)
			r = pool_md_failed_locked(pool, r, "discard");
		else if (b->n)
			pool->md_dirty = pool->txn_frees = true;
	}
	if (!r && b->n && passdown)
		point = io_epoch_close(&pool->epochs);
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	*done = r || !b->n;
	if (!*done && passdown) {
		/* Reads and in-place writes that found these blocks before
		 * the unmap finish before the device forgets them. */
		io_epoch_wait(&pool->epochs, point);
		r = pass_down(pool, b);
		int r2 = release_holds(pool, b, epoch);
		r = r ? r : r2;
	}
	pool_op_end(pool);
	*cursor = b->end;
	return r;
}

/* Unmap [begin, end) under its range lock, in batches. */
static int discard_blocks(thinp_thin *thin, uint64_t begin, uint64_t end, bool passdown)
{
	struct discard_batch *b = thinp_os_alloc(sizeof(*b));
	uint64_t cursor = begin;
	bool done = false;
	int r = 0;

	if (!b)
		return -ENOMEM;
	while (cursor < end && !r && !done)
		r = discard_batch(thin, b, &cursor, end, passdown, &done);
	thinp_os_free(b);
	return r;
}

/* Unmap [begin, end) under its range lock (discard and pool_thin_unmap). */
static int unmap_range(thinp_thin *thin, uint64_t begin, uint64_t end, bool passdown)
{
	thinp_pool *pool = thin->pool;
	int r;

	if (begin >= end)
		return 0;
	r = pool_check_writable(pool);
	if (r)
		return r;
	r = range_lock(pool, thin->id, begin, end);
	if (r)
		return r;
	r = discard_blocks(thin, begin, end, passdown);
	range_unlock(pool, thin->id, begin, end);
	return pool_done(pool, r);
}

int thinp_thin_discard(thinp_thin *thin, uint64_t len, uint64_t off)
{
	thinp_pool *pool;
	int r;

	if (!thin)
		return -EINVAL;
	pool = thin->pool;
	if (pool->features & THINP_POOL_IGNORE_DISCARD)
		return -EOPNOTSUPP;
	r = check_write(thin, len, off);
	if (r)
		return r;
	return unmap_range(thin, (off + pool->block_size - 1) / pool->block_size,
			   (off + len) / pool->block_size,
			   !(pool->features & THINP_POOL_NO_DISCARD_PASSDOWN) &&
				   (thinp_io_caps(pool->data_io) & THINP_IO_CAP_DISCARD));
}

/* ---- operations of the origin workflows (pool/origin_ops.h) ---- */

int pool_thin_fill_hole(thinp_thin *thin, uint64_t vblock, const void *block)
{
	thinp_pool *pool = thin->pool;
	struct pool_md_mapping m;
	int r;

	if (thin->flags & THINP_THIN_RDONLY)
		return -EROFS;
	r = range_lock(pool, thin->id, vblock, vblock + 1);
	if (r)
		return r;
	/* Under the range lock no provisioning write can map the block; a
	 * lookup that finds it mapped means a write came first and won. */
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->lookup(pool->md, thin->id, vblock, &m);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r == -ENODATA) {
		r = provision(thin, vblock, NULL, 0, pool->block_size, block);
		r = r ? r : 1;
	} else if (r) {
		r = md_read_failed(pool, r, "mapping lookup");
	}
	range_unlock(pool, thin->id, vblock, vblock + 1);
	if (r == 1)
		pool_check_low_water(pool);
	return pool_done(pool, r);
}

/* Under md_lock exclusive: one device's part of pool_share_block. */
static int share_locked(thinp_pool *pool, uint64_t id, uint64_t vblock, uint64_t block)
{
	struct pool_md_mapping cur;
	int r = pool->md->ops->lookup(pool->md, id, vblock, &cur);

	if (r)
		return r == -ENODATA ? r : md_read_failed(pool, r, "mapping lookup");
	if (cur.data_block == block)
		return 0;
	/* The insert takes over one reference and drops the replaced block's. */
	r = pool->md->ops->inc_data(pool->md, block);
	if (!r)
		r = pool->md->ops->insert(pool->md, id, vblock, block);
	if (r)
		return pool_md_failed_locked(pool, r, "sharing a data block");
	pool->md_dirty = true;
	/* The replaced block may lose its last reference with reads of it in
	 * flight. */
	pool->txn_frees = true;
	return 1;
}

int pool_share_block(thinp_pool *pool, const uint64_t *ids, size_t n, uint64_t vblock,
		     uint64_t from, uint64_t from_vblock)
{
	struct pool_md_mapping want;
	int r = pool_check_writable(pool), done = 0;

	if (r)
		return r;
	pool_op_begin(pool);
	thinp_os_rwlock_write_lock(&pool->md_lock);
	r = pool->md->ops->lookup(pool->md, from, from_vblock, &want);
	if (r && r != -ENODATA)
		r = md_read_failed(pool, r, "mapping lookup");
	for (size_t i = 0; !r && i < n; i++) {
		r = share_locked(pool, ids[i], vblock, want.data_block);
		done |= r == 1;
		r = r == 1 ? 0 : r;
	}
	thinp_os_rwlock_write_unlock(&pool->md_lock);
	pool_op_end(pool);
	return pool_done(pool, r ? r : done);
}

int pool_thin_unmap(thinp_thin *thin, uint64_t begin, uint64_t end)
{
	if (thin->flags & THINP_THIN_RDONLY)
		return -EROFS;
	return unmap_range(thin, begin, end, false);
}

thinp_io *pool_thin_origin(const thinp_thin *thin)
{
	return thin->origin;
}

thinp_pool *pool_thin_pool(const thinp_thin *thin)
{
	return thin->pool;
}

/* ---- flush ---- */

int thinp_thin_flush(thinp_thin *thin)
{
	thinp_pool *pool;
	int r;

	if (!thin)
		return -EINVAL;
	pool = thin->pool;
	if (pool_check_readable(pool))
		return -EROFS;
	if (pool_check_writable(pool)) {
		/* Read-only pool: no metadata can change, data can. */
		r = thinp_io_flush(pool->data_io);
		return pool_done(pool, r ? pool_err(pool, r, "data device flush") : 0);
	}
	return pool_done(pool, pool_flush_and_commit(pool));
}

/* ---- queries ---- */

/* The 1.0 thinp_mapping: every field up to shared. */
#define MAPPING_MIN_SIZE (offsetof(thinp_mapping, reserved) + sizeof(uint32_t))

static void to_public(const struct pool_md_mapping *m, thinp_mapping *out)
{
	thinp_mapping x = THINP_MAPPING_INIT;

	x.data_block = m->data_block;
	x.time = m->time;
	x.shared = m->shared;
	thinp_abi_copy_out(out, &x, sizeof(x), MAPPING_MIN_SIZE);
}

int thinp_pool_thin_map(thinp_pool *pool, uint64_t id, uint64_t vblock, thinp_mapping *out)
{
	struct pool_md_mapping m;
	int r;

	if (!pool || thinp_abi_copy_out(out, NULL, 0, MAPPING_MIN_SIZE))
		return -EINVAL;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->lookup(pool->md, id, vblock, &m);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (!r)
		to_public(&m, out);
	return pool_done(pool, r);
}

int thinp_pool_thin_next_map(thinp_pool *pool, uint64_t id, uint64_t vblock,
			     uint64_t *vblock_out, thinp_mapping *out)
{
	struct pool_md_mapping m;
	int r;

	if (!pool || !vblock_out || thinp_abi_copy_out(out, NULL, 0, MAPPING_MIN_SIZE))
		return -EINVAL;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->next_mapping(pool->md, id, vblock, vblock_out, &m);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (!r)
		to_public(&m, out);
	return pool_done(pool, r);
}

struct id_list {
	uint64_t *ids;
	size_t max, total;
};

static int list_one(const thinp_meta_device *d, void *ctx)
{
	struct id_list *l = ctx;

	if (l->total < l->max)
		l->ids[l->total] = d->dev_id;
	l->total++;
	return 0;
}

int thinp_pool_list_thins(thinp_pool *pool, uint64_t *ids, size_t max, size_t *total)
{
	struct id_list l = { ids, max, 0 };
	thinp_meta *meta;
	int r;

	if (!pool || !total || (max && !ids))
		return -EINVAL;
	meta = pool->md->ops->walk_meta ? pool->md->ops->walk_meta(pool->md) : NULL;
	if (!meta)
		return -EOPNOTSUPP;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = thinp_meta_walk_devices(meta, THINP_META_LIVE, list_one, &l);
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	*total = l.total;
	return pool_done(pool, r ? pool_err(pool, r, "listing volumes") : 0);
}

int thinp_pool_get_thin_status(thinp_pool *pool, uint64_t id, thinp_thin_status *st)
{
	struct pool_md_thin_info ti;
	thinp_thin_status s;
	uint64_t high = 0;
	int r;

	if (!pool || thinp_abi_copy_out(st, NULL, 0, 8))
		return -EINVAL;
	thinp_os_rwlock_read_lock(&pool->md_lock);
	r = pool->md->ops->thin_info(pool->md, id, &ti);
	if (!r) {
		r = pool->md->ops->highest_mapped(pool->md, id, &high);
		if (!r)
			high++;
		else if (r == -ENODATA)
			r = 0, high = 0;
	}
	thinp_os_rwlock_read_unlock(&pool->md_lock);
	if (r)
		return r;
	memset(&s, 0, sizeof(s));
	s.creation_time = ti.creation_time;
	s.mapped_blocks = ti.mapped_blocks;
	s.highest_mapped = high;
	s.transaction_id = ti.trans_id;
	s.snapshotted_time = ti.snapshotted_time;
	s.open_count = open_count(pool, id);
	return thinp_abi_copy_out(st, &s, sizeof(s), 8);
}
