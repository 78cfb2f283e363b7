/*
 * Making room for an insert (insert path) and merging/redistributing
 * children (remove path). Internal to lib/btree.
 */
#ifndef THINP_BTREE_SPLIT_H
#define THINP_BTREE_SPLIT_H

#include "btree/node.h"

/* The full root (write-locked) gains a level: its entries move to two new
 * children and the root, same block, becomes an internal node over them.
 * O(1) blocks. */
int split_beneath(const struct level *lv, struct block *root);

/*
 * The full non-root node *cur is child *pidx of parent (both write-locked,
 * parent not full). Make room for key: move entries into an unshared
 * sibling with at least 8 free slots, or split *cur in two. On return *cur
 * and *pidx name the node (write-locked) that should receive key; the other
 * node involved is unlocked. O(1) blocks.
 */
int make_room(const struct level *lv, struct block *parent, uint32_t *pidx,
	      struct block **cur, uint64_t key);

/*
 * Before the remove path steps into child i of parent (write-locked, at
 * least 2 entries), make sure that child holds more than the minimum, by
 * redistributing with its neighbours or merging with them (rebalance2 and
 * rebalance3 of FORMAT.md 4.8). Merged-away nodes are dropped from the
 * parent and their blocks decremented. O(1) blocks.
 */
int rebalance_child(const struct level *lv, struct block *parent, uint32_t i);

#endif
