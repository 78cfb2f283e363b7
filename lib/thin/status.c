/*
 * Superblock fields and the pool status, as callers and the kernel's status
 * line see them (FORMAT.md 3, 8.4, 10.3, 16).
 *
 * Metadata "used" includes the kernel's reserve of min(4096, total/10)
 * blocks: the kernel reports the reserve as used so that a pool runs out of
 * metadata space while it can still commit, and `dmsetup status` shows it.
 */
#include "os/os.h"

#include "thin/meta_internal.h"
#include "util/abi_struct.h"

/* The fields every caller's thinp_meta_superblock holds, in and out. */
#define SUPERBLOCK_MIN_SIZE offsetof(thinp_meta_superblock, held_root)

static void fill_sb(struct thinp_meta *meta, const struct thin_sb *sb, bool live,
		    thinp_meta_superblock *x)
{
	memset(x, 0, sizeof(*x));
	x->struct_size = sizeof(*x);
	x->flags = sb->flags;
	x->version = sb->version;
	x->time = sb->time;
	x->transaction_id = sb->trans_id;
	x->held_root = sb->held_root;
	x->data_block_size = sb->data_block_size;
	x->metadata_block_size = sb->metadata_block_size;
	x->sb_metadata_nr_blocks = sb->metadata_nr_blocks;
	x->compat_flags = sb->compat_flags;
	x->compat_ro_flags = sb->compat_ro_flags;
	x->incompat_flags = sb->incompat_flags;
	x->data_mapping_root = sb->data_mapping_root;
	x->device_details_root = sb->device_details_root;
	x->blocknr = sb->blocknr;
	/* A snapshot records no space maps: thin_dump prints nr_data_blocks 0. */
	if (live) {
		sm_get_nr_blocks(meta->data_sm, &x->nr_data_blocks);
		sm_get_nr_blocks(meta->metadata_sm, &x->metadata_nr_blocks);
	}
}

int thinp_meta_get_superblock(thinp_meta *meta, uint64_t source, thinp_meta_superblock *out)
{
	thinp_meta_superblock x;
	struct thin_sb sb;
	int r;

	if (thinp_abi_copy_out(out, NULL, 0, SUPERBLOCK_MIN_SIZE))
		return thin_err(meta, -EINVAL, "bad thinp_meta_superblock struct_size");
	r = thin_xlock(meta);
	if (r)
		return r;
	r = thin_read_source_sb_locked(meta, source, &sb);
	if (!r) {
		fill_sb(meta, &sb, source == THINP_META_LIVE && !meta->snapshot_only, &x);
		thinp_abi_copy_out(out, &x, sizeof(x), SUPERBLOCK_MIN_SIZE);
	}
	thin_unlock(meta);
	return r;
}

int thinp_meta_set_superblock_fields(thinp_meta *meta, const thinp_meta_superblock *sb)
{
	thinp_meta_superblock x;
	int r;

	if (thinp_abi_copy_in(&x, sizeof(x), sb, SUPERBLOCK_MIN_SIZE, 0))
		return thin_err(meta, -EINVAL, "bad thinp_meta_superblock struct_size");
	if (x.version < THIN_VERSION_MIN || x.version > THIN_VERSION_MAX)
		return thin_err(meta, -EINVAL, "version must be 1 or 2");
	if (x.flags & ~THINP_META_FLAG_NEEDS_CHECK)
		return thin_err(meta, -EINVAL, "unknown superblock flags");
	r = thin_wlock(meta);
	if (r)
		return r;
	meta->sb.time = x.time;
	meta->sb.trans_id = x.transaction_id;
	meta->sb.flags = x.flags;
	meta->sb.version = x.version;
	meta->dirty = true;
	thin_unlock(meta);
	return 0;
}

static uint64_t metadata_reserve(uint64_t total)
{
	return THINP_MIN(4096ull, total / 10);
}

int thin_status_locked(struct thinp_meta *meta, thinp_meta_status *x)
{
	uint64_t free_data, free_meta;
	int r = thin_need_space_maps(meta);

	if (r)
		return r;
	memset(x, 0, sizeof(*x));
	x->struct_size = sizeof(*x);
	x->mode = meta->mode;
	x->transaction_id = meta->sb.trans_id;
	x->held_root = meta->sb.held_root;
	x->needs_check = (meta->sb.flags & THIN_FLAG_NEEDS_CHECK) != 0;
	r = sm_get_nr_blocks(meta->metadata_sm, &x->total_metadata_blocks);
	if (!r)
		r = sm_get_nr_free(meta->metadata_sm, &free_meta);
	if (!r)
		r = sm_get_nr_blocks(meta->data_sm, &x->total_data_blocks);
	if (!r)
		r = sm_get_nr_free(meta->data_sm, &free_data);
	if (r)
		return r;
	x->metadata_reserve = metadata_reserve(x->total_metadata_blocks);
	x->free_metadata_blocks = free_meta;
	free_meta = free_meta > x->metadata_reserve ? free_meta - x->metadata_reserve : 0;
	x->used_metadata_blocks = x->total_metadata_blocks - free_meta;
	x->used_data_blocks = x->total_data_blocks - free_data;
	x->metadata_low_watermark = THINP_MIN(1024ull, x->total_metadata_blocks / 4);
	return 0;
}

int thin_pool_info_locked(struct thinp_meta *meta, struct thin_pool_info *out)
{
	thinp_meta_status st;
	int r = thin_status_locked(meta, &st);

	/* A space map that failed mid-change answers nothing until the
	 * rollback; the facts of the failure must still reach the caller. */
	if (r && !meta->damaged)
		return thin_err(meta, r, "reading the space maps: %s", thinp_strerror(r));
	if (r)
		memset(&st, 0, sizeof(st));
	memset(out, 0, sizeof(*out));
	out->trans_id = meta->sb.trans_id;
	out->held_root = meta->sb.held_root;
	out->needs_check = (meta->sb.flags & THIN_FLAG_NEEDS_CHECK) != 0;
	out->data_nr_blocks = st.total_data_blocks;
	out->data_nr_free = st.total_data_blocks - st.used_data_blocks;
	out->meta_nr_blocks = st.total_metadata_blocks;
	out->meta_nr_free = st.free_metadata_blocks;
	out->data_block_sectors = meta->sb.data_block_size;
	out->time = meta->sb.time;
	out->damaged = meta->damaged;
	out->meta_out_of_space = meta->damaged && meta->fault_nospace;
	out->read_only = meta->read_only;
	return 0;
}

int thinp_meta_get_status(thinp_meta *meta, thinp_meta_status *out)
{
	const size_t min_size = offsetof(thinp_meta_status, metadata_reserve);
	thinp_meta_status x;
	int r;

	if (thinp_abi_copy_out(out, NULL, 0, min_size))
		return thin_err(meta, -EINVAL, "bad thinp_meta_status struct_size");
	r = thin_xlock(meta);
	if (r)
		return r;
	r = thin_status_locked(meta, &x);
	if (r) {
		thin_err(meta, r, "reading the space maps: %s", thinp_strerror(r));
	} else {
		thinp_abi_copy_out(out, &x, sizeof(x), min_size);
	}
	thin_unlock(meta);
	return r;
}
