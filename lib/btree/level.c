/*
 * The per-level context: what a level's leaves hold, how to check a node
 * against it, and shadowing with the reference bookkeeping that sharing needs.
 *
 * Sharing (FORMAT.md 7 and 8.1): when a node with count > 1 is copied, the
 * copy is one more parent for everything it points at. For an internal node
 * that is each child block; for a leaf of an upper level of a multi-level
 * tree, each subtree root; for a last-level leaf, each value through the
 * value type's inc (data blocks for the mapping tree, nothing for details).
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"
#include "util/log.h"

int level_init(struct level *lv, struct btree_info *info, unsigned level)
{
	if (!info || !info->tm || info->levels < 1 || info->levels > BTREE_MAX_LEVELS ||
	    level >= info->levels)
		return -EINVAL;
	lv->info = info;
	lv->tm = info->tm;
	lv->level = level;
	lv->last = level + 1 == info->levels;
	lv->leaf_vsize = lv->last ? info->value_type.size : 8u;
	lv->leaf_max = btree_max_entries(lv->leaf_vsize);
	if (lv->leaf_max < 3)
		return -EINVAL;
	return 0;
}

const struct tlog *level_log(const struct level *lv)
{
	return bm_log(tm_bm(lv->tm));
}

int level_check_node(const struct level *lv, const void *n, uint64_t b, bool is_root)
{
	const struct tlog *log = level_log(lv);

	if (node_is_leaf(n)) {
		if (node_vsize(n) != lv->leaf_vsize)
			return THINP_CORRUPT(log, b, "btree node", "unexpected leaf value size");
		if (node_max(n) != lv->leaf_max)
			return THINP_CORRUPT(log, b, "btree node", "unexpected leaf max_entries");
	} else {
		if (node_vsize(n) != BTREE_INTERNAL_VALUE_SIZE)
			return THINP_CORRUPT(log, b, "btree node", "internal value size is not 8");
		if (node_max(n) != btree_max_entries(BTREE_INTERNAL_VALUE_SIZE))
			return THINP_CORRUPT(log, b, "btree node", "unexpected internal max_entries");
		if (node_nr(n) == 0)
			return THINP_CORRUPT(log, b, "btree node", "empty internal node");
	}
	if (!is_root && node_nr(n) == 0)
		return THINP_CORRUPT(log, b, "btree node", "empty non-root node");
	return 0;
}

int level_read_node(const struct level *lv, uint64_t b, bool is_root, struct block **out)
{
	int r = tm_read_lock(lv->tm, b, &btree_node_validator, out);

	if (r)
		return r;
	r = level_check_node(lv, block_data(*out), b, is_root);
	if (r) {
		tm_unlock(lv->tm, *out);
		*out = NULL;
	}
	return r;
}

int level_inc_children(const struct level *lv, const void *n)
{
	const struct btree_value_type *vt = &lv->info->value_type;
	uint32_t i, nr = node_nr(n);
	int r;

	if (node_is_leaf(n) && lv->last)
		return (vt->inc && nr) ? vt->inc(vt->context, node_value(n, 0), nr) : 0;
	/* Internal nodes and upper-level leaves: le64 block pointers. */
	for (i = 0; i < nr; i++) {
		r = tm_inc(lv->tm, node_value64(n, i));
		if (r)
			return r;
	}
	return 0;
}

int level_dec_values(const struct level *lv, const void *v, unsigned count)
{
	const struct btree_value_type *vt = &lv->info->value_type;

	if (!lv->last || !vt->dec || !count)
		return 0;
	return vt->dec(vt->context, v, count);
}

int level_shadow(const struct level *lv, uint64_t b, bool is_root, struct block **out)
{
	struct block *blk;
	bool inc;
	int r;

	/* Check before shadowing, so a bad node costs no reference changes. */
	r = level_read_node(lv, b, is_root, &blk);
	if (r)
		return r;
	tm_unlock(lv->tm, blk);
	r = tm_shadow_block(lv->tm, b, &btree_node_validator, out, &inc);
	if (r)
		return r;
	if (inc) {
		r = level_inc_children(lv, block_data(*out));
		if (r) {
			tm_unlock(lv->tm, *out);
			*out = NULL;
		}
	}
	return r;
}

int level_descend(const struct level *lv, struct block **parent, struct block **cur,
		  uint32_t i)
{
	void *n = block_data(*cur);
	struct block *child;
	int r = level_shadow(lv, node_value64(n, i), false, &child);

	if (r)
		return r;
	node_set_value64(n, i, block_location(child));
	if (*parent)
		tm_unlock(lv->tm, *parent);
	*parent = *cur;
	*cur = child;
	return 0;
}

void level_release(const struct level *lv, struct block *parent, struct block *cur)
{
	if (parent)
		tm_unlock(lv->tm, parent);
	tm_unlock(lv->tm, cur);
}

int level_new_leaf(const struct level *lv, struct block **out)
{
	int r = tm_new_block(lv->tm, &btree_node_validator, out);

	if (!r)
		node_init(block_data(*out), BTREE_NODE_LEAF, lv->leaf_vsize);
	return r;
}

int level_new_like(const struct level *lv, const void *like, struct block **out)
{
	int r = tm_new_block(lv->tm, &btree_node_validator, out);

	if (!r)
		node_init(block_data(*out), node_flags(like), node_vsize(like));
	return r;
}

int level_find_leaf(const struct level *lv, uint64_t root, uint64_t key, struct block **leaf)
{
	struct block *blk;
	uint64_t b = root;
	unsigned depth;
	int r, i;

	for (depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		r = level_read_node(lv, b, depth == 0, &blk);
		if (r)
			return r;
		if (node_is_leaf(block_data(blk))) {
			*leaf = blk;
			return 0;
		}
		i = node_lower(block_data(blk), key);
		b = node_value64(block_data(blk), i < 0 ? 0 : (uint32_t)i);
		tm_unlock(lv->tm, blk);
	}
	return THINP_CORRUPT(level_log(lv), root, "btree", "tree too deep (cycle?)");
}

int level_empty_tree(const struct level *lv, uint64_t *root)
{
	struct block *blk;
	int r = level_new_leaf(lv, &blk);

	if (r)
		return r;
	*root = block_location(blk);
	tm_unlock(lv->tm, blk);
	return 0;
}

int btree_empty(struct btree_info *info, uint64_t *root)
{
	struct level lv;
	int r = level_init(&lv, info, 0);

	return r ? r : level_empty_tree(&lv, root);
}
