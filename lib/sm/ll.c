/*
 * The space-map low level: two-bit counts in bitmap blocks, exact counts >= 3
 * in an overflow btree, index entries with free-space hints.
 *
 * Method. A lookup reads one bitmap (found through its index entry) and, only
 * when the entry is 3, the overflow tree. A change shadows the bitmap through
 * the transaction manager (so the committed bitmap is never touched), writes
 * the new 2-bit value, then brings the overflow tree in line: insert/overwrite
 * for a count >= 3, remove when a count drops from >= 3 to <= 2. The bitmap
 * lock is held only while the bitmap itself is read and written, never
 * across the overflow-tree work: that work allocates metadata blocks, which
 * (for the metadata space map) reads bitmaps again.
 *
 * Index hints. nr_free is recounted from the bitmap when the bitmap is first
 * shadowed in a transaction (a popcount of 510 words) and then moved by one
 * per change, so what we write is exact in the kernel's convention
 * (value-0 entries among all 16320) even if what we read was not, without a
 * recount on every allocation. none_free_before follows the kernel's update
 * rule. When reading, any value is accepted (even out of range, as the
 * kernel does). Only nr_free is used, to skip reading a bitmap that says it
 * is full, and a search that fails that way is repeated without it.
 * none_free_before is not used: skipping ahead inside a bitmap already read
 * saves little, and a lying hint would move the allocation cursor past free
 * blocks, which are then out of reach until the commit (the cursor never
 * moves back within a transaction).
 */
#include "os/os.h"

#include "sm/bitmap.h"
#include "sm/ll.h"
#include "util/counter.h"
#include "util/endian.h"
#include "util/log.h"

static const struct btree_value_type ref_value_type = { .size = 4 };
static const struct btree_value_type index_value_type = { .size = 16 };

void ll_init(struct ll_disk *ll, struct tx_manager *tm, const struct ll_index_ops *iops)
{
	memset(ll, 0, sizeof(*ll));
	ll->tm = tm;
	ll->log = bm_log(tm_bm(tm));
	ll->iops = iops;
	ll->ref_info.tm = tm;
	ll->ref_info.levels = 1;
	ll->ref_info.value_type = ref_value_type;
	ll->index_info.tm = tm;
	ll->index_info.levels = 1;
	ll->index_info.value_type = index_value_type;
}

uint64_t ll_nr_indexes(const struct ll_disk *ll)
{
	return (ll->nr_blocks + SM_ENTRIES_PER_BITMAP - 1) / SM_ENTRIES_PER_BITMAP;
}

int ll_check_ie(const struct ll_disk *ll, uint64_t index, const struct index_entry *ie)
{
	if (ie->blocknr == 0 || !bm_block_in_range(tm_bm(ll->tm), ie->blocknr))
		return THINP_CORRUPT(ll->log, ie->blocknr, "sm index entry",
				     "bitmap location out of range");
	return 0;
}

static int load_ie(struct ll_disk *ll, uint64_t index, struct index_entry *ie)
{
	if (index >= ll_nr_indexes(ll))
		return -EINVAL;
	return ll->iops->load_ie(ll, index, ie);
}

int ll_lookup_bitmap(struct ll_disk *ll, uint64_t b, unsigned *v)
{
	struct index_entry ie;
	struct block *blk;
	int r;

	if (b >= ll->nr_blocks)
		return -EINVAL;
	r = load_ie(ll, b / SM_ENTRIES_PER_BITMAP, &ie);
	if (r)
		return r;
	r = tm_read_lock(ll->tm, ie.blocknr, &sm_bitmap_validator, &blk);
	if (r)
		return r;
	*v = bitmap_get(block_data(blk), (uint32_t)(b % SM_ENTRIES_PER_BITMAP));
	tm_unlock(ll->tm, blk);
	return 0;
}

static int lookup_overflow(struct ll_disk *ll, uint64_t b, uint32_t *count)
{
	uint8_t v[4];
	int r = btree_lookup(&ll->ref_info, ll->ref_count_root, &b, v);

	if (r == -ENODATA)
		return THINP_CORRUPT(ll->log, b, "sm overflow tree",
				     "bitmap says >= 3 but the block has no entry");
	if (r)
		return r;
	*count = load_le32(v);
	if (*count < 3)
		return THINP_CORRUPT(ll->log, b, "sm overflow tree", "count below 3");
	return 0;
}

int ll_lookup(struct ll_disk *ll, uint64_t b, uint32_t *count)
{
	unsigned v;
	int r = ll_lookup_bitmap(ll, b, &v);

	if (r)
		return r;
	if (v < 3) {
		*count = v;
		return 0;
	}
	return lookup_overflow(ll, b, count);
}

/* Search bitmap `index` for a free entry in [lo, hi) (entry offsets). With
 * use_hints, a bitmap whose nr_free is 0 is skipped. */
static int find_free_in_bitmap(struct ll_disk *ll, uint64_t index, uint32_t lo, uint32_t hi,
			       bool use_hints, uint64_t *b)
{
	struct index_entry ie;
	struct block *blk;
	uint32_t e;
	int r = load_ie(ll, index, &ie);

	if (r)
		return r;
	if (use_hints && ie.nr_free == 0)
		return -ENOSPC;
	if (lo >= hi)
		return -ENOSPC;
	r = tm_read_lock(ll->tm, ie.blocknr, &sm_bitmap_validator, &blk);
	if (r)
		return r;
	r = bitmap_find_free(block_data(blk), lo, hi, &e);
	tm_unlock(ll->tm, blk);
	if (!r)
		*b = index * SM_ENTRIES_PER_BITMAP + e;
	return r;
}

static int find_free(struct ll_disk *ll, uint64_t begin, uint64_t end, bool use_hints,
		     uint64_t *b)
{
	uint64_t index;

	if (end > ll->nr_blocks)
		end = ll->nr_blocks;
	for (index = begin / SM_ENTRIES_PER_BITMAP; begin < end; index++) {
		uint64_t base = index * SM_ENTRIES_PER_BITMAP;
		uint32_t lo = begin > base ? (uint32_t)(begin - base) : 0;
		uint32_t hi = end - base >= SM_ENTRIES_PER_BITMAP ? SM_ENTRIES_PER_BITMAP
								  : (uint32_t)(end - base);
		int r;

		if (base >= end)
			break;
		r = find_free_in_bitmap(ll, index, lo, hi, use_hints, b);
		if (r != -ENOSPC)
			return r;
	}
	return -ENOSPC;
}

/* The nr_free hint comes from disk and may lie (a bitmap saying "full" would
 * make the allocator fail with free blocks left), so an unsuccessful search
 * is repeated without it. The second pass costs a scan of every bitmap in the
 * range, paid only when the device is (nearly) full. */
int ll_find_free(struct ll_disk *ll, uint64_t begin, uint64_t end, uint64_t *b)
{
	int r = find_free(ll, begin, end, true, b);

	return r == -ENOSPC ? find_free(ll, begin, end, false, b) : r;
}

int ll_find_common_free(struct ll_disk *old, struct ll_disk *ll,
			const struct block_counter *freed, uint64_t begin, uint64_t end,
			uint64_t *b)
{
	for (;; begin = *b + 1) {
		unsigned v = 0;
		int r = ll_find_free(ll, begin, end, b);

		if (r)
			return r;
		if (*b < old->nr_blocks) {
			r = ll_lookup_bitmap(old, *b, &v);
			if (r)
				return r;
		}
		if (v == 0 && !(freed && block_counter_get(freed, *b)))
			return 0;
	}
}

int ll_note_freed(struct ll_disk *old, struct block_counter *freed, uint64_t b)
{
	unsigned v = 0;

	if (b < old->nr_blocks) {
		int r = ll_lookup_bitmap(old, b, &v);

		if (r)
			return r;
	}
	return v ? 0 : block_counter_inc(freed, b, NULL);
}

/* The hints after entry e went from old to new_count. */
static void update_hints(struct index_entry *ie, uint32_t e, uint32_t old, uint32_t new_count)
{
	bool used = old == 0 && new_count != 0, freed = old != 0 && new_count == 0;

	ie->nr_free += (uint32_t)freed - (uint32_t)used;
	if (used && e == ie->none_free_before)
		ie->none_free_before = e + 1;
	else if (freed && e < ie->none_free_before)
		ie->none_free_before = e;
}

/* The overflow tree holds exactly the counts >= 3. */
static int update_overflow(struct ll_disk *ll, uint64_t b, uint32_t old, uint32_t new_count)
{
	uint8_t v[4];

	if (new_count >= 3) {
		store_le32(v, new_count);
		return btree_insert(&ll->ref_info, ll->ref_count_root, &b, v,
				    &ll->ref_count_root, NULL);
	}
	if (old >= 3)
		return btree_remove(&ll->ref_info, ll->ref_count_root, &b, &ll->ref_count_root);
	return 0;
}

/* Shadow the bitmap, apply fn, write the 2-bit value. Returns old/new. */
static int mutate_bitmap(struct ll_disk *ll, uint64_t b, struct index_entry *ie,
			 ll_mutate_fn fn, void *ctx, uint32_t *old, uint32_t *new_count)
{
	uint32_t e = (uint32_t)(b % SM_ENTRIES_PER_BITMAP);
	struct block *blk;
	bool inc_children;
	unsigned v;
	int r;

	r = tm_shadow_block(ll->tm, ie->blocknr, &sm_bitmap_validator, &blk, &inc_children);
	if (r)
		return r;
	if (block_location(blk) != ie->blocknr) /* first change this transaction */
		ie->nr_free = SM_ENTRIES_PER_BITMAP -
			      bitmap_count_used(block_data(blk), SM_ENTRIES_PER_BITMAP);
	ie->blocknr = block_location(blk);
	v = bitmap_get(block_data(blk), e);
	*old = v;
	r = v == 3 ? lookup_overflow(ll, b, old) : 0;
	if (!r)
		r = fn(ctx, *old, new_count);
	if (!r) {
		bitmap_set(block_data(blk), e, *new_count > 3 ? 3 : *new_count);
		update_hints(ie, e, *old, *new_count);
	}
	tm_unlock(ll->tm, blk);
	return r;
}

int ll_mutate(struct ll_disk *ll, uint64_t b, ll_mutate_fn fn, void *ctx, int *delta)
{
	uint64_t index = b / SM_ENTRIES_PER_BITMAP;
	struct index_entry ie;
	uint32_t old, new_count;
	int r;

	if (delta)
		*delta = 0;
	if (b >= ll->nr_blocks)
		return -EINVAL;
	r = load_ie(ll, index, &ie);
	if (r)
		return r;
	r = mutate_bitmap(ll, b, &ie, fn, ctx, &old, &new_count);
	/* The bitmap may have moved even if fn refused: record its location. */
	if (r) {
		ll->iops->save_ie(ll, index, &ie);
		return r;
	}
	r = update_overflow(ll, b, old, new_count);
	if (r)
		return r;
	if (old == 0 && new_count != 0) {
		ll->nr_allocated++;
		if (delta)
			*delta = 1;
	} else if (old != 0 && new_count == 0) {
		ll->nr_allocated--;
		if (delta)
			*delta = -1;
	}
	return ll->iops->save_ie(ll, index, &ie);
}

static int inc_fn(void *ctx, uint32_t old, uint32_t *n)
{
	if (old == UINT32_MAX)
		return -EOVERFLOW;
	*n = old + 1;
	return 0;
}

static int dec_fn(void *ctx, uint32_t old, uint32_t *n)
{
	if (old == 0)
		return -EINVAL;
	*n = old - 1;
	return 0;
}

static int set_fn(void *ctx, uint32_t old, uint32_t *n)
{
	*n = *(const uint32_t *)ctx;
	return 0;
}

int ll_inc(struct ll_disk *ll, uint64_t b, int *delta)
{
	return ll_mutate(ll, b, inc_fn, NULL, delta);
}

int ll_dec(struct ll_disk *ll, uint64_t b, int *delta)
{
	return ll_mutate(ll, b, dec_fn, NULL, delta);
}

int ll_set_count(struct ll_disk *ll, uint64_t b, uint32_t count, int *delta)
{
	return ll_mutate(ll, b, set_fn, &count, delta);
}

static int new_bitmap(struct ll_disk *ll, uint64_t index)
{
	struct index_entry ie = { .nr_free = SM_ENTRIES_PER_BITMAP, .none_free_before = 0 };
	struct block *blk;
	int r = tm_new_block(ll->tm, &sm_bitmap_validator, &blk);

	if (r)
		return r;
	ie.blocknr = block_location(blk);
	tm_unlock(ll->tm, blk);
	return ll->iops->save_ie(ll, index, &ie);
}

int ll_extend(struct ll_disk *ll, uint64_t extra)
{
	uint64_t old_indexes = ll_nr_indexes(ll), index, new_indexes;
	int r;

	if (extra > UINT64_MAX - ll->nr_blocks)
		return -EINVAL;
	new_indexes = (ll->nr_blocks + extra + SM_ENTRIES_PER_BITMAP - 1) / SM_ENTRIES_PER_BITMAP;
	if (new_indexes > ll->iops->max_indexes)
		return -EINVAL;
	/* nr_blocks grows first so save_ie/load_ie accept the new indexes. */
	ll->nr_blocks += extra;
	for (index = old_indexes; index < new_indexes; index++) {
		r = new_bitmap(ll, index);
		if (r)
			return r;
	}
	return 0;
}

static int walk_bitmap(struct ll_disk *ll, uint64_t index, ll_count_fn fn, void *ctx)
{
	uint64_t base = index * SM_ENTRIES_PER_BITMAP, n = ll->nr_blocks - base;
	struct index_entry ie;
	struct block *blk;
	uint32_t e;
	int r = load_ie(ll, index, &ie);

	if (r)
		return r;
	r = tm_read_lock(ll->tm, ie.blocknr, &sm_bitmap_validator, &blk);
	if (r)
		return r;
	if (n > SM_ENTRIES_PER_BITMAP)
		n = SM_ENTRIES_PER_BITMAP;
	for (e = 0; !r && e < n; e++) {
		uint32_t count = bitmap_get(block_data(blk), e);

		if (count == 3)
			r = lookup_overflow(ll, base + e, &count);
		if (!r)
			r = fn(ctx, base + e, count);
	}
	tm_unlock(ll->tm, blk);
	return r;
}

int ll_walk(struct ll_disk *ll, ll_count_fn fn, void *ctx)
{
	uint64_t index;
	int r = 0;

	for (index = 0; !r && index < ll_nr_indexes(ll); index++)
		r = walk_bitmap(ll, index, fn, ctx);
	return r;
}

void ll_get_root(const struct ll_disk *ll, struct sm_root_info *ri)
{
	ri->nr_blocks = ll->nr_blocks;
	ri->nr_allocated = ll->nr_allocated;
	ri->bitmap_root = ll->bitmap_root;
	ri->ref_count_root = ll->ref_count_root;
}

void ll_set_root(struct ll_disk *ll, const struct sm_root_info *ri)
{
	ll->nr_blocks = ri->nr_blocks;
	ll->nr_allocated = ri->nr_allocated;
	ll->bitmap_root = ri->bitmap_root;
	ll->ref_count_root = ri->ref_count_root;
}
