/*
 * The data space map as the pool runtime uses it: allocate, reference, count.
 *
 * Allocation never returns a block freed in the open transaction: the last
 * committed metadata may still map it, and after a crash that mapping would
 * point at overwritten data (FORMAT.md 6.7). The space map enforces this.
 */
#include <errno.h>
#include <inttypes.h>

#include "thin/meta_internal.h"

static int check_range(struct thinp_meta *meta, uint64_t b)
{
	uint64_t nr;
	int r;

	r = sm_get_nr_blocks(meta->data_sm, &nr);
	if (r)
		return r;
	if (b >= nr)
		return thin_err(meta, -EINVAL, "data block %" PRIu64 " beyond the data device (%"
				PRIu64 " blocks)", b, nr);
	return 0;
}

int thin_alloc_data_block_locked(struct thinp_meta *meta, uint64_t *out)
{
	int r;

	r = sm_new_block(meta->data_sm, out);
	/* The search for a free data block changes nothing when it fails; the
	 * count's bitmap may need a metadata block that is not there. */
	if (r == -ENOSPC && !thin_out_of_metadata_space_locked(meta, r))
		return thin_err(meta, r, "out of data space");
	if (r)
		return thin_fail_locked(meta, r, "data block allocation");
	meta->dirty = true;
	return 0;
}

int thinp_meta_alloc_data_block(thinp_meta *meta, uint64_t *out)
{
	int r;

	if (!out)
		return thin_err(meta, -EINVAL, "NULL out");
	r = thin_wlock(meta);
	if (r)
		return r;
	r = thin_alloc_data_block_locked(meta, out);
	thin_unlock(meta);
	return r;
}

static int data_ref_change(struct thinp_meta *meta, uint64_t b, bool inc)
{
	uint32_t count;
	int r;

	r = thin_wlock(meta);
	if (r)
		return r;
	r = check_range(meta, b);
	if (!r && !inc) {
		r = sm_get_count(meta->data_sm, b, &count);
		if (!r && count == 0)
			r = thin_err(meta, -EINVAL, "data block %" PRIu64 " is free", b);
	}
	if (!r) {
		meta->dirty = true;
		r = inc ? sm_inc(meta->data_sm, b) : sm_dec(meta->data_sm, b);
		if (r)
			r = thin_fail_locked(meta, r, inc ? "data block inc" : "data block dec");
	}
	thin_unlock(meta);
	return r;
}

int thinp_meta_data_inc(thinp_meta *meta, uint64_t data_block)
{
	return data_ref_change(meta, data_block, true);
}

int thinp_meta_data_dec(thinp_meta *meta, uint64_t data_block)
{
	return data_ref_change(meta, data_block, false);
}

int thinp_meta_data_count(thinp_meta *meta, uint64_t data_block, uint32_t *count)
{
	int r;

	if (!count)
		return thin_err(meta, -EINVAL, "NULL count");
	r = thin_xlock(meta);
	if (r)
		return r;
	r = check_range(meta, data_block);
	if (!r)
		r = sm_get_count(meta->data_sm, data_block, count);
	thin_unlock(meta);
	return r;
}
