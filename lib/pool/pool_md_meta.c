/*
 * The pool's metadata over the real dm-thin metadata (libthinp/meta.h), and
 * the public entry points that open a pool on a metadata device.
 *
 * The adapter is thin: each pool_md operation is one thinp_meta call, plus
 * the "shared" bit of a mapping, which needs the device's snapshotted time
 * where meta.h does not compute it (lookup_next). thinp_meta has its own
 * rw-lock; the pool's md_lock above it decides the order of changes, so that
 * lock is never contended for long.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libthinp/meta.h>
#include "pool/pool_internal.h"
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
	free(md);
}

static int mm_info(struct pool_md *md, struct pool_md_info *out)
{
	thinp_meta_status st = THINP_META_STATUS_INIT;
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	int r = thinp_meta_get_status(MM(md), &st);

	if (!r)
		r = thinp_meta_get_superblock(MM(md), THINP_META_LIVE, &sb);
	if (r)
		return r;
	memset(out, 0, sizeof(*out));
	out->trans_id = st.transaction_id;
	out->held_root = st.held_root;
	out->data_nr_blocks = st.total_data_blocks;
	out->data_nr_free = st.total_data_blocks - st.used_data_blocks;
	out->meta_nr_blocks = st.total_metadata_blocks;
	out->meta_nr_free = st.free_metadata_blocks;
	out->data_block_sectors = sb.data_block_size;
	out->time = sb.time;
	out->needs_check = st.needs_check || (sb.flags & THINP_META_FLAG_NEEDS_CHECK);
	out->meta_out_of_space = st.mode == THINP_META_MODE_NO_SPACE;
	return 0;
}

static int mm_commit(struct pool_md *md)
{
	return thinp_meta_commit(MM(md));
}

static int mm_abort(struct pool_md *md)
{
	return thinp_meta_abort(MM(md));
}

static int mm_set_needs_check(struct pool_md *md)
{
	return thinp_meta_set_needs_check(MM(md));
}

static int mm_set_trans_id(struct pool_md *md, uint64_t old, uint64_t new_id)
{
	return thinp_meta_set_transaction_id(MM(md), old, new_id);
}

static int mm_create_thin(struct pool_md *md, uint64_t id)
{
	return thinp_meta_create_thin(MM(md), id);
}

static int mm_create_snap(struct pool_md *md, uint64_t id, uint64_t origin)
{
	return thinp_meta_create_snap(MM(md), id, origin);
}

static int mm_delete_thin(struct pool_md *md, uint64_t id)
{
	return thinp_meta_delete(MM(md), id);
}

static int mm_thin_info(struct pool_md *md, uint64_t id, struct pool_md_thin_info *out)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;
	int r = thinp_meta_device_info(MM(md), id, &d);

	if (r)
		return r;
	out->mapped_blocks = d.mapped_blocks;
	out->trans_id = d.transaction_id;
	out->creation_time = d.creation_time;
	out->snapshotted_time = d.snapshotted_time;
	return 0;
}

static int mm_lookup(struct pool_md *md, uint64_t id, uint64_t vblock,
		     struct pool_md_mapping *out)
{
	return thinp_meta_lookup(MM(md), id, vblock, &out->data_block, &out->time, &out->shared);
}

static int mm_next_mapping(struct pool_md *md, uint64_t id, uint64_t vblock,
			   uint64_t *vblock_out, struct pool_md_mapping *out)
{
	thinp_meta_device d = THINP_META_DEVICE_INIT;
	int r = thinp_meta_lookup_next(MM(md), id, vblock, vblock_out, &out->data_block,
				       &out->time);

	if (!r)
		r = thinp_meta_device_info(MM(md), id, &d);
	if (!r)
		out->shared = d.snapshotted_time > out->time;
	return r;
}

static int mm_highest_mapped(struct pool_md *md, uint64_t id, uint64_t *vblock_out)
{
	return thinp_meta_highest_mapped(MM(md), id, vblock_out);
}

static int mm_insert(struct pool_md *md, uint64_t id, uint64_t vblock, uint64_t data_block)
{
	return thinp_meta_insert(MM(md), id, vblock, data_block);
}

static int mm_remove_range(struct pool_md *md, uint64_t id, uint64_t begin, uint64_t end)
{
	return thinp_meta_remove_range(MM(md), id, begin, end, NULL);
}

static int mm_alloc_data(struct pool_md *md, uint64_t *block)
{
	return thinp_meta_alloc_data_block(MM(md), block);
}

static int mm_data_ref(struct pool_md *md, uint64_t block, uint32_t *count)
{
	return thinp_meta_data_count(MM(md), block, count);
}

static int mm_inc_data(struct pool_md *md, uint64_t block)
{
	return thinp_meta_data_inc(MM(md), block);
}

static int mm_dec_data(struct pool_md *md, uint64_t block)
{
	return thinp_meta_data_dec(MM(md), block);
}

static int mm_resize_data(struct pool_md *md, uint64_t nr_blocks)
{
	return thinp_meta_resize_data(MM(md), nr_blocks);
}

static int mm_resize_meta(struct pool_md *md, uint64_t nr_blocks)
{
	return thinp_meta_resize_metadata(MM(md), nr_blocks);
}

static int mm_reserve_snap(struct pool_md *md)
{
	return thinp_meta_reserve_metadata_snap(MM(md));
}

static int mm_release_snap(struct pool_md *md)
{
	return thinp_meta_release_metadata_snap(MM(md));
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
};

static int wrap_meta(thinp_meta *meta, struct pool_md **out)
{
	struct md_meta *m = calloc(1, sizeof(*m));

	if (!m) {
		thinp_meta_close(meta);
		return -ENOMEM;
	}
	m->md.ops = &meta_ops;
	m->meta = meta;
	*out = &m->md;
	return 0;
}

static void meta_options(thinp_meta_options *mo, const thinp_pool_options *o, bool rdonly)
{
	thinp_meta_options def = THINP_META_OPTIONS_INIT;

	*mo = def;
	mo->log_fn = o->log_fn;
	mo->log_ctx = o->log_ctx;
	mo->cache_bytes = o->metadata_cache_bytes;
	mo->flags = rdonly ? THINP_META_RDONLY : 0;
}

int thinp_pool_format(thinp_pool **out, thinp_io *meta_io, thinp_io *data,
		      const thinp_pool_options *user_opts)
{
	thinp_meta_format_params params = THINP_META_FORMAT_PARAMS_INIT;
	thinp_pool_options opts;
	thinp_meta_options mo;
	struct pool_md *md;
	thinp_meta *meta;
	uint64_t bytes;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	r = pool_read_options(&opts, user_opts);
	if (r || !meta_io || !data || (opts.features & THINP_POOL_READ_ONLY))
		return -EINVAL;
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
	meta_options(&mo, &opts, false);
	r = thinp_meta_format(&meta, meta_io, &params, &mo);
	if (r)
		return r;
	r = wrap_meta(meta, &md);
	return r ? r : pool_create(out, md, meta_io, data, &opts);
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
	thinp_meta_superblock sb = THINP_META_SUPERBLOCK_INIT;
	thinp_pool_options opts;
	thinp_meta_options mo;
	struct pool_md *md;
	thinp_meta *meta;
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	r = pool_read_options(&opts, user_opts);
	if (r || !meta_io || !data)
		return -EINVAL;
	meta_options(&mo, &opts, opts.features & THINP_POOL_READ_ONLY);
	r = thinp_meta_open(&meta, meta_io, &mo);
	if (r)
		return r;
	r = thinp_meta_get_superblock(meta, THINP_META_LIVE, &sb);
	if (!r && opts.data_block_size &&
	    (uint64_t)sb.data_block_size << SECTOR_SHIFT != opts.data_block_size)
		r = -EINVAL;
	if (r) {
		thinp_meta_close(meta);
		return r;
	}
	if (thinp_meta_mode(meta) != THINP_META_MODE_RW)
		opts.features |= THINP_POOL_READ_ONLY;
	r = wrap_meta(meta, &md);
	if (!r)
		r = pool_create(out, md, meta_io, data, &opts);
	if (!r)
		r = fit_devices(*out, meta_io, data);
	if (r && *out) {
		thinp_pool_close(*out);
		*out = NULL;
	}
	return r;
}
