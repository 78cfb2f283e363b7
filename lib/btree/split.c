/*
 * Node splits, redistribution and merges: the structural changes that keep
 * every non-root node between max/3 and max entries (FORMAT.md 4.4 rule 8).
 *
 * Why the fill bounds hold:
 *  - split_beneath and split_two halve a full node: both halves get >= max/2.
 *  - make_room redistributes a full node with a sibling that has >= 8 free
 *    slots: each ends with floor/ceil of the total/2 <= max - 4, and >= max/2
 *    since the full node alone had max entries.
 *  - On removal, the child about to be descended into gets more than
 *    t = max/3 entries first, so losing one entry (a leaf removal, or a merge
 *    among its own children) leaves it >= t. rebalance2 merges two nodes only
 *    when their total is <= 2t+1 (fits, since 2t+1 <= 3t), otherwise each
 *    gets >= t+1; rebalance3 merges three into two when the total is <= 4t
 *    (each of the two then gets >= 3t/2 >= t+1 from valid inputs, and at most
 *    2t <= max), otherwise gives each of the three >= floor(total/3) >= t+1.
 * Every node that is changed is shadowed first and its new location written
 * into the parent; a node merged away is decremented (its children moved, so
 * their counts are unchanged; if it was shared, the shadow already took the
 * extra references its copy needed).
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/split.h"
#include "util/log.h"

/* A sibling needs this many free slots to be worth redistributing into. */
#define SIBLING_MIN_FREE 8u

int split_beneath(const struct level *lv, struct block *root)
{
	void *n = block_data(root);
	struct block *lb, *rb;
	uint32_t nr = node_nr(n), nl = nr / 2;
	void *nodes[3];
	uint32_t targets[3];
	int r;

	r = level_new_like(lv, n, &lb);
	if (r)
		return r;
	r = level_new_like(lv, n, &rb);
	if (r) {
		tm_unlock(lv->tm, lb);
		tm_dec(lv->tm, block_location(lb));
		return r;
	}
	/* Move all entries into the two children, then rebuild the root. */
	nodes[0] = n;
	nodes[1] = block_data(lb);
	nodes[2] = block_data(rb);
	targets[0] = 0;
	targets[1] = nl;
	targets[2] = nr - nl;
	node_redistribute(nodes, 3, targets);
	node_init(n, BTREE_NODE_INTERNAL, BTREE_INTERNAL_VALUE_SIZE);
	node_set_nr(n, 2);
	node_set_key(n, 0, node_key(nodes[1], 0));
	node_set_value64(n, 0, block_location(lb));
	node_set_key(n, 1, node_key(nodes[2], 0));
	node_set_value64(n, 1, block_location(rb));
	tm_unlock(lv->tm, lb);
	tm_unlock(lv->tm, rb);
	return 0;
}

/* Shadow child i of parent and point the parent at the shadow. */
static int shadow_child(const struct level *lv, void *parent, uint32_t i, struct block **out)
{
	int r = level_shadow(lv, node_value64(parent, i), false, out);

	if (!r)
		node_set_value64(parent, i, block_location(*out));
	return r;
}

/* Is child i of parent an unshared node of cur's kind with room to spare? */
static int sibling_has_room(const struct level *lv, const void *parent, uint32_t i,
			    const void *cur, bool *ok)
{
	uint64_t b = node_value64(parent, i);
	struct block *blk;
	uint32_t count;
	const void *n;
	int r;

	*ok = false;
	r = tm_ref(lv->tm, b, &count);
	if (r || count > 1)
		return r;
	r = level_read_node(lv, b, false, &blk);
	if (r)
		return r;
	n = block_data(blk);
	if (!node_same_kind(n, cur))
		r = THINP_CORRUPT(level_log(lv), b, "btree node", "sibling of a different kind");
	else
		*ok = node_max(n) - node_nr(n) >= SIBLING_MIN_FREE;
	tm_unlock(lv->tm, blk);
	return r;
}

/*
 * Redistribute children li and li+1 (both write-locked) evenly, fix the
 * parent key of the right one, and keep locked only the one that should
 * receive key.
 */
static void share_pair(const struct level *lv, void *parent, uint32_t li, struct block *l,
		       struct block *rt, uint64_t key, struct block **cur, uint32_t *pidx)
{
	void *nodes[2] = { block_data(l), block_data(rt) };
	uint32_t total = node_nr(nodes[0]) + node_nr(nodes[1]);
	uint32_t targets[2] = { total / 2, total - total / 2 };

	node_redistribute(nodes, 2, targets);
	node_set_key(parent, li + 1, node_key(nodes[1], 0));
	if (key >= node_key(parent, li + 1)) {
		tm_unlock(lv->tm, l);
		*cur = rt;
		*pidx = li + 1;
	} else {
		tm_unlock(lv->tm, rt);
		*cur = l;
		*pidx = li;
	}
}

/* Try the sibling at index s (left or right of *pidx). *done if it worked. */
static int try_sibling(const struct level *lv, struct block *parent, uint32_t *pidx,
		       struct block **cur, uint32_t s, uint64_t key, bool *done)
{
	void *pn = block_data(parent);
	struct block *sib;
	bool ok;
	int r;

	*done = false;
	r = sibling_has_room(lv, pn, s, block_data(*cur), &ok);
	if (r || !ok)
		return r;
	r = shadow_child(lv, pn, s, &sib);
	if (r)
		return r;
	if (s < *pidx)
		share_pair(lv, pn, s, sib, *cur, key, cur, pidx);
	else
		share_pair(lv, pn, *pidx, *cur, sib, key, cur, pidx);
	*done = true;
	return 0;
}

/* Split *cur in two: a new right sibling takes the upper half. */
static int split_two(const struct level *lv, struct block *parent, uint32_t *pidx,
		     struct block **cur, uint64_t key)
{
	void *pn = block_data(parent), *n = block_data(*cur), *nodes[2];
	uint32_t nr = node_nr(n), targets[2] = { nr / 2, nr - nr / 2 };
	struct block *rb;
	uint8_t loc[8];
	int r;

	/* The descent splits a full parent before stepping below it. */
	if (node_is_full(pn))
		return -EINVAL;
	r = level_new_like(lv, n, &rb);
	if (r)
		return r;
	nodes[0] = n;
	nodes[1] = block_data(rb);
	node_redistribute(nodes, 2, targets);
	store_le64(loc, block_location(rb));
	node_insert_at(pn, *pidx + 1, node_key(nodes[1], 0), loc);
	if (key >= node_key(nodes[1], 0)) {
		tm_unlock(lv->tm, *cur);
		*cur = rb;
		*pidx += 1;
	} else {
		tm_unlock(lv->tm, rb);
	}
	return 0;
}

int make_room(const struct level *lv, struct block *parent, uint32_t *pidx,
	      struct block **cur, uint64_t key)
{
	uint32_t nr = node_nr(block_data(parent));
	bool done = false;
	int r;

	if (*pidx > 0) {
		r = try_sibling(lv, parent, pidx, cur, *pidx - 1, key, &done);
		if (r || done)
			return r;
	}
	if (*pidx + 1 < nr) {
		r = try_sibling(lv, parent, pidx, cur, *pidx + 1, key, &done);
		if (r || done)
			return r;
	}
	return split_two(lv, parent, pidx, cur, key);
}

/*
 * Children first..first+count-1 of parent are write-locked in blks. Spread
 * their entries per targets (targets[0] > 0); drop each child whose target
 * is 0 from the parent and decrement its block; set the parent keys of the
 * other survivors to their new first keys (the first child keeps its key:
 * its first entry did not change). Unlocks every child.
 */
static int settle(const struct level *lv, void *parent, uint32_t first, struct block **blks,
		  unsigned count, const uint32_t *targets)
{
	void *nodes[3];
	uint32_t idx = first;
	unsigned j;
	int r = 0, r2;

	for (j = 0; j < count; j++)
		nodes[j] = block_data(blks[j]);
	node_redistribute(nodes, count, targets);
	for (j = 0; j < count; j++) {
		uint64_t b = block_location(blks[j]);

		if (j > 0 && targets[j] == 0) {
			tm_unlock(lv->tm, blks[j]);
			node_delete_at(parent, idx, 1);
			r2 = tm_dec(lv->tm, b);
			if (!r)
				r = r2;
			continue;
		}
		if (j > 0)
			node_set_key(parent, idx, node_key(nodes[j], 0));
		tm_unlock(lv->tm, blks[j]);
		idx++;
	}
	return r;
}

/* Shadow children first..first+count-1 and check they are of one kind.
 * On error nothing stays locked. */
static int shadow_children(const struct level *lv, void *parent, uint32_t first,
			   unsigned count, struct block **blks)
{
	unsigned j;
	int r = 0;

	for (j = 0; j < count; j++) {
		r = shadow_child(lv, parent, first + j, &blks[j]);
		if (r)
			break;
		if (j && !node_same_kind(block_data(blks[0]), block_data(blks[j]))) {
			r = THINP_CORRUPT(level_log(lv), block_location(blks[j]), "btree node",
					  "sibling of a different kind");
			j++;
			break;
		}
	}
	if (r)
		while (j--)
			tm_unlock(lv->tm, blks[j]);
	return r;
}

/* Entries for two nodes holding total: merged into the left one below
 * 2t+2 (so a redistribution always leaves both above t), else halves. */
static void pair_targets(uint32_t total, uint32_t t, uint32_t *left, uint32_t *right)
{
	if (total < 2 * t + 2) {
		*left = total;
		*right = 0;
	} else {
		*left = total / 2;
		*right = total - total / 2;
	}
}

/* rebalance2 on children li, li+1. */
static int rebalance2(const struct level *lv, void *parent, uint32_t li)
{
	struct block *blks[2];
	uint32_t t, total, targets[2];
	int r = shadow_children(lv, parent, li, 2, blks);

	if (r)
		return r;
	t = node_min_entries(block_data(blks[0]));
	total = node_nr(block_data(blks[0])) + node_nr(block_data(blks[1]));
	pair_targets(total, t, &targets[0], &targets[1]);
	return settle(lv, parent, li, blks, 2, targets);
}

/* rebalance3 on children li, li+1, li+2: below 4t+1 entries the middle
 * node goes and its entries spread over the outer two (rebalanced as a
 * pair); otherwise R gets floor(total/3), L that plus one if total is not a
 * multiple of 3, C the rest. */
static int rebalance3(const struct level *lv, void *parent, uint32_t li)
{
	struct block *blks[3];
	uint32_t t, total, targets[3];
	int r = shadow_children(lv, parent, li, 3, blks);

	if (r)
		return r;
	t = node_min_entries(block_data(blks[0]));
	total = node_nr(block_data(blks[0])) + node_nr(block_data(blks[1])) +
		node_nr(block_data(blks[2]));
	if (total >= 4 * t + 1) {
		targets[2] = total / 3;
		targets[0] = total / 3 + (total % 3 ? 1 : 0);
		targets[1] = total - targets[0] - targets[2];
	} else {
		pair_targets(total, t, &targets[0], &targets[2]);
		targets[1] = 0;
	}
	return settle(lv, parent, li, blks, 3, targets);
}

int rebalance_child(const struct level *lv, struct block *parent, uint32_t i)
{
	void *pn = block_data(parent);
	uint32_t nr = node_nr(pn);

	if (nr < 2)
		return -EINVAL;
	if (i == 0)
		return rebalance2(lv, pn, 0);
	if (i == nr - 1)
		return rebalance2(lv, pn, i - 1);
	return rebalance3(lv, pn, i - 1);
}
