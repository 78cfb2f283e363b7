/*
 * Copy-on-write B+trees in the dm persistent-data on-disk format (FORMAT.md
 * section 4): 64-bit keys, fixed-size little-endian values, 4 KiB nodes, and
 * multi-level trees whose upper levels map a key to the root of the next
 * level's tree.
 *
 * Every changing call takes a root and returns the (possibly new) root: nodes
 * of the committed state are shadowed through the transaction manager, never
 * written in place. Sharing: copying a root (a snapshot) shares every node;
 * when a shared node is shadowed, its children (or, for leaves, its values via
 * the value type's inc) gain a reference, exactly as the kernel does.
 *
 * Every node read is validated (checksum, location, header, bounds); a bad
 * node is -EILSEQ/-ENOTBLK, never trusted. Descents are bounded in depth so a
 * cycle cannot hang a walk.
 *
 * Costs: lookup, insert and remove are O(depth) node visits (depth <= ~8 for
 * any real tree); walks are O(nodes).
 */
#ifndef THINP_BTREE_BTREE_H
#define THINP_BTREE_BTREE_H

#include "os/os.h"

#include "tx/tm.h"

#define BTREE_MAX_LEVELS 2

/* Values are opaque little-endian bytes of a fixed size. inc/dec take a
 * reference for each of `count` contiguous values; either may be NULL (no
 * references). equal may be NULL (then values are compared bytewise). */
struct btree_value_type {
	void *context;
	uint32_t size;
	int (*inc)(void *context, const void *values, unsigned count);
	int (*dec)(void *context, const void *values, unsigned count);
	bool (*equal)(void *context, const void *v1, const void *v2);
};

struct btree_info {
	struct tx_manager *tm;
	unsigned levels; /* 1 or 2 */
	struct btree_value_type value_type; /* of the last level */
};

/* A new empty tree (a single empty leaf root). */
int btree_empty(struct btree_info *info, uint64_t *root);
/* Drop the tree's reference: shared parts lose one reference, unshared parts
 * are freed and their values dec'd (FORMAT.md 4.9). */
int btree_del(struct btree_info *info, uint64_t root);

/* Look up keys[0..levels-1]; copies the value (value_type.size bytes) into
 * value. -ENODATA if absent. */
int btree_lookup(struct btree_info *info, uint64_t root, const uint64_t *keys, void *value);
/* First key >= keys[levels-1] in the last-level tree named by the other keys.
 * -ENODATA if there is none. */
int btree_lower_bound(struct btree_info *info, uint64_t root, const uint64_t *keys,
		      uint64_t *key_out, void *value);
/* Highest key in the last-level tree named by keys[0..levels-2] (keys may be
 * NULL for a single-level tree), and its value (either output may be NULL).
 * -ENODATA if that tree is empty. O(depth): the rightmost path. */
int btree_last(struct btree_info *info, uint64_t root, const uint64_t *keys,
	       uint64_t *key_out, void *value);

/* Insert or overwrite. On overwrite with an unequal value the old value is
 * dec'd; the caller owns the new value's reference. *inserted (may be NULL)
 * tells whether the key was new. */
int btree_insert(struct btree_info *info, uint64_t root, const uint64_t *keys,
		 const void *value, uint64_t *new_root, bool *inserted);
/* Remove a key (its value is dec'd). -ENODATA if absent. */
int btree_remove(struct btree_info *info, uint64_t root, const uint64_t *keys,
		 uint64_t *new_root);
/* Remove every key k with keys[levels-1] <= k < end_key in the last-level tree
 * named by the other keys. *nr_removed (may be NULL) gets the count. */
int btree_remove_range(struct btree_info *info, uint64_t root, const uint64_t *keys,
		       uint64_t end_key, uint64_t *new_root, uint64_t *nr_removed);

/* Visit every (key, value) of a single-level tree in key order. A non-zero
 * return from fn stops the walk and is returned. */
typedef int (*btree_walk_fn)(void *ctx, uint64_t key, const void *value);
int btree_walk(struct btree_info *info, uint64_t root, btree_walk_fn fn, void *ctx);

/* Reference-count checking (FORMAT.md section 7): add one to `meta` for the
 * root and for every node pointer in the tree; a node already counted is not
 * descended again (a shared node contributes its pointers once). For each
 * last-level leaf visited, value_fn (may be NULL) is called once per value so
 * the caller can count what values reference (e.g. data blocks). Structural
 * errors found on the way are returned (-EILSEQ...). */
struct block_counter;
typedef int (*btree_value_fn)(void *ctx, uint64_t key, const void *value);
int btree_count_blocks(struct btree_info *info, uint64_t root, struct block_counter *meta,
		       btree_value_fn value_fn, void *ctx);

#endif
