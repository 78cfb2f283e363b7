/*
 * Lookups: exact (btree_lookup), first key >= k (btree_lower_bound) and the
 * highest key (btree_last), on single- and multi-level trees. Read locks only, so lookups may run
 * concurrently with each other.
 *
 * A multi-level lookup resolves keys[0..levels-2] exactly, each giving the
 * root of the next level's tree, then works in the last level's tree.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"
#include "util/log.h"

/* Exact lookup in one level's tree; copies the value. -ENODATA. O(depth). */
static int lookup_in_level(const struct level *lv, uint64_t root, uint64_t key, void *value)
{
	struct block *leaf;
	const void *n;
	int r, i;

	r = level_find_leaf(lv, root, key, &leaf);
	if (r)
		return r;
	n = block_data(leaf);
	i = node_find(n, key);
	if (i < 0)
		r = -ENODATA;
	else if (value)
		memcpy(value, node_value(n, (uint32_t)i), node_vsize(n));
	tm_unlock(lv->tm, leaf);
	return r;
}

int level_resolve_upper(struct btree_info *info, uint64_t root, const uint64_t *keys,
			 uint64_t *last_root)
{
	struct level lv;
	unsigned level;
	uint8_t v[8];
	int r;

	for (level = 0; level + 1 < info->levels; level++) {
		r = level_init(&lv, info, level);
		if (r)
			return r;
		r = lookup_in_level(&lv, root, keys[level], v);
		if (r)
			return r;
		root = load_le64(v);
	}
	*last_root = root;
	return 0;
}

/* The last level's tree for keys: its level and root. */
static int last_level(struct btree_info *info, uint64_t *root, const uint64_t *keys,
		      struct level *lv)
{
	int r = level_init(lv, info, 0);

	if (!r)
		r = level_resolve_upper(info, *root, keys, root);
	return r ? r : level_init(lv, info, info->levels - 1);
}

int btree_lookup(struct btree_info *info, uint64_t root, const uint64_t *keys, void *value)
{
	struct level lv;
	int r = last_level(info, &root, keys, &lv);

	return r ? r : lookup_in_level(&lv, root, keys[info->levels - 1], value);
}

/* Node b at depth `depth` of a descent, validated; bounded depth. */
static int read_at_depth(const struct level *lv, uint64_t b, unsigned depth,
			 struct block **blk)
{
	if (depth >= BTREE_MAX_DEPTH)
		return THINP_CORRUPT(level_log(lv), b, "btree", "tree too deep (cycle?)");
	return level_read_node(lv, b, depth == 0, blk);
}

/* Leaf entry i's key and value, each output optional. */
static void copy_entry(const void *n, uint32_t i, uint64_t *key_out, void *value)
{
	if (key_out)
		*key_out = node_key(n, i);
	if (value)
		memcpy(value, node_value(n, i), node_vsize(n));
}

/*
 * First entry >= key in the subtree at b. In an internal node the answer is
 * in child i (largest key[i] <= key) unless that whole subtree is below key;
 * then it is the first entry of child i+1, found by a leftmost descent
 * (key 0), which in a valid tree cannot fail. So each level costs at most
 * one extra leftmost descent: O(depth^2) node visits in the worst case,
 * O(depth) typically.
 */
static int lower_bound_at(const struct level *lv, uint64_t b, uint64_t key, unsigned depth,
			  uint64_t *key_out, void *value)
{
	struct block *blk;
	const void *n;
	uint32_t i, nr;
	int r, lo;

	r = read_at_depth(lv, b, depth, &blk);
	if (r)
		return r;
	n = block_data(blk);
	nr = node_nr(n);
	if (node_is_leaf(n)) {
		i = node_first_ge(n, key);
		if (i < nr)
			copy_entry(n, i, key_out, value);
		r = i < nr ? 0 : -ENODATA;
		goto out;
	}
	lo = node_lower(n, key);
	i = lo < 0 ? 0 : (uint32_t)lo;
	r = lower_bound_at(lv, node_value64(n, i), key, depth + 1, key_out, value);
	if (r == -ENODATA && i + 1 < nr) {
		r = lower_bound_at(lv, node_value64(n, i + 1), 0, depth + 1, key_out, value);
		if (r == -ENODATA) /* a non-root subtree cannot be empty */
			r = THINP_CORRUPT(level_log(lv), b, "btree", "empty subtree");
	}
out:
	tm_unlock(lv->tm, blk);
	return r;
}

int btree_lower_bound(struct btree_info *info, uint64_t root, const uint64_t *keys,
		      uint64_t *key_out, void *value)
{
	struct level lv;
	int r = last_level(info, &root, keys, &lv);

	return r ? r : lower_bound_at(&lv, root, keys[info->levels - 1], 0, key_out, value);
}

/*
 * The highest entry of the subtree at b: the rightmost path. Only the root
 * may be empty (an empty tree); an empty node below it is corruption, since
 * removal merges or frees underfull nodes. O(depth) node visits.
 */
static int last_at(const struct level *lv, uint64_t b, uint64_t *key_out, void *value)
{
	struct block *blk;
	const void *n;
	unsigned depth;
	uint32_t nr;
	int r;

	for (depth = 0;; depth++) {
		r = read_at_depth(lv, b, depth, &blk);
		if (r)
			return r;
		n = block_data(blk);
		nr = node_nr(n);
		if (nr == 0) {
			tm_unlock(lv->tm, blk);
			return depth ? THINP_CORRUPT(level_log(lv), b, "btree", "empty subtree")
				     : -ENODATA;
		}
		if (node_is_leaf(n))
			break;
		b = node_value64(n, nr - 1);
		tm_unlock(lv->tm, blk);
	}
	copy_entry(n, nr - 1, key_out, value);
	tm_unlock(lv->tm, blk);
	return 0;
}

int btree_last(struct btree_info *info, uint64_t root, const uint64_t *keys,
	       uint64_t *key_out, void *value)
{
	struct level lv;
	int r = last_level(info, &root, keys, &lv);

	return r ? r : last_at(&lv, root, key_out, value);
}
