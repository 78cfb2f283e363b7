/*
 * Growing the data and metadata devices (FORMAT.md 6.5, 6.8, 11).
 *
 * Both only grow: the kernel refuses to shrink either, and so do we. While
 * NEEDS_CHECK is set the kernel refuses resizes (the metadata may be wrong
 * about what is free), and so do we. The superblock's metadata_nr_blocks
 * keeps its format-time value, as in the kernel: the metadata space map's
 * nr_blocks is the authoritative size.
 */
#include "os/os.h"

#include "thin/meta_internal.h"

static int refuse_if_needs_check(struct thinp_meta *meta)
{
	if (meta->sb.flags & THIN_FLAG_NEEDS_CHECK)
		return thin_err(meta, -EROFS, "needs_check is set: check the metadata before "
				"resizing");
	return 0;
}

static int grow(struct thinp_meta *meta, struct space_map *sm, uint64_t new_nr,
		const char *what)
{
	uint64_t old;
	int r;

	r = sm_get_nr_blocks(sm, &old);
	if (r)
		return thin_err(meta, r, "%s space map: %s", what, thinp_strerror(r));
	if (new_nr < old)
		return thin_err(meta, -EINVAL, "cannot shrink the %s device from %" PRIu64
				" to %" PRIu64 " blocks", what, old, new_nr);
	if (new_nr == old)
		return 0;
	meta->dirty = true;
	r = sm_extend(sm, new_nr - old);
	/* A half-extended space map cannot be trusted: the transaction goes. */
	return r ? thin_fail_locked(meta, r, what) : 0;
}

int thin_resize_data_locked(struct thinp_meta *meta, uint64_t nr_data_blocks)
{
	int r;

	if (nr_data_blocks > THINP_META_MAX_DATA_BLOCKS)
		return thin_err(meta, -EINVAL, "%" PRIu64 " data blocks: more than 2^40",
				nr_data_blocks);
	r = refuse_if_needs_check(meta);
	return r ? r : grow(meta, meta->data_sm, nr_data_blocks, "data");
}

static int metadata_target(struct thinp_meta *meta, uint64_t *nr)
{
	uint64_t dev = bm_nr_blocks(meta->bm);

	if (*nr == 0)
		*nr = dev;
	if (*nr > dev)
		return thin_err(meta, -EINVAL, "%" PRIu64 " metadata blocks: the device has only %"
				PRIu64, *nr, dev);
	if (*nr > THINP_META_MAX_METADATA_BLOCKS) {
		tlog(&meta->log, THINP_LOG_WARNING, "metadata device of %" PRIu64 " blocks: only "
		     "%llu can be used, the rest is ignored", *nr, THINP_META_MAX_METADATA_BLOCKS);
		*nr = THINP_META_MAX_METADATA_BLOCKS;
	}
	return 0;
}

/* Growing is how a pool out of metadata space recovers (its rollback left
 * it on the last commit, where the growth starts from). */
int thin_resize_metadata_locked(struct thinp_meta *meta, uint64_t nr_blocks)
{
	int r = refuse_if_needs_check(meta);

	if (!r)
		r = metadata_target(meta, &nr_blocks);
	return r ? r : grow(meta, meta->metadata_sm, nr_blocks, "metadata");
}
