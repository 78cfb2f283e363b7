/*
 * A device's mappings: virtual block -> (data block, time) in the two-level
 * mapping tree (FORMAT.md 5.2-5.4).
 *
 * Reference rules (FORMAT.md 7.2): the caller brings one reference on the
 * data block it maps (allocated, or inc'd); the tree's value type drops the
 * reference of a mapping that is overwritten by a different block or removed.
 * mapped_blocks in the device's details moves with every new or removed key,
 * so it is always exact.
 */
#include <errno.h>
#include <inttypes.h>

#include "thin/meta_internal.h"

/* ---- reads (lock held shared) --------------------------------------------- */

static int lookup_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock,
			 uint64_t *data_block, uint32_t *time, bool *shared)
{
	struct thin_details d;
	uint64_t keys[2] = { dev, vblock };
	uint8_t v[8];
	int r;

	r = thin_dev_read_locked(meta, dev, &d);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	r = btree_lookup(&meta->info, meta->sb.data_mapping_root, keys, v);
	/* Unmapped is an answer, asked on every first write: no message
	 * (formatting one cost more than the lookup). */
	if (r == -ENODATA)
		return r;
	if (r)
		return thin_err(meta, r, "lookup of block %" PRIu64 " of device %" PRIu64
				" failed", vblock, dev);
	if (data_block)
		*data_block = thin_mapping_block(load_le64(v));
	if (time)
		*time = thin_mapping_time(load_le64(v));
	if (shared)
		*shared = d.snapshotted_time > thin_mapping_time(load_le64(v));
	return 0;
}

int thinp_meta_lookup(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t *data_block,
		      uint32_t *time, bool *shared)
{
	int r = thin_rlock(meta);

	if (r)
		return r;
	r = lookup_locked(meta, dev, vblock, data_block, time, shared);
	thin_unlock(meta);
	return r;
}

int thinp_meta_lookup_next(thinp_meta *meta, uint64_t dev, uint64_t vblock,
			   uint64_t *vblock_out, uint64_t *data_block, uint32_t *time)
{
	uint64_t keys[2] = { dev, vblock }, key, sub;
	uint8_t v[8];
	int r = thin_rlock(meta);

	if (r)
		return r;
	r = thin_subtree_root_locked(meta, meta->sb.data_mapping_root, dev, &sub);
	if (!r)
		r = btree_lower_bound(&meta->info, meta->sb.data_mapping_root, keys, &key, v);
	if (r) {
		thin_err(meta, r, "device %" PRIu64 ": nothing mapped at or after %" PRIu64
			 " (%s)", dev, vblock, thinp_strerror(r));
	} else {
		if (vblock_out)
			*vblock_out = key;
		if (data_block)
			*data_block = thin_mapping_block(load_le64(v));
		if (time)
			*time = thin_mapping_time(load_le64(v));
	}
	thin_unlock(meta);
	return r;
}

struct highest {
	uint64_t key;
	bool any;
};

static int highest_fn(void *ctx, uint64_t key, const void *value)
{
	struct highest *h = ctx;

	h->key = key;
	h->any = true;
	return 0;
}

int thinp_meta_highest_mapped(thinp_meta *meta, uint64_t dev, uint64_t *vblock)
{
	struct highest h = { 0, false };
	uint64_t sub;
	int r = thin_rlock(meta);

	if (r)
		return r;
	/* A walk is O(mappings); good enough for a status line. */
	r = thin_subtree_root_locked(meta, meta->sb.data_mapping_root, dev, &sub);
	if (!r)
		r = btree_walk(&meta->bl_info, sub, highest_fn, &h);
	if (!r && !h.any)
		r = -ENODATA;
	if (r)
		thin_err(meta, r, "device %" PRIu64 ": no highest mapped block (%s)", dev,
			 thinp_strerror(r));
	else if (vblock)
		*vblock = h.key;
	thin_unlock(meta);
	return r;
}

/* ---- changes (lock held exclusively) --------------------------------------- */

static int check_data_block(struct thinp_meta *meta, uint64_t b)
{
	uint64_t nr;
	int r;

	r = sm_get_nr_blocks(meta->data_sm, &nr);
	if (r)
		return thin_err(meta, r, "data space map: %s", thinp_strerror(r));
	if (b >= nr)
		return thin_err(meta, -EINVAL, "data block %" PRIu64 " beyond the data device (%"
				PRIu64 " blocks)", b, nr);
	return 0;
}

static int do_insert(struct thinp_meta *meta, struct thin_dev *td, uint64_t vblock,
		     uint64_t data_block, uint32_t time)
{
	uint64_t keys[2] = { td->id, vblock };
	uint8_t old[8], v[8];
	bool inserted, same;
	int r;

	r = btree_lookup(&meta->info, meta->sb.data_mapping_root, keys, old);
	if (r && r != -ENODATA)
		return r;
	same = !r && thin_mapping_block(load_le64(old)) == data_block;
	store_le64(v, thin_pack_mapping(data_block, time));
	meta->dirty = true;
	r = btree_insert(&meta->info, meta->sb.data_mapping_root, keys, v,
			 &meta->sb.data_mapping_root, &inserted);
	if (r)
		return r;
	if (inserted) {
		td->d.mapped_blocks++;
		td->changed = true;
	}
	/* Same block remapped (time change): the tree kept the old reference,
	 * so the one the caller handed over is surplus. */
	return same ? sm_dec(meta->data_sm, data_block) : 0;
}

int thin_insert_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock,
		       uint64_t data_block, uint32_t time)
{
	struct thin_dev *td;
	int r;

	if (time > THINP_META_MAX_TIME)
		return thin_err(meta, -EINVAL, "time %" PRIu32 " does not fit 24 bits", time);
	r = check_data_block(meta, data_block);
	if (r)
		return r;
	r = thin_dev_get_locked(meta, dev, &td);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	r = do_insert(meta, td, vblock, data_block, time);
	return r ? thin_fail_locked(meta, r, "insert") : 0;
}

int thinp_meta_insert_timed(thinp_meta *meta, uint64_t dev, uint64_t vblock,
			    uint64_t data_block, uint32_t time)
{
	int r = thin_wlock(meta);

	if (r)
		return r;
	r = thin_insert_locked(meta, dev, vblock, data_block, time);
	thin_unlock(meta);
	return r;
}

int thinp_meta_insert(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t data_block)
{
	int r = thin_wlock(meta);

	if (r)
		return r;
	r = thin_insert_locked(meta, dev, vblock, data_block, meta->sb.time);
	thin_unlock(meta);
	return r;
}

int thin_remove_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock)
{
	uint64_t keys[2] = { dev, vblock };
	struct thin_dev *td;
	int r;

	r = thin_dev_get_locked(meta, dev, &td);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	meta->dirty = true;
	r = btree_remove(&meta->info, meta->sb.data_mapping_root, keys,
			 &meta->sb.data_mapping_root);
	/* An absent key is a refusal: the path shadowed so far is consistent. */
	if (r == -ENODATA)
		return thin_err(meta, r, "block %" PRIu64 " of device %" PRIu64 " is not mapped",
				vblock, dev);
	if (r)
		return thin_fail_locked(meta, r, "remove");
	td->d.mapped_blocks--;
	td->changed = true;
	return 0;
}

int thinp_meta_remove(thinp_meta *meta, uint64_t dev, uint64_t vblock)
{
	int r = thin_wlock(meta);

	if (r)
		return r;
	r = thin_remove_locked(meta, dev, vblock);
	thin_unlock(meta);
	return r;
}

int thin_remove_range_locked(struct thinp_meta *meta, uint64_t dev, uint64_t begin,
			     uint64_t end, uint64_t *nr_removed)
{
	uint64_t keys[2] = { dev, begin }, n = 0;
	struct thin_dev *td;
	int r;

	if (begin > end)
		return thin_err(meta, -EINVAL, "bad range [%" PRIu64 ", %" PRIu64 ")", begin, end);
	r = thin_dev_get_locked(meta, dev, &td);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	if (begin < end) {
		meta->dirty = true;
		r = btree_remove_range(&meta->info, meta->sb.data_mapping_root, keys, end,
				       &meta->sb.data_mapping_root, &n);
		if (r)
			return thin_fail_locked(meta, r, "remove_range");
	}
	td->d.mapped_blocks -= n;
	td->changed = td->changed || n;
	if (nr_removed)
		*nr_removed = n;
	return 0;
}

int thinp_meta_remove_range(thinp_meta *meta, uint64_t dev, uint64_t begin, uint64_t end,
			    uint64_t *nr_removed)
{
	int r = thin_wlock(meta);

	if (r)
		return r;
	r = thin_remove_range_locked(meta, dev, begin, end, nr_removed);
	thin_unlock(meta);
	return r;
}
