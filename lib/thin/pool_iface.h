/*
 * The thin metadata as the pool runtime uses it (lib/pool/pool_md_meta.c):
 * the operations behind the public meta.h functions, without their lock and
 * without their failure policy.
 *
 * Locking contract: nothing here takes a lock. The caller holds ONE lock
 * over the handle (the pool's md_lock) and keeps to this rule: functions
 * marked "read" may run concurrently with each other under that lock held
 * shared; every other function runs with it held exclusively (no read
 * running). The public meta.h functions are these functions under the
 * handle's own rw-lock, for tools; a handle driven through this interface is
 * not used through meta.h at the same time (the pool owns its handle).
 *
 * Failure facts, not decisions: a change that fails after it began
 * modifying the open transaction leaves it unusable ("damaged"; half a btree
 * insert, a space map stopped mid-update). This interface does not roll back,
 * change modes or set needs_check by itself. It reports what happened in
 * struct thin_pool_info (damaged, meta_out_of_space) and refuses further
 * changes (-EIO) until the caller rolls back with thin_abort_locked. The
 * caller decides (lib/pool/mode.c): roll back, set needs_check
 * (thin_set_needs_check_locked), or stop. Refusals (-ENODATA no such device
 * or mapping, -EEXIST, -EINVAL, -EBUSY, data-space -ENOSPC from allocation)
 * change nothing and damage nothing.
 *
 * Errors: 0 or a negative errno (common.h); the message of the last error is
 * thinp_meta_errmsg().
 */
#ifndef THINP_THIN_POOL_IFACE_H
#define THINP_THIN_POOL_IFACE_H

#include "os/os.h"

#include <libthinp/meta.h>

/* The handle's state as the pool needs it. */
struct thin_pool_info {
	uint64_t trans_id;
	uint64_t held_root;      /* 0 = no metadata snapshot */
	uint64_t data_nr_blocks;
	uint64_t data_nr_free;
	uint64_t meta_nr_blocks;
	uint64_t meta_nr_free;
	uint32_t data_block_sectors;
	uint32_t time;           /* the pool's current (snapshot) time */
	bool needs_check;        /* NEEDS_CHECK set in the superblock */
	/* Facts of the last failed change since the last abort: */
	bool damaged;            /* the open transaction is unusable */
	bool meta_out_of_space;  /* it failed for want of a metadata block */
	bool read_only;          /* the handle (or its device) is read-only */
};

/* One virtual block's mapping; `mapped` false = a hole (other fields 0). */
struct thin_mapping {
	uint64_t data_block;
	uint32_t time;
	bool shared;             /* the device's snapshotted_time > time */
	bool mapped;
};

/* ---- reads (shared) ----------------------------------------------------- */

/* Read. The state above. While the transaction is damaged the space counts
 * may be unavailable (then 0): the facts always arrive. Errors: those of a
 * failed space map (-EIO...) when not damaged. */
int thin_pool_info_locked(thinp_meta *meta, struct thin_pool_info *out);

/* Read. The details of dev (out->struct_size set by the caller, as for
 * thinp_meta_device). -ENODATA no such device. O(1) for a device changed in
 * this transaction, else a details-tree lookup. */
int thin_device_locked(thinp_meta *meta, uint64_t dev, thinp_meta_device *out);

/* Read. The mappings of the n virtual blocks [vblock, vblock + n) of dev into
 * out[0..n-1]; holes have mapped = false. One device lookup and one tree
 * descent per mapped block or hole run (a hole run costs one lower-bound
 * descent). -ENODATA no such device. */
int thin_lookup_run_locked(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint32_t n,
			   struct thin_mapping *out);

/* Read. The first mapping of dev at or after vblock: its block in
 * *vblock_out. -ENODATA no such device or no such mapping. O(depth). */
int thin_lookup_next_locked(thinp_meta *meta, uint64_t dev, uint64_t vblock,
			    uint64_t *vblock_out, struct thin_mapping *out);

/* Read. The highest mapped virtual block of dev: a descent of the rightmost
 * path of its subtree, O(depth). -ENODATA no such device or nothing mapped. */
int thin_highest_mapped_locked(thinp_meta *meta, uint64_t dev, uint64_t *vblock);

/* ---- changes and space-map reads (exclusive) -------------------------- */

/* Exclusive (space-map reads are not safe concurrently). The reference
 * count of data block `block`. -EINVAL beyond the data device. */
int thin_data_count_locked(thinp_meta *meta, uint64_t block, uint32_t *count);

/* 0 if a change may run now: -EROFS on a read-only handle, -EIO while the
 * transaction is damaged or the handle could not be reloaded. The change
 * functions below do not check it: call it before each change (the pool's
 * adapter does; the public API's lock does the same for meta.h). */
int thin_may_change_locked(thinp_meta *meta);

/* Write every dirty block, superblock last (FORMAT.md 8.2). A failed commit
 * damages the transaction (-ENOSPC with meta_out_of_space, or -EIO...). */
int thin_commit_locked(thinp_meta *meta);
/* Drop the open transaction and reload the last commit; clears the failure
 * facts. On failure (the committed state cannot be read back) the handle is
 * unusable for reads and changes alike (-EIO) until closed. */
int thin_abort_locked(thinp_meta *meta);
/* Set NEEDS_CHECK in the committed superblock on the device, whatever the
 * state of the transaction. -EROFS read-only handle; I/O errors. */
int thin_set_needs_check_locked(thinp_meta *meta);

int thin_set_transaction_id_locked(thinp_meta *meta, uint64_t cur, uint64_t next);
int thin_create_thin_locked(thinp_meta *meta, uint64_t dev);
int thin_create_snap_locked(thinp_meta *meta, uint64_t dev, uint64_t origin);
int thin_delete_locked(thinp_meta *meta, uint64_t dev);

/* Map vblocks[i] -> data_blocks[i] for i < n, at the pool's current time.
 * An old mapping's block loses a reference; the caller's reference on each
 * data block moves into its mapping; mapped_blocks stays exact. Every
 * argument is checked before anything changes, so -ENODATA (no device) and
 * -EINVAL (a block beyond the data device) change nothing; any later error
 * damages the transaction. O(n * depth). */
int thin_insert_run_locked(thinp_meta *meta, uint64_t dev, const uint64_t *vblocks,
			   const uint64_t *data_blocks, uint32_t n);
/* One mapping at an explicit time (thin_dump's restore). */
int thin_insert_locked(thinp_meta *meta, uint64_t dev, uint64_t vblock, uint64_t data_block,
		       uint32_t time);
/* Remove every mapping of dev in [begin, end); each block loses a reference.
 * *nr_removed (may be NULL) gets the count. */
int thin_remove_range_locked(thinp_meta *meta, uint64_t dev, uint64_t begin, uint64_t end,
			     uint64_t *nr_removed);

/* A free data block (not freed in this transaction either), with one
 * reference held by the caller. -ENOSPC with meta_out_of_space false: the
 * data device is full (nothing changed). */
int thin_alloc_data_block_locked(thinp_meta *meta, uint64_t *out);
/* Add / drop one reference on data block b. -EINVAL beyond the device (or,
 * for dec, a free block): nothing changed. */
int thin_data_inc_locked(thinp_meta *meta, uint64_t b);
int thin_data_dec_locked(thinp_meta *meta, uint64_t b);

/* Grow the data / metadata space maps (never shrink: -EINVAL; the metadata
 * to at most the io's size, 0 = all of it). -EROFS while needs_check is set. */
int thin_resize_data_locked(thinp_meta *meta, uint64_t nr_blocks);
int thin_resize_metadata_locked(thinp_meta *meta, uint64_t nr_blocks);

int thin_reserve_metadata_snap_locked(thinp_meta *meta);
int thin_release_metadata_snap_locked(thinp_meta *meta);

#endif
