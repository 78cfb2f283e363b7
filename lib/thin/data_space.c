/*
 * The data space map as the pool runtime uses it: allocate, reference, count.
 *
 * Allocation never returns a block freed in the open transaction: the last
 * committed metadata may still map it, and after a crash that mapping would
 * point at overwritten data (FORMAT.md 6.7). The space map enforces this.
 */
#include "os/os.h"

#include "thin/meta_internal.h"

static int check_range(struct thinp_meta *meta, uint64_t b)
{
	uint64_t nr;
	int r = thin_need_space_maps(meta);

	if (!r)
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

static int data_ref_change_locked(struct thinp_meta *meta, uint64_t b, bool inc)
{
	uint32_t count;
	int r;

	r = check_range(meta, b);
	if (!r && !inc) {
		r = sm_get_count(meta->data_sm, b, &count);
		if (!r && count == 0)
			r = thin_err(meta, -EINVAL, "data block %" PRIu64 " is free", b);
	}
	if (r)
		return r;
	meta->dirty = true;
	r = inc ? sm_inc(meta->data_sm, b) : sm_dec(meta->data_sm, b);
	return r ? thin_fail_locked(meta, r, inc ? "data block inc" : "data block dec") : 0;
}

int thin_data_inc_locked(struct thinp_meta *meta, uint64_t b)
{
	return data_ref_change_locked(meta, b, true);
}

int thin_data_dec_locked(struct thinp_meta *meta, uint64_t b)
{
	return data_ref_change_locked(meta, b, false);
}

int thin_data_count_locked(struct thinp_meta *meta, uint64_t b, uint32_t *count)
{
	int r = check_range(meta, b);

	return r ? r : sm_get_count(meta->data_sm, b, count);
}

int thinp_meta_data_inc(thinp_meta *meta, uint64_t data_block)
{
	int r = thin_wlock(meta);

	if (r)
		return r;
	r = thin_data_inc_locked(meta, data_block);
	thin_unlock(meta);
	return r;
}
