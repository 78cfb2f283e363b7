/*
 * Thin devices: create, snapshot, delete (FORMAT.md 10.1), transaction id,
 * device details for callers.
 *
 * Each change first checks everything that can make it a refusal (id in use,
 * no origin, clock exhausted) without touching metadata; only then does it
 * modify, and an error from that point on drops the whole transaction (see
 * thin_fail_locked), because a half-done change cannot be trusted.
 */
#include "os/os.h"

#include "thin/meta_internal.h"
#include "util/abi_struct.h"

int thin_subtree_root_locked(struct thinp_meta *meta, uint64_t root, uint64_t dev,
			     uint64_t *subtree)
{
	uint8_t v[8];
	int r;

	r = btree_lookup(&meta->tl_info, root, &dev, v);
	if (r)
		return r;
	*subtree = load_le64(v);
	return 0;
}

/* Refuse an id that exists in either tree (a mismatch between the trees is
 * corruption, reported as such rather than papered over). */
static int check_absent(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_details d;
	uint64_t sub;
	int r;

	r = thin_dev_read_locked(meta, dev, &d);
	if (r == 0)
		return thin_err(meta, -EEXIST, "device %" PRIu64 " already exists", dev);
	if (r != -ENODATA)
		return thin_err(meta, r, "looking up device %" PRIu64 ": %s", dev, thinp_strerror(r));
	r = thin_subtree_root_locked(meta, meta->sb.data_mapping_root, dev, &sub);
	if (r == 0)
		return thin_err(meta, THINP_CORRUPT(&meta->log, meta->sb.data_mapping_root,
						    "mapping tree", "device without details"),
				"device %" PRIu64 " has mappings but no details: metadata is corrupt",
				dev);
	if (r != -ENODATA)
		return thin_err(meta, r, "looking up device %" PRIu64 ": %s", dev, thinp_strerror(r));
	return 0;
}

static int insert_top(struct thinp_meta *meta, uint64_t dev, uint64_t subtree)
{
	uint8_t v[8];

	store_le64(v, subtree);
	meta->dirty = true;
	return btree_insert(&meta->tl_info, meta->sb.data_mapping_root, &dev, v,
			    &meta->sb.data_mapping_root, NULL);
}

static int do_create_thin(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_details d = {
		.mapped_blocks = 0, .transaction_id = meta->sb.trans_id,
		.creation_time = meta->sb.time, .snapshotted_time = meta->sb.time,
	};
	uint64_t subtree;
	int r;

	r = btree_empty(&meta->bl_info, &subtree);
	if (!r)
		r = insert_top(meta, dev, subtree);
	if (!r)
		r = thin_dev_insert_locked(meta, dev, &d);
	return r;
}

int thin_create_thin_locked(struct thinp_meta *meta, uint64_t dev)
{
	int r;

	r = check_absent(meta, dev);
	if (r)
		return r;
	r = do_create_thin(meta, dev);
	return r ? thin_fail_locked(meta, r, "create_thin") : 0;
}

/*
 * The snapshot shares the origin's whole subtree: one more reference on its
 * root is all it takes (FORMAT.md 10.1); nodes are copied lazily when either
 * side changes. The clock moves so that every existing mapping of both
 * devices now reads as "possibly shared" (5.4).
 */
static int do_create_snap(struct thinp_meta *meta, uint64_t dev, uint64_t origin,
			  uint64_t origin_root)
{
	struct thin_details d;
	struct thin_dev *otd;
	int r;

	r = tm_inc(meta->tm, origin_root);
	if (!r)
		r = insert_top(meta, dev, origin_root);
	if (!r)
		r = thin_dev_get_locked(meta, origin, &otd);
	if (r)
		return r;
	meta->sb.time++;
	otd->d.snapshotted_time = meta->sb.time;
	otd->changed = true;
	d.mapped_blocks = otd->d.mapped_blocks;
	d.transaction_id = meta->sb.trans_id;
	d.creation_time = meta->sb.time;
	d.snapshotted_time = meta->sb.time;
	return thin_dev_insert_locked(meta, dev, &d);
}

int thin_create_snap_locked(struct thinp_meta *meta, uint64_t dev, uint64_t origin)
{
	struct thin_details od;
	uint64_t origin_root;
	int r;

	r = check_absent(meta, dev);
	if (r)
		return r;
	r = thin_dev_read_locked(meta, origin, &od);
	if (!r)
		r = thin_subtree_root_locked(meta, meta->sb.data_mapping_root, origin,
					     &origin_root);
	if (r == -ENODATA)
		return thin_err(meta, r, "origin device %" PRIu64 " does not exist", origin);
	if (r)
		return thin_err(meta, r, "looking up origin %" PRIu64 ": %s", origin,
				thinp_strerror(r));
	/* Mapping values keep 24 bits of time: the clock must never reach 2^24. */
	if (meta->sb.time >= THIN_TIME_MASK)
		return thin_err(meta, -ENOSPC, "pool time %" PRIu32 " cannot advance: the "
				"24-bit snapshot clock is exhausted", meta->sb.time);
	r = do_create_snap(meta, dev, origin, origin_root);
	return r ? thin_fail_locked(meta, r, "create_snap") : 0;
}

int thin_delete_locked(struct thinp_meta *meta, uint64_t dev)
{
	struct thin_details d;
	int r;

	r = thin_dev_read_locked(meta, dev, &d);
	if (r)
		return thin_err(meta, r, r == -ENODATA ? "device %" PRIu64 " does not exist"
				: "looking up device %" PRIu64, dev);
	r = thin_dev_remove_locked(meta, dev);
	/* Removing the top-level entry runs the value's dec: the whole-subtree
	 * delete, where shared parts only lose one reference. */
	if (!r)
		r = btree_remove(&meta->tl_info, meta->sb.data_mapping_root, &dev,
				 &meta->sb.data_mapping_root);
	return r ? thin_fail_locked(meta, r, "delete") : 0;
}

int thin_set_transaction_id_locked(struct thinp_meta *meta, uint64_t cur, uint64_t next)
{
	if (meta->sb.trans_id != cur)
		return thin_err(meta, -EINVAL, "transaction id mismatch: current is %" PRIu64
				", not %" PRIu64, meta->sb.trans_id, cur);
	meta->sb.trans_id = next;
	meta->dirty = true;
	return 0;
}

/* ---- public wrappers ----------------------------------------------------- */

static int check_api_id(struct thinp_meta *meta, uint64_t dev)
{
	if (dev > THINP_META_MAX_API_DEV_ID)
		return thin_err(meta, -EINVAL, "device id %" PRIu64 " too large", dev);
	return 0;
}

int thinp_meta_create_thin(thinp_meta *meta, uint64_t dev)
{
	int r = check_api_id(meta, dev);

	if (r || (r = thin_wlock(meta)))
		return r;
	r = thin_create_thin_locked(meta, dev);
	thin_unlock(meta);
	return r;
}

/* The fields a caller's thinp_meta_device holds: out, up to dev_id; in, up
 * to snapshotted_time. */
#define DEVICE_OUT_MIN_SIZE offsetof(thinp_meta_device, mapped_blocks)
#define DEVICE_IN_MIN_SIZE offsetof(thinp_meta_device, reserved)

static void fill_device(thinp_meta_device *out, uint64_t dev, const struct thin_details *d)
{
	thinp_meta_device x = THINP_META_DEVICE_INIT;

	x.dev_id = dev;
	x.mapped_blocks = d->mapped_blocks;
	x.transaction_id = d->transaction_id;
	x.creation_time = d->creation_time;
	x.snapshotted_time = d->snapshotted_time;
	thinp_abi_copy_out(out, &x, sizeof(x), DEVICE_OUT_MIN_SIZE);
}

int thin_device_locked(struct thinp_meta *meta, uint64_t dev, thinp_meta_device *out)
{
	struct thin_details d;
	int r;

	if (thinp_abi_copy_out(out, NULL, 0, DEVICE_OUT_MIN_SIZE))
		return thin_err(meta, -EINVAL, "bad thinp_meta_device struct_size");
	r = thin_dev_read_locked(meta, dev, &d);
	if (r)
		return thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	fill_device(out, dev, &d);
	return 0;
}

int thinp_meta_set_device_details(thinp_meta *meta, uint64_t dev, const thinp_meta_device *in)
{
	thinp_meta_device x;
	struct thin_dev *td;
	int r;

	if (thinp_abi_copy_in(&x, sizeof(x), in, DEVICE_IN_MIN_SIZE, 0))
		return thin_err(meta, -EINVAL, "bad thinp_meta_device struct_size");
	r = thin_wlock(meta);
	if (r)
		return r;
	r = thin_dev_get_locked(meta, dev, &td);
	if (r) {
		thin_err(meta, r, "device %" PRIu64 ": %s", dev, thinp_strerror(r));
	} else {
		td->d.transaction_id = x.transaction_id;
		td->d.creation_time = x.creation_time;
		td->d.snapshotted_time = x.snapshotted_time;
		td->changed = true;
		meta->dirty = true;
	}
	thin_unlock(meta);
	return r;
}
