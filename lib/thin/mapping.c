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
#include "os/os.h"

#include "thin/meta_internal.h"

/* ---- reads (lock held shared) --------------------------------------------- */

static void fill_mapping(const struct thin_details *d, const uint8_t *v, struct thin_mapping *m)
{
	uint64_t x = load_le64(v);

	m->data_block = thin_mapping_block(x);
	m->time = thin_mapping_time(x);
	m->shared = d->snapshotted_time > m->time;
	m->mapped = true;
}

/* The details and the mapping subtree of dev, as every read needs them. */
static int device_subtree(struct thinp_meta *meta, uint64_t dev, struct thin_details *d,
			  uint64_t *sub)
{
	int r = thin_dev_read_locked(meta, dev, d);

	if (!r)
		r = thin_subtree_root_locked(meta, meta->sb.data_mapping_root, dev, sub);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	return 0;
}

/*
 * Walk [vblock, vblock + n) by lower bounds in the device's subtree: each
 * step lands on the next mapped block, so a hole of any length costs one
 * descent. Unmapped is an answer, asked on every first write: no message.
 */
int thin_lookup_run_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock, uint32_t n,
			   struct thin_mapping *out)
{
	struct thin_details d;
	uint64_t sub, key, i = 0;
	uint8_t v[8];
	int r;

	/* The run may end at 2^64 exactly (the last block), not beyond. */
	if (n && n - 1 > UINT64_MAX - vblock)
		return thin_err(meta, -EINVAL, "run of %" PRIu32 " blocks at %" PRIu64
				" wraps", n, vblock);
	r = device_subtree(meta, dev, &d, &sub);
	if (r)
		return r;
	memset(out, 0, (size_t)n * sizeof(*out));
	while (i < n) {
		uint64_t at = vblock + i;

		r = btree_lower_bound(&meta->bl_info, sub, &at, &key, v);
		if (r == -ENODATA || (!r && key - vblock >= n))
			return 0;
		if (r)
			return thin_err(meta, r, "lookup of block %" PRIu64 " of device %" PRIu64
					" failed", at, dev);
		i = key - vblock;
		fill_mapping(&d, v, &out[i++]);
	}
	return 0;
}

int thinp_meta_lookup(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t *data_block,
		      uint32_t *time, bool *shared)
{
	struct thin_mapping m;
	int r = thin_rlock(meta);

	if (r)
		return r;
	r = thin_lookup_run_locked(meta, dev, vblock, 1, &m);
	thin_unlock(meta);
	if (!r && !m.mapped)
		r = -ENODATA;
	if (r)
		return r;
	if (data_block)
		*data_block = m.data_block;
	if (time)
		*time = m.time;
	if (shared)
		*shared = m.shared;
	return 0;
}

int thin_lookup_next_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock,
			    uint64_t *vblock_out, struct thin_mapping *out)
{
	struct thin_details d;
	uint64_t sub;
	uint8_t v[8];
	int r = device_subtree(meta, dev, &d, &sub);

	if (r)
		return r;
	r = btree_lower_bound(&meta->bl_info, sub, &vblock, vblock_out, v);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": nothing mapped at or after %"
				PRIu64 " (%s)", dev, vblock, thinp_strerror(r));
	fill_mapping(&d, v, out);
	return 0;
}

int thin_highest_mapped_locked(struct thinp_meta *meta, uint64_t dev, uint64_t *vblock)
{
	struct thin_details d;
	uint64_t sub;
	int r = device_subtree(meta, dev, &d, &sub);

	if (r)
		return r;
	r = btree_last(&meta->bl_info, sub, NULL, vblock, NULL);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": no highest mapped block (%s)", dev,
				thinp_strerror(r));
	return 0;
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

/* Everything an insert can refuse, checked before anything changes. */
static int check_inserts(struct thinp_meta *meta, uint64_t dev, const uint64_t *data_blocks,
			 uint32_t n, uint32_t time, struct thin_dev **td)
{
	int r;

	if (time > THINP_META_MAX_TIME)
		return thin_err(meta, -EINVAL, "time %" PRIu32 " does not fit 24 bits", time);
	for (uint32_t i = 0; i < n; i++) {
		r = check_data_block(meta, data_blocks[i]);
		if (r)
			return r;
	}
	r = thin_dev_get_locked(meta, dev, td);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	return 0;
}

static int insert_mappings(struct thinp_meta *meta, uint64_t dev, const uint64_t *vblocks,
			   const uint64_t *data_blocks, uint32_t n, uint32_t time)
{
	struct thin_dev *td;
	int r = check_inserts(meta, dev, data_blocks, n, time, &td);

	for (uint32_t i = 0; !r && i < n; i++) {
		r = do_insert(meta, td, vblocks[i], data_blocks[i], time);
		if (r)
			return thin_fail_locked(meta, r, "insert");
	}
	return r;
}

int thin_insert_run_locked(struct thinp_meta *meta, uint64_t dev, const uint64_t *vblocks,
			   const uint64_t *data_blocks, uint32_t n)
{
	return insert_mappings(meta, dev, vblocks, data_blocks, n, meta->sb.time);
}

int thin_insert_locked(struct thinp_meta *meta, uint64_t dev, uint64_t vblock,
		       uint64_t data_block, uint32_t time)
{
	return insert_mappings(meta, dev, &vblock, &data_block, 1, time);
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
