/*
 * The metadata space map (FORMAT.md 6.6, 6.8): reference counts of the
 * metadata device's own blocks, stored in those same blocks. One index block
 * (salt 160478, at most 255 bitmaps = 4,161,600 blocks), bitmaps, and an
 * overflow btree for counts >= 3.
 *
 * It is self-hosting: changing a count shadows a bitmap or changes the
 * overflow tree, which allocates and frees metadata blocks, i.e. changes
 * counts in this same map. Those nested changes are deferred in a FIFO and
 * applied by the outermost call before it returns (see metadata.c and
 * docs/ARCHITECTURE.md for why that is sound). Callers see a map whose every
 * public call completes all the work it caused.
 *
 * Both constructors attach the map to the transaction manager (tm_set_sm):
 * the map allocates its own blocks through tm. After a failure inside a
 * change (-EIO, -ENOSPC, -EILSEQ) the map is left failed: every later call
 * returns the same error; abort the transaction and reopen.
 *
 * Not thread-safe: the caller serializes every call.
 */
#ifndef THINP_SM_METADATA_H
#define THINP_SM_METADATA_H

#include "os/os.h"

#include "sm/space_map.h"
#include "tx/tm.h"

struct block_counter;

/*
 * Format a metadata space map over blocks [0, nr_blocks) (clamped to the
 * 4,161,600-block maximum). Block superblock_location and everything before
 * it is left to the caller (the superblock gets count 1; earlier blocks stay
 * free); the index block, the empty overflow root and the bitmaps are placed
 * sequentially after it, every one of them counted. Commits the map in
 * memory; the caller commits the tm. -EINVAL if nr_blocks is too small to
 * hold its own structures, -ENOMEM, -EIO.
 */
int sm_metadata_create(struct tx_manager *tm, uint64_t nr_blocks, uint64_t superblock_location,
		       struct space_map **out);
/* Open from the 32-byte root of the last commit; reads and validates the
 * index block (checksum, location, every entry's bounds). -EINVAL if
 * len < 32, -EILSEQ/-ENOTBLK on corruption. */
int sm_metadata_open(struct tx_manager *tm, const void *root, size_t len, struct space_map **out);

bool sm_is_metadata(const struct space_map *sm);
/* Add one to bc for every block the map itself uses: the index block, each
 * bitmap, each overflow-btree node. O(metadata blocks of the map). */
int sm_metadata_count_own_blocks(struct space_map *sm, struct block_counter *bc);

/* Visit every block's count in order, one bitmap read per 16320 blocks (the
 * checker's fast path). fn's non-zero return stops the walk. -EINVAL for a
 * space map of another kind. */
int sm_metadata_walk_counts(struct space_map *sm, int (*fn)(void *ctx, uint64_t b, uint32_t count),
		      void *ctx);

#endif
