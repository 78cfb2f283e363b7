/*
 * In-order walk of one level's tree (the first level of a multi-level tree:
 * its values are then the le64 subtree roots). Read locks only; the callback
 * runs with the current path read-locked, so it may look things up but must
 * not change this tree.
 *
 * Hostile trees: every leaf visited must continue the strictly increasing
 * key sequence, so a node reached twice (a cycle, or one node under two
 * parents) is reported on its second visit, and descents are bounded in
 * depth; the walk therefore ends after O(nodes) visits whatever the input.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"
#include "util/log.h"

struct walk {
	const struct level *lv;
	btree_walk_fn fn;
	void *ctx;
	bool have_last;
	uint64_t last;
};

static int walk_leaf(struct walk *w, const void *n, uint64_t b)
{
	uint32_t i, nr = node_nr(n);
	uint64_t k;
	int r;

	for (i = 0; i < nr; i++) {
		k = node_key(n, i);
		if (w->have_last && k <= w->last)
			return THINP_CORRUPT(level_log(w->lv), b, "btree",
					     "keys out of order across leaves");
		w->have_last = true;
		w->last = k;
		r = w->fn(w->ctx, k, node_value(n, i));
		if (r)
			return r;
	}
	return 0;
}

/* O(nodes below b). */
static int walk_node(struct walk *w, uint64_t b, unsigned depth)
{
	struct block *blk;
	const void *n;
	uint32_t i;
	int r;

	if (depth >= BTREE_MAX_DEPTH)
		return THINP_CORRUPT(level_log(w->lv), b, "btree", "tree too deep (cycle?)");
	r = level_read_node(w->lv, b, depth == 0, &blk);
	if (r)
		return r;
	n = block_data(blk);
	if (node_is_leaf(n))
		r = walk_leaf(w, n, b);
	else
		for (i = 0; i < node_nr(n) && !r; i++)
			r = walk_node(w, node_value64(n, i), depth + 1);
	tm_unlock(w->lv->tm, blk);
	return r;
}

int btree_walk(struct btree_info *info, uint64_t root, btree_walk_fn fn, void *ctx)
{
	struct level lv;
	struct walk w = { .lv = &lv, .fn = fn, .ctx = ctx };
	int r = level_init(&lv, info, 0);

	return r ? r : walk_node(&w, root, 0);
}
