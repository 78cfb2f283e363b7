/*
 * Whole-tree delete (FORMAT.md 4.9): drop the tree's reference on its root.
 * A node still referenced elsewhere just loses one reference; a node whose
 * last reference this is is freed, after its children (child nodes, the
 * subtree roots of an upper-level leaf) are deleted the same way and its
 * values (last-level leaf) are dec'd.
 *
 * The node's own reference is dropped before its children are visited, not
 * after: a cycle leading back to it then finds a free block and stops with
 * -EILSEQ instead of recursing. Every visit drops one reference, so the
 * whole delete costs O(sum of the tree's references) whatever the input.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"
#include "util/log.h"

static int del_node(struct btree_info *info, unsigned level, uint64_t b, unsigned depth);

/* Delete what node n (just freed) points at. */
static int del_children(struct btree_info *info, const struct level *lv, const void *n,
			unsigned depth)
{
	uint32_t i, nr = node_nr(n);
	int r = 0;

	if (node_is_leaf(n) && lv->last)
		return level_dec_values(lv, nr ? node_value(n, 0) : NULL, nr);
	for (i = 0; i < nr && !r; i++) {
		if (node_is_leaf(n))
			r = del_node(info, lv->level + 1, node_value64(n, i), 0);
		else
			r = del_node(info, lv->level, node_value64(n, i), depth + 1);
	}
	return r;
}

static int del_node(struct btree_info *info, unsigned level, uint64_t b, unsigned depth)
{
	struct level lv;
	struct block *blk;
	uint32_t count;
	int r = level_init(&lv, info, level);

	if (r)
		return r;
	if (depth >= BTREE_MAX_DEPTH)
		return THINP_CORRUPT(level_log(&lv), b, "btree", "tree too deep (cycle?)");
	r = tm_ref(lv.tm, b, &count);
	if (r)
		return r;
	if (count == 0)
		return THINP_CORRUPT(level_log(&lv), b, "btree", "reference to a free block");
	if (count > 1)
		return tm_dec(lv.tm, b);
	r = level_read_node(&lv, b, depth == 0, &blk);
	if (r)
		return r;
	r = tm_dec(lv.tm, b);
	if (!r)
		r = del_children(info, &lv, block_data(blk), depth);
	tm_unlock(lv.tm, blk);
	return r;
}

int btree_del(struct btree_info *info, uint64_t root)
{
	return del_node(info, 0, root, 0);
}
