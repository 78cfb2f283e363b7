/*
 * Lock-step walk of two single-level btrees of one transaction manager (two
 * thin devices' mapping subtrees, possibly under different superblocks):
 * every key present in either tree, in key order, with its value on each
 * side, and - the point of it - every node the two trees share reported as
 * one "same" range without being read.
 *
 * Why a shared block number means identical contents: nodes are copy-on-write
 * (FORMAT.md 8.1). A block reachable from two roots is either committed (never
 * written again while referenced) or private to the open transaction and
 * then reachable from one tree only, unless a snapshot shared it, after which
 * it is shadowed before any change. So two pointers to one block name the
 * same keys and values, whatever the paths above them.
 *
 * The walk keeps, for each tree, the path from the root to the current entry
 * (read-locked) and a position p: every key below p has been reported on both
 * sides, none at or above it. It then repeats:
 *   - both current nodes are the same block (same index): the rest of that
 *     node is identical, report [p, min(upper bounds)) as same, leave it;
 *   - both current entries point at the same child: report its range as same,
 *     step over it without reading it;
 *   - otherwise descend the current child of greater height (both if equal),
 *     so that a node shared at different depths is met at the same height;
 *   - at two leaf entries whose keys and value bytes agree (without
 *     expand_same): pass over the whole stretch that agrees, unreported;
 *   - at two leaf entries (or one, the other tree being past its last key),
 *     report the smaller key with its value(s) and move p past it.
 * Cost: O(depth) node reads to start, then reads only of nodes that differ
 * (each at most once per side, plus at most one extra read of a node the
 * other side already read, a cache hit); so a delta costs O(changed nodes),
 * not O(mapped).
 *
 * Hostile trees: heights are checked against leaf/internal flags, keys must
 * increase on each side, descents are bounded: O(nodes) work at worst.
 */
#ifndef THINP_BTREE_DIFF_H
#define THINP_BTREE_DIFF_H

#include "os/os.h"

#include "btree/btree.h"

/* An absent tree (a device missing on one side of a one-device walk). */
#define BTREE_DIFF_NO_TREE 0ull
/* An `end` that bounds nothing. */
#define BTREE_DIFF_END UINT64_MAX

struct btree_diff_ops {
	/* key is in a (va != NULL), b (vb != NULL) or both. Without
	 * expand_same, a key whose value bytes are equal on both sides never
	 * comes here; with it, every key does (shared nodes' too). */
	int (*entry)(void *ctx, uint64_t key, const void *va, const void *vb);
	/* Both trees hold exactly the same keys and values in [begin, end):
	 * they share node `block`. Not called with expand_same. May be NULL. */
	int (*same)(void *ctx, uint64_t begin, uint64_t end, uint64_t block);
};

/*
 * Walk keys in [begin, end) of the trees rooted at a and b (either may be
 * BTREE_DIFF_NO_TREE). A callback returning > 0 stops the walk after that
 * item; *next then receives where to resume (pass it as begin). Returns 0
 * when the range is done (*next = end), 1 when a callback stopped it, a
 * callback's negative value, or -EILSEQ/-EIO/-ENOMEM... from the trees.
 * Read locks only; callbacks run with both paths read-locked (they must not
 * change either tree).
 */
int btree_diff(struct btree_info *info, uint64_t a, uint64_t b, uint64_t begin, uint64_t end,
	       bool expand_same, const struct btree_diff_ops *ops, void *ctx, uint64_t *next);

#endif
