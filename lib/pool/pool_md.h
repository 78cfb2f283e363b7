/*
 * What the pool runtime needs from its metadata: the operations of the
 * kernel's dm-thin-metadata interface, as a small vtable.
 *
 * Why a vtable and not direct calls into lib/thin: the pool's policy (when to
 * commit, what to do when space runs out or a metadata operation fails) has
 * to be tested against failures that are hard to provoke in the real
 * metadata (ENOSPC at a chosen insert, EIO at a chosen commit). The tests
 * plug in a model implementation with those knobs; the library plugs in
 * lib/thin through its private interface (pool_md_meta.c over
 * lib/thin/pool_iface.h), behind a lookup cache (map_cache.c).
 *
 * Concurrency contract: the pool's md_lock is the only lock over the
 * metadata. The pool calls the read operations (info, thin_info, lookup,
 * lookup_run, next_mapping, highest_mapped) under it held shared, so they
 * may run concurrently with each other; every other operation (data_ref
 * included: space-map reads are not safe concurrently) runs under it held
 * exclusively. Implementations take no lock of their own beyond what
 * concurrent reads require (the cache's slot stripes).
 *
 * Failure facts: an implementation reports what happened and decides
 * nothing. A change that fails after it began modifying the open
 * transaction "damages" it (info: tx_damaged, and meta_out_of_space when a
 * metadata block was missing); further changes are refused until abort. The
 * pool alone decides the mode (lib/pool/mode.c).
 *
 * Errors follow common.h: -ENODATA no such device/mapping, -EEXIST, -ENOSPC
 * (no metadata block; from alloc_data, no data block unless info then says
 * meta_out_of_space), -EROFS, -EIO/-EILSEQ/-ENOTBLK for a failed or corrupt
 * metadata device.
 */
#ifndef THINP_POOL_POOL_MD_H
#define THINP_POOL_POOL_MD_H

#include "os/os.h"

struct pool_md;

struct pool_md_info {
	uint64_t trans_id;
	uint64_t held_root;      /* 0 = no metadata snapshot */
	uint64_t data_nr_blocks;
	uint64_t data_nr_free;
	uint64_t meta_nr_blocks;
	uint64_t meta_nr_free;
	uint32_t data_block_sectors;
	uint32_t time;
	bool needs_check;
	/* The last change ran out of metadata blocks (it failed with -ENOSPC
	 * and the open transaction is unusable); cleared by abort. */
	bool meta_out_of_space;
	/* A change failed after it began modifying the open transaction: only
	 * abort (or destroy) may follow; cleared by abort. */
	bool tx_damaged;
};

struct pool_md_thin_info {
	uint64_t mapped_blocks;
	uint64_t trans_id;
	uint32_t creation_time;
	uint32_t snapshotted_time;
};

struct pool_md_mapping {
	uint64_t data_block;
	uint32_t time;
	bool shared; /* the device's snapshotted_time > time (FORMAT.md 5.4) */
	bool mapped; /* set by lookup_run: false = a hole (the rest is 0) */
};

struct pool_md_ops {
	void (*destroy)(struct pool_md *md); /* drops uncommitted changes */
	int (*info)(struct pool_md *md, struct pool_md_info *out);
	int (*commit)(struct pool_md *md);
	/* Drop the open transaction and return to the last commit. */
	int (*abort)(struct pool_md *md);
	/* Set NEEDS_CHECK in the superblock and write it (best effort). */
	int (*set_needs_check)(struct pool_md *md);
	/* Compare-and-swap of the transaction id; -EINVAL on mismatch. */
	int (*set_trans_id)(struct pool_md *md, uint64_t old, uint64_t new_id);
	int (*create_thin)(struct pool_md *md, uint64_t id);
	int (*create_snap)(struct pool_md *md, uint64_t id, uint64_t origin);
	int (*delete_thin)(struct pool_md *md, uint64_t id);
	int (*thin_info)(struct pool_md *md, uint64_t id, struct pool_md_thin_info *out);
	int (*lookup)(struct pool_md *md, uint64_t id, uint64_t vblock,
		      struct pool_md_mapping *out);
	/* First mapping at or after vblock; -ENODATA if none. */
	int (*next_mapping)(struct pool_md *md, uint64_t id, uint64_t vblock,
			    uint64_t *vblock_out, struct pool_md_mapping *out);
	/* Highest mapped virtual block; -ENODATA if the device maps nothing. */
	int (*highest_mapped)(struct pool_md *md, uint64_t id, uint64_t *vblock_out);
	/* Map vblock to data_block at the current time; an old mapping's block
	 * loses a reference. The caller's reference on data_block moves into
	 * the mapping. mapped_blocks is kept exact. */
	int (*insert)(struct pool_md *md, uint64_t id, uint64_t vblock, uint64_t data_block);
	/* Remove every mapping in [begin, end); each block loses a reference. */
	int (*remove_range)(struct pool_md *md, uint64_t id, uint64_t begin, uint64_t end);
	/* A free data block, with one reference held by the caller. */
	int (*alloc_data)(struct pool_md *md, uint64_t *block);
	int (*data_ref)(struct pool_md *md, uint64_t block, uint32_t *count);
	int (*inc_data)(struct pool_md *md, uint64_t block);
	int (*dec_data)(struct pool_md *md, uint64_t block);
	int (*resize_data)(struct pool_md *md, uint64_t nr_blocks);
	int (*resize_meta)(struct pool_md *md, uint64_t nr_blocks);
	int (*reserve_snap)(struct pool_md *md);
	int (*release_snap)(struct pool_md *md);
	/* The metadata handle, for walks that read it directly (delta.c's
	 * cursor, batch by batch under md_lock shared); NULL if there is none
	 * (the model): the walk is then -EOPNOTSUPP. The op itself may be NULL. */
	struct thinp_meta *(*walk_meta)(struct pool_md *md);

	/* Batched operations (appended; every implementation has them). */

	/* Read. The mappings of [vblock, vblock + n) into out[0..n-1], holes
	 * with mapped = false: one call for a request spanning n data blocks.
	 * -ENODATA no such device. */
	int (*lookup_run)(struct pool_md *md, uint64_t id, uint64_t vblock, uint32_t n,
			  struct pool_md_mapping *out);
	/* insert of vblocks[i] -> data_blocks[i] for i < n, in that order. A
	 * refusal (-ENODATA no device, -EINVAL a block beyond the data device)
	 * is found before anything changes; any other error damages the
	 * transaction. */
	int (*insert_run)(struct pool_md *md, uint64_t id, const uint64_t *vblocks,
			  const uint64_t *data_blocks, uint32_t n);
};

struct pool_md {
	const struct pool_md_ops *ops;
};

#endif
