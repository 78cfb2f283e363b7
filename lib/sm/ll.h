/*
 * The low level shared by both space maps ("ll"): a set of bitmap blocks
 * found through index entries, plus the overflow btree of exact counts >= 3
 * (FORMAT.md 6.2 - 6.4). The two kinds differ only in where the index entries
 * live, which is behind ll_index_ops: a btree of index entries for the data
 * space map, an in-memory copy of the index block for the metadata space map.
 *
 * An ll is a small value: copying the struct (with its in-memory index) gives
 * a snapshot of the roots. The space maps keep the committed copy ("old") to
 * answer "was this block in use in the last committed state?": committed
 * blocks are never modified in place, so reading through the old roots sees
 * the committed state for the whole transaction.
 *
 * Not thread-safe; the caller serializes.
 */
#ifndef THINP_SM_LL_H
#define THINP_SM_LL_H

#include "os/os.h"

#include "btree/btree.h"
#include "sm/format.h"
#include "tx/tm.h"

struct block_counter;

struct ll_disk;

struct ll_index_ops {
	/* Entry `index` (< ll_nr_indexes), validated. -EILSEQ if corrupt. */
	int (*load_ie)(struct ll_disk *ll, uint64_t index, struct index_entry *ie);
	int (*save_ie)(struct ll_disk *ll, uint64_t index, const struct index_entry *ie);
	/* Highest number of index entries this kind can hold. */
	uint64_t max_indexes;
};

struct ll_disk {
	struct tx_manager *tm;
	const struct tlog *log;
	const struct ll_index_ops *iops;
	struct btree_info ref_info;   /* overflow tree: key block, value le32 */
	struct btree_info index_info; /* data sm: key bitmap index, value index entry */
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t bitmap_root;    /* data sm: index btree root; metadata sm: index block */
	uint64_t ref_count_root; /* overflow btree root */
	/* Metadata sm only: the index entries, kept in memory during a
	 * transaction and written to a shadow of the index block at commit. */
	struct index_entry mi[SM_METADATA_MAX_INDEXES];
};

/* Fill the fixed parts (btree infos, ops); roots are set by the caller. */
void ll_init(struct ll_disk *ll, struct tx_manager *tm, const struct ll_index_ops *iops);
uint64_t ll_nr_indexes(const struct ll_disk *ll);
/* Check an index entry read from disk: the bitmap location must be a real
 * block. nr_free and none_free_before are not checked: they are hints, which
 * the kernel does not check either (FORMAT.md 6.4); any value is safe here
 * because the search that follows them retries without them. */
int ll_check_ie(const struct ll_disk *ll, uint64_t index, const struct index_entry *ie);

/* The exact count of block b (< nr_blocks). Bitmap read + an overflow-tree
 * lookup when the bitmap says 3: O(1) + O(depth). -EINVAL past the end,
 * -EILSEQ on corruption. */
int ll_lookup(struct ll_disk *ll, uint64_t b, uint32_t *count);
/* The 2-bit bitmap value of b (count capped at 3). */
int ll_lookup_bitmap(struct ll_disk *ll, uint64_t b, unsigned *v);

/* First block in [begin, end) with count 0 in this ll; -ENOSPC if none.
 * Skips bitmaps whose nr_free hint is 0; if that finds nothing, searches
 * again without the hint (it comes from disk and is never trusted as proof).
 * The none_free_before hint is not used. O(bitmaps +
 * entries scanned / 32); a full map costs a scan of every bitmap. */
int ll_find_free(struct ll_disk *ll, uint64_t begin, uint64_t end, uint64_t *b);
/* First block in [begin, end) free in both `old` (the committed state; blocks
 * past old's end count as free there) and `ll`, and not in `freed` (may be
 * NULL). -ENOSPC if none. */
int ll_find_common_free(struct ll_disk *old, struct ll_disk *ll,
			const struct block_counter *freed, uint64_t begin, uint64_t end,
			uint64_t *b);
/* Called when b, which this transaction's allocation search has not passed
 * yet, became free in this transaction. The search skips blocks in use in
 * `old`, so only a block that was free in old (allocated in this
 * transaction) needs remembering in `freed` to keep it from being handed out
 * again before the commit. O(1) + one bitmap read. */
int ll_note_freed(struct ll_disk *old, struct block_counter *freed, uint64_t b);

/*
 * Change b's count. `fn` gets the old count and returns the new one (or a
 * negative errno, e.g. -EINVAL for a dec of a free block); it is called
 * exactly once, just before the bitmap is written. Shadows the bitmap,
 * keeps the overflow tree holding exactly the counts >= 3, updates the index
 * entry's hints and nr_allocated. *delta (may be NULL) gets +1 for a block
 * that became used, -1 for one that became free, else 0.
 * Cost: one bitmap shadow, O(depth) overflow-tree work if a count is or was >= 3.
 */
typedef int (*ll_mutate_fn)(void *ctx, uint32_t old, uint32_t *new_count);
int ll_mutate(struct ll_disk *ll, uint64_t b, ll_mutate_fn fn, void *ctx, int *delta);
int ll_inc(struct ll_disk *ll, uint64_t b, int *delta);
int ll_dec(struct ll_disk *ll, uint64_t b, int *delta);
int ll_set_count(struct ll_disk *ll, uint64_t b, uint32_t count, int *delta);

/* Grow to nr_blocks + extra: new zeroed bitmaps are allocated through the tm
 * (so through whatever space map the tm has at that moment) and indexed.
 * -EINVAL past the kind's maximum. */
int ll_extend(struct ll_disk *ll, uint64_t extra);

/* Call fn(ctx, b, count) for every block in [0, nr_blocks), in order, reading
 * each bitmap once (plus the overflow tree for counts >= 3). A non-zero
 * return from fn stops the walk and is returned. O(nr_blocks). */
typedef int (*ll_count_fn)(void *ctx, uint64_t b, uint32_t count);
int ll_walk(struct ll_disk *ll, ll_count_fn fn, void *ctx);

/* Root conversions. */
void ll_get_root(const struct ll_disk *ll, struct sm_root_info *ri);
void ll_set_root(struct ll_disk *ll, const struct sm_root_info *ri);

#endif
