/*
 * Reference-count recomputation (FORMAT.md 7) and structural checking.
 *
 * Each node pointer adds one to the node's count in `meta`; a node is
 * descended only when first counted, so a shared node contributes its own
 * pointers once, as thin_check counts them, and a cycle cannot recurse.
 * On the way every rule of FORMAT.md 4.4 that spans nodes is checked: a
 * non-root node holds at least max/3 entries (rule 8), the keys of child i
 * lie in [key[i], key[i+1]) of its parent (rules 9 and 10), and all leaves of
 * a tree are at one depth (rule 11). Nodes reached through another parent
 * first are checked against that parent's bounds only.
 *
 * Cost: O(nodes + values); one read lock per level of the current path.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/node.h"
#include "util/compiler.h"
#include "util/counter.h"
#include "util/log.h"

struct count {
	struct btree_info *info;
	struct block_counter *meta;
	btree_value_fn value_fn;
	void *ctx;
	/* The nodes on the current path, to tell a cycle (a pointer back to
	 * an ancestor) from legitimate sharing (a node counted before). */
	uint64_t path[BTREE_MAX_LEVELS * BTREE_MAX_DEPTH];
	unsigned path_len;
};

/* Keys of a node must lie in [lo, hi) (hi absent at the right edge). */
struct bounds {
	uint64_t lo;
	uint64_t hi;
	bool has_lo, has_hi;
};

static int count_tree(struct count *c, unsigned level, uint64_t root);

static int check_node(const struct level *lv, const void *n, uint64_t b, unsigned depth,
		      const struct bounds *bd, int *leaf_depth)
{
	const struct tlog *log = level_log(lv);
	uint32_t nr = node_nr(n);

	if (depth > 0 && nr < node_min_entries(n))
		return THINP_CORRUPT(log, b, "btree node", "too few entries");
	if (nr && bd->has_lo && node_key(n, 0) < bd->lo)
		return THINP_CORRUPT(log, b, "btree node", "key below its parent key");
	if (nr && bd->has_hi && node_key(n, nr - 1) >= bd->hi)
		return THINP_CORRUPT(log, b, "btree node", "key not below the next parent key");
	if (node_is_leaf(n)) {
		if (*leaf_depth < 0)
			*leaf_depth = (int)depth;
		else if (*leaf_depth != (int)depth)
			return THINP_CORRUPT(log, b, "btree", "leaves at different depths");
	}
	return 0;
}

/* Count a pointer to b; *first is true if b was not counted before.
 * O(1), or O(depth) for a node seen before. */
static int count_ptr(struct count *c, uint64_t b, bool *first)
{
	uint32_t n;
	unsigned i;
	int r = block_counter_inc(c->meta, b, &n);

	*first = !r && n == 1;
	if (r || *first)
		return r;
	for (i = 0; i < c->path_len; i++)
		if (c->path[i] == b)
			return THINP_CORRUPT(bm_log(tm_bm(c->info->tm)), b, "btree",
					     "cycle: node points at an ancestor");
	return 0;
}

static int count_leaf(struct count *c, const struct level *lv, const void *n)
{
	uint32_t i, nr = node_nr(n);
	bool first;
	int r = 0;

	for (i = 0; i < nr && !r; i++) {
		if (!lv->last) {
			r = count_ptr(c, node_value64(n, i), &first);
			if (!r && first)
				r = count_tree(c, lv->level + 1, node_value64(n, i));
		} else if (c->value_fn) {
			r = c->value_fn(c->ctx, node_key(n, i), node_value(n, i));
		}
	}
	return r;
}

static int count_node(struct count *c, const struct level *lv, uint64_t b, unsigned depth,
		      const struct bounds *bd, int *leaf_depth)
{
	struct block *blk;
	struct bounds cb;
	const void *n;
	uint32_t i, nr;
	bool first;
	int r;

	if (depth >= BTREE_MAX_DEPTH || c->path_len >= THINP_ARRAY_SIZE(c->path))
		return THINP_CORRUPT(level_log(lv), b, "btree", "tree too deep");
	r = level_read_node(lv, b, depth == 0, &blk);
	if (r)
		return r;
	c->path[c->path_len++] = b;
	n = block_data(blk);
	nr = node_nr(n);
	r = check_node(lv, n, b, depth, bd, leaf_depth);
	if (!r && node_is_leaf(n))
		r = count_leaf(c, lv, n);
	for (i = 0; !r && !node_is_leaf(n) && i < nr; i++) {
		r = count_ptr(c, node_value64(n, i), &first);
		if (r || !first)
			continue;
		cb.lo = node_key(n, i);
		cb.has_lo = true;
		cb.has_hi = i + 1 < nr || bd->has_hi;
		cb.hi = i + 1 < nr ? node_key(n, i + 1) : bd->hi;
		r = count_node(c, lv, node_value64(n, i), depth + 1, &cb, leaf_depth);
	}
	c->path_len--;
	tm_unlock(lv->tm, blk);
	return r;
}

/* The root's pointer was counted by the caller. */
static int count_tree(struct count *c, unsigned level, uint64_t root)
{
	struct bounds bd = { 0, 0, false, false };
	struct level lv;
	int leaf_depth = -1;
	int r = level_init(&lv, c->info, level);

	return r ? r : count_node(c, &lv, root, 0, &bd, &leaf_depth);
}

int btree_count_blocks(struct btree_info *info, uint64_t root, struct block_counter *meta,
		       btree_value_fn value_fn, void *ctx)
{
	struct count c = { .info = info, .meta = meta, .value_fn = value_fn, .ctx = ctx };
	bool first;
	int r = count_ptr(&c, root, &first);

	if (r || !first)
		return r;
	return count_tree(&c, 0, root);
}
