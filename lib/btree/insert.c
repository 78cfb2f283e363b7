/*
 * Insert (FORMAT.md 4.7): one descent from the root to the leaf, shadowing
 * every node on the path and making room before stepping into a full node,
 * so that a split below never needs room above that is not already there.
 *
 * Multi-level trees: for each upper level the descent ends at the leaf slot
 * of keys[level]; a missing key gets a new empty subtree. The upper leaf is
 * patched with the subtree's new root after the lower level's insert. The
 * order matters for sharing: the upper path is shadowed first, so a shared
 * upper leaf's copy takes its extra reference on the subtree root before the
 * subtree root itself is shadowed (and then seen as shared, as it is).
 *
 * Cost: O(depth) node visits per level, plus O(1) new blocks per split.
 */
#include "os/os.h"

#include "block/bm.h"
#include "btree/split.h"
#include "util/log.h"

/* Must node n be split (or relieved) before key goes in or below it? */
static bool needs_room(const void *n, uint64_t key)
{
	return node_is_full(n) && !(node_is_leaf(n) && node_find(n, key) >= 0);
}

/* In internal node n, the child for key; lowers key[0] when key is below
 * every key, so the parent key stays <= the subtree's first key (rule 9). */
static uint32_t child_for_insert(void *n, uint64_t key)
{
	int i = node_lower(n, key);

	if (i < 0) {
		node_set_key(n, 0, key);
		i = 0;
	}
	return (uint32_t)i;
}

int btree_insert_raw(const struct level *lv, uint64_t root, uint64_t key, uint64_t *new_root,
		     struct block **leaf, uint32_t *index, bool *exists)
{
	struct block *parent = NULL, *cur;
	uint32_t pidx = 0, i;
	unsigned depth;
	void *n;
	int r;

	r = level_shadow(lv, root, true, &cur);
	if (r)
		return r;
	*new_root = block_location(cur);
	for (depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		if (needs_room(block_data(cur), key)) {
			r = parent ? make_room(lv, parent, &pidx, &cur, key) :
				     split_beneath(lv, cur);
			if (r)
				goto fail;
		}
		n = block_data(cur);
		if (node_is_leaf(n)) {
			if (parent)
				tm_unlock(lv->tm, parent);
			*leaf = cur;
			*index = node_first_ge(n, key);
			*exists = *index < node_nr(n) && node_key(n, *index) == key;
			return 0;
		}
		i = child_for_insert(n, key);
		r = level_descend(lv, &parent, &cur, i);
		if (r)
			goto fail;
		pidx = i;
	}
	r = THINP_CORRUPT(level_log(lv), root, "btree", "tree too deep (cycle?)");
fail:
	level_release(lv, parent, cur);
	return r;
}

/* Store value in the last level's leaf slot; an overwrite with an unequal
 * value drops the old value's reference (the caller owns the new one's). */
static int put_value(const struct level *lv, void *n, uint32_t index, bool exists,
		     uint64_t key, const void *value)
{
	const struct btree_value_type *vt = &lv->info->value_type;
	void *old;
	int r;

	if (!exists) {
		node_insert_at(n, index, key, value);
		return 0;
	}
	old = node_value(n, index);
	if (vt->dec) {
		bool same = vt->equal ? vt->equal(vt->context, old, value)
				      : memcmp(old, value, vt->size) == 0;

		if (!same) {
			r = vt->dec(vt->context, old, 1);
			if (r)
				return r;
		}
	}
	memcpy(old, value, vt->size);
	return 0;
}

/* The upper leaf was shadowed earlier in this transaction, so shadowing it
 * again is in place and its location is still leaf_b. */
int patch_upper(const struct level *lv, uint64_t leaf_b, uint32_t index, uint64_t sub)
{
	struct block *blk;
	int r = level_shadow(lv, leaf_b, false, &blk);

	if (r)
		return r;
	if (block_location(blk) != leaf_b || !node_is_leaf(block_data(blk)) ||
	    index >= node_nr(block_data(blk))) {
		/* Only a tree whose levels share blocks (a cycle) gets here. */
		tm_unlock(lv->tm, blk);
		return THINP_CORRUPT(level_log(lv), leaf_b, "btree", "upper leaf moved");
	}
	node_set_value64(block_data(blk), index, sub);
	tm_unlock(lv->tm, blk);
	return 0;
}

int upper_slot(const struct level *lv, uint64_t root, uint64_t key, bool create,
	       uint64_t *new_root, uint64_t *leaf_b, uint32_t *index, uint64_t *sub)
{
	struct block *leaf;
	bool exists;
	uint8_t v[8];
	int r;

	r = btree_insert_raw(lv, root, key, new_root, &leaf, index, &exists);
	if (r)
		return r;
	if (!exists && !create) {
		tm_unlock(lv->tm, leaf);
		return -ENODATA;
	}
	if (!exists) {
		struct level next;

		r = level_init(&next, lv->info, lv->level + 1);
		if (!r)
			r = level_empty_tree(&next, sub);
		if (r) {
			tm_unlock(lv->tm, leaf);
			return r;
		}
		store_le64(v, *sub);
		node_insert_at(block_data(leaf), *index, key, v);
	}
	*sub = node_value64(block_data(leaf), *index);
	*leaf_b = block_location(leaf);
	tm_unlock(lv->tm, leaf);
	return 0;
}

static int insert_level(struct btree_info *info, unsigned level, uint64_t root,
			const uint64_t *keys, const void *value, uint64_t *new_root,
			bool *inserted)
{
	struct level lv;
	struct block *leaf;
	uint64_t leaf_b, sub, new_sub;
	uint32_t index;
	bool exists;
	int r = level_init(&lv, info, level);

	if (r)
		return r;
	if (lv.last) {
		r = btree_insert_raw(&lv, root, keys[level], new_root, &leaf, &index, &exists);
		if (r)
			return r;
		r = put_value(&lv, block_data(leaf), index, exists, keys[level], value);
		tm_unlock(info->tm, leaf);
		if (inserted)
			*inserted = !exists;
		return r;
	}
	r = upper_slot(&lv, root, keys[level], true, new_root, &leaf_b, &index, &sub);
	if (r)
		return r;
	r = insert_level(info, level + 1, sub, keys, value, &new_sub, inserted);
	if (r || new_sub == sub)
		return r;
	return patch_upper(&lv, leaf_b, index, new_sub);
}

int btree_insert(struct btree_info *info, uint64_t root, const uint64_t *keys,
		 const void *value, uint64_t *new_root, bool *inserted)
{
	return insert_level(info, 0, root, keys, value, new_root, inserted);
}
