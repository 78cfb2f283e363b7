/*
 * Remove (FORMAT.md 4.8): one descent from the root to the leaf, shadowing
 * the path. Before stepping into a child that holds only the minimum
 * (max/3) entries, the child is topped up from or merged with its
 * neighbours (rebalance_child), so whatever is removed below it can cost it
 * one entry and it stays legal. A root left with a single child is replaced
 * by a copy of that child (the tree loses a level; the root keeps its block).
 *
 * Range removal batches: in the leaf reached for the first key of the range
 * it removes every key of the range down to the leaf's minimum fill, then
 * descends again for the rest (after the rebalance on the way down refills
 * the leaf). Parent keys are left alone when a leaf's first key goes: a
 * parent key may be below its subtree's first key (rule 9).
 *
 * Cost: O(depth) node visits per descent; a range of n keys costs about
 * n / (max/3) descents.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/split.h"
#include "util/log.h"

/* Replace the root (one entry) by a copy of its only child. O(1) blocks. */
static int collapse_root(const struct level *lv, struct block *root)
{
	void *n = block_data(root);
	uint64_t child = node_value64(n, 0);
	struct block *cblk;
	uint32_t count;
	int r;

	r = tm_ref(lv->tm, child, &count);
	if (r)
		return r;
	r = level_read_node(lv, child, false, &cblk);
	if (r)
		return r;
	memcpy(n, block_data(cblk), THINP_BLOCK_SIZE);
	tm_unlock(lv->tm, cblk);
	/* The root now points at the child's children; if the child lives on
	 * elsewhere, they have gained a referrer. */
	if (count > 1) {
		r = level_inc_children(lv, n);
		if (r)
			return r;
	}
	return tm_dec(lv->tm, child);
}

/* Top up child i of internal node blk if it holds no more than the
 * minimum, so it can lose an entry. */
static int prepare_child(const struct level *lv, struct block *blk, uint32_t i)
{
	struct block *cblk;
	uint32_t nr, min;
	int r;

	r = level_read_node(lv, node_value64(block_data(blk), i), false, &cblk);
	if (r)
		return r;
	nr = node_nr(block_data(cblk));
	min = node_min_entries(block_data(cblk));
	tm_unlock(lv->tm, cblk);
	return nr > min ? 0 : rebalance_child(lv, blk, i);
}

static uint32_t child_index(const void *n, uint64_t key)
{
	int i = node_lower(n, key);

	return i < 0 ? 0 : (uint32_t)i;
}

/* Remove the leaf entries with lo <= key <= hi, at least one and no more
 * than keeps a non-root leaf at its minimum. */
static int remove_from_leaf(const struct level *lv, void *n, bool is_root, uint64_t lo,
			    uint64_t hi, uint64_t *nr_removed, uint64_t *last_key)
{
	uint32_t nr = node_nr(n), first = node_first_ge(n, lo), end = first;
	uint32_t min = node_min_entries(n);
	uint32_t limit;
	int r;

	if (is_root)
		limit = nr;
	else if (nr > min)
		limit = nr - min;
	else
		limit = 1; /* under-filled (not written by us): still progress */
	while (end < nr && node_key(n, end) <= hi && end - first < limit)
		end++;
	if (end == first)
		return -ENODATA;
	r = level_dec_values(lv, node_value(n, first), end - first);
	if (r)
		return r;
	*last_key = node_key(n, end - 1);
	*nr_removed = end - first;
	node_delete_at(n, first, end - first);
	return 0;
}

/* Descend to the leaf for lo and remove what remove_from_leaf allows. */
static int remove_descent(const struct level *lv, uint64_t root, uint64_t lo, uint64_t hi,
			  uint64_t *new_root, uint64_t *nr_removed, uint64_t *last_key)
{
	struct block *parent = NULL, *cur;
	unsigned depth;
	void *n;
	int r;

	r = level_shadow(lv, root, true, &cur);
	if (r)
		return r;
	*new_root = block_location(cur);
	for (depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		n = block_data(cur);
		if (node_is_leaf(n)) {
			r = remove_from_leaf(lv, n, !parent, lo, hi, nr_removed, last_key);
			goto out;
		}
		if (node_nr(n) == 1) {
			if (parent) {
				r = THINP_CORRUPT(level_log(lv), block_location(cur), "btree node",
						  "non-root internal node with one entry");
				goto out;
			}
			r = collapse_root(lv, cur);
			if (r)
				goto out;
			continue;
		}
		r = prepare_child(lv, cur, child_index(n, lo));
		if (r)
			goto out;
		r = level_descend(lv, &parent, &cur, child_index(n, lo));
		if (r)
			goto out;
	}
	r = THINP_CORRUPT(level_log(lv), root, "btree", "tree too deep (cycle?)");
out:
	level_release(lv, parent, cur);
	return r;
}

/* Remove in the tree named by keys[0..level-1]; upper levels are only
 * shadowed down to the subtree's slot and patched. */
static int remove_level(struct btree_info *info, unsigned level, uint64_t root,
			const uint64_t *keys, uint64_t lo, uint64_t hi, uint64_t *new_root,
			uint64_t *nr_removed, uint64_t *last_key)
{
	struct level lv;
	uint64_t leaf_b, sub, new_sub;
	uint32_t index;
	int r = level_init(&lv, info, level);

	if (r)
		return r;
	if (lv.last)
		return remove_descent(&lv, root, lo, hi, new_root, nr_removed, last_key);
	r = upper_slot(&lv, root, keys[level], false, new_root, &leaf_b, &index, &sub);
	if (r)
		return r;
	r = remove_level(info, level + 1, sub, keys, lo, hi, &new_sub, nr_removed, last_key);
	if (r || new_sub == sub)
		return r;
	return patch_upper(&lv, leaf_b, index, new_sub);
}

int btree_remove(struct btree_info *info, uint64_t root, const uint64_t *keys,
		 uint64_t *new_root)
{
	uint64_t n, last_key, key;
	int r;

	/* Check first, so a missing key leaves the tree untouched. */
	*new_root = root;
	r = btree_lookup(info, root, keys, NULL);
	if (r)
		return r;
	key = keys[info->levels - 1];
	return remove_level(info, 0, root, keys, key, key, new_root, &n, &last_key);
}

int btree_remove_range(struct btree_info *info, uint64_t root, const uint64_t *keys,
		       uint64_t end_key, uint64_t *new_root, uint64_t *nr_removed)
{
	uint64_t sub, k, n, last_key, total = 0;
	uint64_t search[BTREE_MAX_LEVELS];
	unsigned last;
	int r;

	if (!info || info->levels < 1 || info->levels > BTREE_MAX_LEVELS)
		return -EINVAL;
	last = info->levels - 1;
	r = level_resolve_upper(info, root, keys, &sub);
	if (r)
		return r;
	memcpy(search, keys, sizeof(*keys) * info->levels);
	*new_root = root;
	while (search[last] < end_key) {
		r = btree_lower_bound(info, *new_root, search, &k, NULL);
		if (r == -ENODATA || (!r && k >= end_key)) {
			r = 0;
			break;
		}
		if (r)
			break;
		r = remove_level(info, 0, *new_root, keys, k, end_key - 1, new_root, &n,
				 &last_key);
		if (r)
			break;
		total += n;
		if (last_key == UINT64_MAX)
			break;
		search[last] = last_key + 1;
	}
	if (nr_removed)
		*nr_removed = total;
	return r;
}
