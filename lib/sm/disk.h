/*
 * The data space map (FORMAT.md 6.5): reference counts of the pool's data
 * blocks, stored in metadata blocks: bitmaps found through a btree of index
 * entries (key = bitmap index), counts >= 3 in an overflow btree.
 *
 * Every metadata block it needs comes from the transaction manager (so from
 * the metadata space map); it has no recursion of its own.
 *
 * Allocation (new_block) hands out a block only if it is free both in the
 * last committed state and now; the search cursor moves forward only within
 * a transaction (reset by commit), so a block freed in this transaction below
 * the cursor is not handed out again before the commit.
 *
 * Not thread-safe: the caller serializes every call.
 */
#ifndef THINP_SM_DISK_H
#define THINP_SM_DISK_H

#include "os/os.h"

#include "sm/space_map.h"
#include "tx/tm.h"

struct block_counter;

/* Format a data space map of nr_blocks blocks (may be 0): empty index and
 * overflow trees, zeroed bitmaps, committed in memory (sm_commit). The caller
 * commits the tm. -ENOMEM, -ENOSPC (metadata), -EIO. */
int sm_disk_create(struct tx_manager *tm, uint64_t nr_blocks, struct space_map **out);
/* Open from the 32-byte root (FORMAT.md 6.1) of the last commit. Only the
 * root is checked here; blocks are validated when read. -EINVAL if len < 32,
 * -EILSEQ if the root is impossible (nr_allocated > nr_blocks). */
int sm_disk_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out);

bool sm_is_disk(const struct space_map *sm);
/* Add one to bc for every metadata block the map itself uses: index-btree
 * nodes, bitmaps, overflow-btree nodes. Also checks that the index tree holds
 * exactly the keys 0 .. nr_bitmaps-1. O(metadata blocks of the map). */
int sm_disk_count_own_blocks(struct space_map *sm, struct block_counter *bc);

/* Visit every block's count in order, one bitmap read per 16320 blocks (the
 * checker's fast path). fn's non-zero return stops the walk. -EINVAL for a
 * space map of another kind. */
int sm_disk_walk_counts(struct space_map *sm, int (*fn)(void *ctx, uint64_t b, uint32_t count),
		      void *ctx);

#endif
