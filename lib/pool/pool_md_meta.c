/*
 * The pool's metadata over the real dm-thin metadata, and the public entry
 * points that open a pool on a metadata device.
 *
 * The adapter calls lib/thin's private interface (thin/pool_iface.h), which
 * takes no lock: the pool's md_lock is the one lock over the handle, held
 * shared for reads and exclusively for changes, as pool_md.h's contract
 * says. Nor does lib/thin decide anything on a failure: it reports the facts
 * (info: tx_damaged, meta_out_of_space) and the pool decides (mode.c). The
 * public meta.h calls remain only for opening, formatting and closing the
 * handle, before and after the pool uses it.
 */
#include "os/os.h"

#include <libthinp/meta.h>
#include "io/io_internal.h"
#include "pool/pool_internal.h"
#include "thin/pool_iface.h"
#include "util/compiler.h"

#define SECTOR_SHIFT 9

struct md_meta {
	struct pool_md md;
	thinp_meta *meta;
};

static thinp_meta *MM(struct pool_md *md)
{
	return ((struct md_meta *)md)->meta;
}

static void mm_destroy(struct pool_md *md)
{
	thinp_meta_close(MM(md));
	thinp_os_free(md);
}

static int mm_info(struct pool_md *md, struct pool_md_info *out)
{
	struct thin_pool_info in;
	int r = thin_pool_info_locked(MM(md), &in);

	if (r)
		return r;
	memset(out, 0, sizeof(*out));
	out->trans_id = in.trans_id;
	out->held_root = in.held_root;
	out->data_nr_blocks = in.data_nr_blocks;
	out->data_nr_free = in.data_nr_free;
	out->meta_nr_blocks = in.meta_nr_blocks;
	out->meta_nr_free = in.meta_nr_free;
	out->data_block_sectors = in.data_block_sectors;
	out->time = in.time;
	out->needs_check = in.needs_check;
	out->meta_out_of_space = in.meta_out_of_space;
	out->tx_damaged = in.damaged;
	return 0;
}

/* Every change first asks whether one may run (read-only handle, damaged
 * transaction): the interface leaves that check to its caller. */
static int may_change(struct pool_md *md)
{
	return thin_may_change_locked(MM(md));
}

static int mm_commit(struct pool_md *md)
{
	int r = may_change(md);

	return r ? r : thin_commit_locked(MM(md));
}

static int mm_abort(struct pool_md *md)
{
	return thin_abort_locked(MM(md));
}

static int mm_set_needs_check(struct pool_md *md)
{
	return thin_set_needs_check_locked(MM(md));
}

static int mm_set_trans_id(struct pool_md *md, uint64_t old, uint64_t new_id)
{
	int r = may_change(md);

	return r ? r : thin_set_transaction_id_locked(MM(md), old, new_id);
}

static int mm_create_thin(struct pool_md *md, uint64_t id)
{
	int r = may_change(md);

	return r ? r : thin_create_thin_locked(MM(md), id);
}

static int mm_create_snap(struct pool_md *md, uint64_t id, uint64_t origin)
{
	int r = may_change(md);

	return r ? r : thin_create_snap_locked(MM(md), id, origin);
}

static int mm_delete_thin(struct pool_md *md, uint64_t id)
{
	int r = may_change(md);

	return r ? r : thin_delete_locked(MM(md), id);
}

static int mm_thin_info(struct pool_md *md, uint64_t id, struct pool_md_thin_info *out)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;
	int r = thin_device_locked(MM(md), id, &d);

	if (r)
		return r;
	out->mapped_blocks = d.mapped_blocks;
	out->trans_id = d.transaction_id;
	out->creation_time = d.creation_time;
	out->snapshotted_time = d.snapshotted_time;
	return 0;
}

static void copy_mapping(const struct thin_mapping *in, struct pool_md_mapping *out)
{
	out->data_block = in->data_block;
	out->time = in->time;
	out->shared = in->shared;
	out->mapped = in->mapped;
}

/* The run's results are converted in place chunk by chunk: the two structs
 * differ, and a read spanning many blocks must not allocate. */
#define RUN_CHUNK 64u

static int mm_lookup_run(struct pool_md *md, uint64_t id, uint64_t vblock, uint32_t n,
			 struct pool_md_mapping *out)
{
	struct thin_mapping m[RUN_CHUNK];
	uint32_t done = 0, k;
	int r = 0;

	while (!r && done < n) {
		k = THINP_MIN(n - done, RUN_CHUNK);
		r = thin_lookup_run_locked(MM(md), id, vblock + done, k, m);
		for (uint32_t i = 0; !r && i < k; i++)
			copy_mapping(&m[i], &out[done + i]);
		done += k;
	}
	return r;
}

static int mm_lookup(struct pool_md *md, uint64_t id, uint64_t vblock,
		     struct pool_md_mapping *out)
{
	int r = mm_lookup_run(md, id, vblock, 1, out);

	return !r && !out->mapped ? -ENODATA : r;
}

static int mm_next_mapping(struct pool_md *md, uint64_t id, uint64_t vblock,
			   uint64_t *vblock_out, struct pool_md_mapping *out)
{
	struct thin_mapping m;
	int r = thin_lookup_next_locked(MM(md), id, vblock, vblock_out, &m);

	if (!r)
		copy_mapping(&m, out);
	return r;
}

static int mm_highest_mapped(struct pool_md *md, uint64_t id, uint64_t *vblock_out)
{
	return thin_highest_mapped_locked(MM(md), id, vblock_out);
}

static int mm_insert_run(struct pool_md *md, uint64_t id, const uint64_t *vblocks,
			 const uint64_t *data_blocks, uint32_t n)
{
	int r = may_change(md);

	return r ? r : thin_insert_run_locked(MM(md), id, vblocks, data_blocks, n);
}

static int mm_insert(struct pool_md *md, uint64_t id, uint64_t vblock, uint64_t data_block)
{
	return mm_insert_run(md, id, &vblock, &data_block, 1);
}

static int mm_remove_range(struct pool_md *md, uint64_t id, uint64_t begin, uint64_t end)
{
	int r = may_change(md);

	return r ? r : thin_remove_range_locked(MM(md), id, begin, end, NULL);
}

static int mm_alloc_data(struct pool_md *md, uint64_t *block)
{
	int r = may_change(md);

	return r ? r : thin_alloc_data_block_locked(MM(md), block);
}

static int mm_data_ref(struct pool_md *md, uint64_t block, uint32_t *count)
{
	return thin_data_count_locked(MM(md), block, count);
}

static int mm_inc_data(struct pool_md *md, uint64_t block)
{
	int r = may_change(md);

	return r ? r : thin_data_inc_locked(MM(md), block);
}

static int mm_dec_data(struct pool_md *md, uint64_t block)
{
	int r = may_change(md);

	return r ? r : thin_data_dec_locked(MM(md), block);
}

static int mm_resize_data(struct pool_md *md, uint64_t nr_blocks)
{
	int r = may_change(md);

	return r ? r : thin_resize_data_locked(MM(md), nr_blocks);
}

static int mm_resize_meta(struct pool_md *md, uint64_t nr_blocks)
{
	int r = may_change(md);

	return r ? r : thin_resize_metadata_locked(MM(md), nr_blocks);
}

static int mm_reserve_snap(struct pool_md *md)
{
	int r = may_change(md);

	return r ? r : thin_reserve_metadata_snap_locked(MM(md));
}

static int mm_release_snap(struct pool_md *md)
{
	int r = may_change(md);

	return r ? r : thin_release_metadata_snap_locked(MM(md));
}

static struct thinp_meta *mm_walk_meta(struct pool_md *md)
{
	return MM(md);
}

static const struct pool_md_ops meta_ops = {
	.destroy = mm_destroy,
	.info = mm_info,
	.commit = mm_commit,
	.abort = mm_abort,
	.set_needs_check = mm_set_needs_check,
	.set_trans_id = mm_set_trans_id,
	.create_thin = mm_create_thin,
	.create_snap = mm_create_snap,
	.delete_thin = mm_delete_thin,
	.thin_info = mm_thin_info,
	.lookup = mm_lookup,
	.next_mapping = mm_next_mapping,
	.highest_mapped = mm_highest_mapped,
	.insert = mm_insert,
	.remove_range = mm_remove_range,
	.alloc_data = mm_alloc_data,
	.data_ref = mm_data_ref,
	.inc_data = mm_inc_data,
	.dec_data = mm_dec_data,
	.resize_data = mm_resize_data,
	.resize_meta = mm_resize_meta,
	.reserve_snap = mm_reserve_snap,
	.release_snap = mm_release_snap,
	.walk_meta = mm_walk_meta,
	.lookup_run = mm_lookup_run,
	.insert_run = mm_insert_run,
};

static int wrap_meta(thinp_meta *meta, struct pool_md **out)
{
	struct md_meta *m = thinp_os_zalloc(sizeof(*m));

	if (!m) {
		thinp_meta_close(meta);
		return -ENOMEM;
	}
	m->md.ops = &meta_ops;
	m->meta = meta;
	*out = &m->md;
	return 0;
}


/* The pool over an opened metadata handle and its log queue, both of which
 * it takes over (freed on failure too). With owns_meta the pool releases
 * the metadata device's lock when it is freed; on failure the caller does. */
static int make_pool(thinp_pool **out, thinp_meta *meta, struct pool_log *logq,
		     thinp_io *meta_io, thinp_io *data, const thinp_pool_options *opts,
		     bool owns_meta)
{
	struct pool_md *md;
	int r = wrap_meta(meta, &md);

	if (r) {
		pool_log_free(logq);
		return r;
	}
	r = pool_create_logged(out, md, logq, meta_io, data, opts);
	if (!r)
		(*out)->owns_meta = owns_meta;
	return r;
}
/* The metadata logs into the pool's queue (pool_log.h), never straight to
 * the caller's function: it logs with its locks held. */
static void meta_options(thinp_meta_options *mo, const thinp_pool_options *o,
			 struct pool_log *logq, bool rdonly)
{
	thinp_meta_options def = THINP_META_OPTIONS_INIT;

	*mo = def;
	mo->log_fn = logq->queue.fn;
	mo->log_ctx = logq->queue.ctx;
	mo->cache_bytes = o->metadata_cache_bytes;
	mo->flags = rdonly ? THINP_META_RDONLY : 0;
}

int thinp_pool_format(thinp_pool **out, thinp_io *meta_io, thinp_io *data,
		      const thinp_pool_options *user_opts)
{
	thinp_meta_format_params params = THINP_META_FORMAT_PARAMS_INIT;
	thinp_pool_options opts;
	thinp_meta_options mo;
	struct pool_log *logq;
	thinp_meta *meta;
	uint64_t bytes;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	r = pool_read_options(&opts, user_opts);
	if (r || !meta_io || !data || (opts.features & THINP_POOL_READ_ONLY))
		return -EINVAL;
	if (thinp_io_is_read_only(meta_io) || thinp_io_is_read_only(data))
		return -EROFS;
	if (!opts.data_block_size)
		opts.data_block_size = THINP_POOL_MIN_BLOCK_SIZE;
	if (opts.data_block_size < THINP_POOL_MIN_BLOCK_SIZE ||
	    opts.data_block_size > THINP_POOL_MAX_BLOCK_SIZE ||
	    opts.data_block_size % THINP_POOL_MIN_BLOCK_SIZE)
		return -EINVAL;
	r = thinp_io_size(data, &bytes);
	if (r)
		return r;
	params.flags = THINP_META_FORMAT_OVERWRITE;
	params.data_block_size = opts.data_block_size >> SECTOR_SHIFT;
	params.nr_data_blocks = bytes / opts.data_block_size;
	r = pool_own_meta(meta_io, &opts);
	if (r)
		return r;
	r = pool_log_new(&logq, opts.log_fn, opts.log_ctx);
	if (r)
		goto unlock;
	meta_options(&mo, &opts, logq, false);
	r = thinp_meta_format(&meta, meta_io, &params, &mo);
	if (r) {
		pool_log_free(logq);
		goto unlock;
	}
	r = make_pool(out, meta, logq, meta_io, data, &opts, true);
	if (r)
		goto unlock;
	return pool_done(*out, 0);
unlock:
	thinp_io_lock(meta_io, THINP_IO_LOCK_NONE);
	return r;
}

/*
 * As the kernel does when it loads a pool: a data device smaller than the
 * pool's data blocks is refused (mapped blocks would be out of reach); a data
 * or metadata device that grew while the pool was closed is taken into use
 * (a read-only pool only reads the sizes).
 */
static int fit_devices(thinp_pool *pool, thinp_io *meta_io, thinp_io *data)
{
	thinp_pool_status st = THINP_POOL_STATUS_INIT;
	uint64_t data_bytes, meta_bytes, meta_blocks;
	int r = thinp_pool_get_status(pool, &st);

	if (!r)
		r = thinp_io_size(data, &data_bytes);
	if (!r)
		r = thinp_io_size(meta_io, &meta_bytes);
	if (r)
		return r;
	if (data_bytes / st.data_block_size < st.data_total)
		return pool_err(pool, -EINVAL, "data device of %llu blocks is smaller than the "
				"pool's %llu", (unsigned long long)(data_bytes / st.data_block_size),
				(unsigned long long)st.data_total);
	if (st.mode != THINP_POOL_MODE_RW)
		return 0;
	if (data_bytes / st.data_block_size > st.data_total)
		r = thinp_pool_resize_data(pool, data_bytes / st.data_block_size);
	meta_blocks = THINP_MIN(meta_bytes / 4096, THINP_META_MAX_METADATA_BLOCKS);
	if (!r && meta_blocks > st.metadata_total)
		r = thinp_pool_resize_metadata(pool, meta_blocks);
	return r;
}

int thinp_pool_open(thinp_pool **out, thinp_io *meta_io, thinp_io *data,
		    const thinp_pool_options *user_opts)
{
	struct thin_pool_info info;
	thinp_pool_options opts;
	thinp_meta_options mo;
	bool owns_meta = false, rdonly;
	struct pool_log *logq;
	thinp_meta *meta;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	r = pool_read_options(&opts, user_opts);
	if (r || !meta_io || !data)
		return -EINVAL;
	/* A pool that cannot write its data device must not provision. */
	rdonly = (opts.features & THINP_POOL_READ_ONLY) || thinp_io_is_read_only(data);
	/* Opened for writing: no other writer may have the metadata. A
	 * read-only open takes no lock, so it works beside a writer. */
	if (!rdonly && !thinp_io_is_read_only(meta_io)) {
		r = pool_own_meta(meta_io, &opts);
		if (r)
			return r;
		owns_meta = true;
	}
	r = pool_log_new(&logq, opts.log_fn, opts.log_ctx);
	if (r)
		goto unlock;
	meta_options(&mo, &opts, logq, rdonly);
	r = thinp_meta_open(&meta, meta_io, &mo);
	if (r) {
		pool_log_free(logq);
		goto unlock;
	}
	/* No lock yet: nothing else knows the handle. */
	r = thin_pool_info_locked(meta, &info);
	if (!r && opts.data_block_size &&
	    (uint64_t)info.data_block_sectors << SECTOR_SHIFT != opts.data_block_size)
		r = -EINVAL;
	if (r) {
		thinp_meta_close(meta);
		pool_log_free(logq);
		goto unlock;
	}
	if (info.read_only)
		opts.features |= THINP_POOL_READ_ONLY;
	r = make_pool(out, meta, logq, meta_io, data, &opts, owns_meta);
	if (r)
		goto unlock;
	r = pool_done(*out, fit_devices(*out, meta_io, data));
	if (r) {
		thinp_pool_close(*out);
		*out = NULL;
	}
	return r;
unlock:
	if (owns_meta)
		thinp_io_lock(meta_io, THINP_IO_LOCK_NONE);
	return r;
}
