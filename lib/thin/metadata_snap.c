/*
 * Metadata snapshots ("held root", FORMAT.md 9).
 *
 * A snapshot is a copy of the committed superblock in a block of its own,
 * with zeroed space-map roots, that holds one reference on the mapping root
 * and one on the details root. Because those roots are then shared, every
 * later change of the live trees copies the nodes it touches, and the
 * snapshot's trees stay exactly as they were at the reservation. Releasing
 * it deletes both trees through the ordinary whole-tree delete: only what the
 * live pool no longer shares is freed.
 *
 * The kernel shadows block 0 to make the copy; we allocate a block and encode
 * the superblock we just committed, which gives the same bytes.
 */
#include "os/os.h"

#include "thin/meta_internal.h"

static int write_snapshot_sb(struct thinp_meta *meta, uint64_t *location)
{
	struct thin_sb copy = meta->sb;
	struct block *blk;
	int r;

	r = tm_new_block(meta->tm, &thin_sb_validator, &blk);
	if (r)
		return r;
	*location = block_location(blk);
	memset(copy.data_sm_root, 0, sizeof(copy.data_sm_root));
	memset(copy.metadata_sm_root, 0, sizeof(copy.metadata_sm_root));
	copy.held_root = 0;
	copy.blocknr = *location;
	thin_sb_encode(&copy, block_data(blk));
	tm_unlock(meta->tm, blk);
	return 0;
}

static int do_reserve(struct thinp_meta *meta)
{
	uint64_t s;
	int r;

	/* The roots the copy names must be the committed ones. */
	r = thin_commit_locked(meta);
	if (!r)
		r = write_snapshot_sb(meta, &s);
	if (!r)
		r = tm_inc(meta->tm, meta->sb.data_mapping_root);
	if (!r)
		r = tm_inc(meta->tm, meta->sb.device_details_root);
	if (r)
		return r;
	meta->sb.held_root = s;
	meta->dirty = true;
	return 0;
}

int thin_reserve_metadata_snap_locked(struct thinp_meta *meta)
{
	int r;

	if (meta->sb.held_root)
		return thin_err(meta, -EBUSY, "a metadata snapshot is already held (block %"
				PRIu64 "): release it first", meta->sb.held_root);
	r = do_reserve(meta);
	return r ? thin_fail_locked(meta, r, "reserve_metadata_snap") : 0;
}

static int do_release(struct thinp_meta *meta, uint64_t held)
{
	struct thin_sb snap;
	int r;

	r = thin_read_source_sb_locked(meta, held, &snap);
	if (r)
		return r;
	meta->sb.held_root = 0;
	meta->dirty = true;
	r = btree_del(&meta->tl_info, snap.data_mapping_root);
	if (!r)
		r = btree_del(&meta->details_info, snap.device_details_root);
	if (!r)
		r = tm_dec(meta->tm, held);
	return r;
}

int thin_release_metadata_snap_locked(struct thinp_meta *meta)
{
	int r;

	if (!meta->sb.held_root)
		return thin_err(meta, -EINVAL, "no metadata snapshot is held");
	r = do_release(meta, meta->sb.held_root);
	return r ? thin_fail_locked(meta, r, "release_metadata_snap") : 0;
}

/* A metadata-snapshot superblock at `b`, validated as such. */
int thin_read_snapshot_sb_locked(struct thinp_meta *meta, uint64_t b, struct thin_sb *sb)
{
	struct block *blk;
	const char *why = NULL;
	uint64_t nr_meta;
	int r;

	/* The device size bounds it: the space map may not be read under a
	 * shared lock. */
	nr_meta = bm_nr_blocks(meta->bm);
	if (b == THIN_SUPERBLOCK_LOCATION || b >= nr_meta)
		return thin_err(meta, -EINVAL, "block %" PRIu64 " cannot hold a metadata snapshot",
				b);
	r = tm_read_lock(meta->tm, b, &thin_sb_validator, &blk);
	if (r)
		return thin_err(meta, r, "metadata snapshot at block %" PRIu64 ": %s", b,
				thinp_strerror(r));
	thin_sb_decode(block_data(blk), sb);
	tm_unlock(meta->tm, blk);
	r = thin_sb_check_fields(sb, b, true, false, nr_meta, &why);
	if (r)
		return thin_err(meta, THINP_CORRUPT(&meta->log, b, "metadata snapshot", why),
				"metadata snapshot at block %" PRIu64 ": %s", b, why);
	return 0;
}

uint64_t thin_held_block_locked(const struct thinp_meta *meta)
{
	return meta->snapshot_only ? meta->snap_block : meta->sb.held_root;
}

int thin_read_source_sb_locked(struct thinp_meta *meta, uint64_t source, struct thin_sb *sb)
{
	/* A snapshot-only handle's superblock is the snapshot's, read once at
	 * open: it never changes while held. */
	if (meta->snapshot_only && source != THINP_META_LIVE && source != THINP_META_HELD_ROOT &&
	    source != meta->snap_block)
		return thin_err(meta, -EINVAL, "this handle reads only the metadata snapshot at "
				"block %" PRIu64, meta->snap_block);
	if (source == THINP_META_LIVE || meta->snapshot_only) {
		*sb = meta->sb;
		return 0;
	}
	if (source == THINP_META_HELD_ROOT) {
		if (!meta->sb.held_root)
			return thin_err(meta, -ENODATA, "no metadata snapshot is held");
		source = meta->sb.held_root;
	}
	return thin_read_snapshot_sb_locked(meta, source, sb);
}
