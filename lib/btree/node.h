/*
 * Btree node layout (FORMAT.md 4.1-4.3) and the per-level context shared by
 * the btree's files. Internal to lib/btree.
 *
 * A node is one 4 KiB block: a 32-byte header, max_entries le64 keys, then
 * max_entries values of value_size bytes (the values start after
 * max_entries keys, not nr_entries). The accessors below trust the header:
 * they may only be used on a node that passed btree_node_validator (every
 * node read from the device does, inside the block manager) or that this
 * code built itself.
 */
#ifndef THINP_BTREE_NODE_H
#define THINP_BTREE_NODE_H

#include "os/os.h"

#include "btree/btree.h"
#include "util/compiler.h"
#include "util/endian.h"

#define BTREE_NODE_INTERNAL 1u
#define BTREE_NODE_LEAF 2u
#define BTREE_CSUM_SALT 121107u
#define BTREE_HEADER_SIZE 32u
#define BTREE_INTERNAL_VALUE_SIZE 8u

/* Deepest descent accepted within one level's tree. A real tree is at most
 * ~11 deep (fan-out >= 84 below the root, 64-bit keys); anything deeper is a
 * cycle or corruption, and the bound keeps a hostile tree from hanging us. */
#define BTREE_MAX_DEPTH 24

struct node_header {
	le32 csum;
	le32 flags;
	le64 blocknr;
	le32 nr_entries;
	le32 max_entries;
	le32 value_size;
	le32 padding;
} THINP_PACKED;
_Static_assert(sizeof(struct node_header) == BTREE_HEADER_SIZE, "node header is 32 bytes");

extern const struct validator btree_node_validator;

/* max_entries for a value size: the pairs that fit, rounded down to a
 * multiple of 3 (FORMAT.md 4.3); 0 if not even 3 fit. */
uint32_t btree_max_entries(uint32_t value_size);

static inline const struct node_header *node_hdr(const void *n)
{
	return n;
}
static inline uint32_t node_flags(const void *n)
{
	return le32_to_cpu(node_hdr(n)->flags);
}
static inline bool node_is_leaf(const void *n)
{
	return node_flags(n) == BTREE_NODE_LEAF;
}
static inline uint32_t node_nr(const void *n)
{
	return le32_to_cpu(node_hdr(n)->nr_entries);
}
static inline uint32_t node_max(const void *n)
{
	return le32_to_cpu(node_hdr(n)->max_entries);
}
static inline uint32_t node_vsize(const void *n)
{
	return le32_to_cpu(node_hdr(n)->value_size);
}
static inline void node_set_nr(void *n, uint32_t nr)
{
	((struct node_header *)n)->nr_entries = cpu_to_le32(nr);
}
static inline uint64_t node_key(const void *n, uint32_t i)
{
	return load_le64((const char *)n + BTREE_HEADER_SIZE + 8u * i);
}
static inline void node_set_key(void *n, uint32_t i, uint64_t k)
{
	store_le64((char *)n + BTREE_HEADER_SIZE + 8u * i, k);
}
static inline void *node_value(const void *n, uint32_t i)
{
	return (char *)n + BTREE_HEADER_SIZE + 8u * node_max(n) + (size_t)node_vsize(n) * i;
}
/* The le64 value of entry i: a child block (internal) or subtree root. */
static inline uint64_t node_value64(const void *n, uint32_t i)
{
	return load_le64(node_value(n, i));
}
static inline void node_set_value64(void *n, uint32_t i, uint64_t v)
{
	store_le64(node_value(n, i), v);
}
static inline bool node_is_full(const void *n)
{
	return node_nr(n) >= node_max(n);
}
/* Fewest entries a non-root node may hold (FORMAT.md 4.4 rule 8). */
static inline uint32_t node_min_entries(const void *n)
{
	return node_max(n) / 3;
}

/* Make n an empty node of the given kind. */
void node_init(void *n, uint32_t flags, uint32_t value_size);
/* Largest i with key[i] <= key, or -1. O(log nr). */
int node_lower(const void *n, uint64_t key);
/* Smallest i with key[i] >= key, or nr. O(log nr). */
uint32_t node_first_ge(const void *n, uint64_t key);
/* Index of key if present, else -1. O(log nr). */
int node_find(const void *n, uint64_t key);
/* Insert (key, value) at i, shifting entries i.. up. Needs a free slot. O(nr). */
void node_insert_at(void *n, uint32_t i, uint64_t key, const void *value);
/* Delete count entries starting at i, shifting later ones down. O(nr). */
void node_delete_at(void *n, uint32_t i, uint32_t count);
/* True if the two nodes have the same kind (flags, value size, capacity). */
bool node_same_kind(const void *a, const void *b);
/*
 * Spread the entries of nodes[0..count-1] (same kind, in key order) so that
 * node j holds targets[j] entries, keeping the overall order. Each target
 * must be <= max_entries and the targets must sum to the current total.
 * O(total entries).
 */
void node_redistribute(void **nodes, unsigned count, const uint32_t *targets);

/*
 * One level of a (multi-level) tree: which values its leaves hold and how
 * to take references on them. Levels above the last hold le64 subtree roots.
 */
struct level {
	struct btree_info *info;
	struct tx_manager *tm;
	unsigned level;
	bool last;
	uint32_t leaf_vsize;
	uint32_t leaf_max;
};

int level_init(struct level *lv, struct btree_info *info, unsigned level);
const struct tlog *level_log(const struct level *lv);
/* Check what the validator cannot: the node's kind and sizes fit this level
 * (internal: value_size 8, max 252, at least one entry; leaf: this level's
 * value size and capacity) and a non-root node is not empty. O(1). */
int level_check_node(const struct level *lv, const void *n, uint64_t b, bool is_root);
/* Read-lock and check a node. */
int level_read_node(const struct level *lv, uint64_t b, bool is_root, struct block **out);
/* Write-lock node b for change, copying it if it belongs to the committed
 * state or is shared; when it was shared, everything the copy points at gains
 * a reference (FORMAT.md 8.1 step 3). O(1) blocks, O(nr) if shared. */
int level_shadow(const struct level *lv, uint64_t b, bool is_root, struct block **out);
/* One step of a shadowing descent: shadow child i of *cur and point *cur at
 * the copy, then move down: *parent (if any) is unlocked, *cur becomes the
 * parent and the copy the current node. On failure nothing moves. */
int level_descend(const struct level *lv, struct block **parent, struct block **cur,
		  uint32_t i);
/* Unlock the two nodes of a descent (parent may be NULL). */
void level_release(const struct level *lv, struct block *parent, struct block *cur);
/* A new empty node of this level's leaf kind, write-locked. */
int level_new_leaf(const struct level *lv, struct block **out);
/* A new empty tree of this level (one empty leaf root). */
int level_empty_tree(const struct level *lv, uint64_t *root);
/* A new node of the same kind as `like`, empty, write-locked. */
int level_new_like(const struct level *lv, const void *like, struct block **out);
/* Take one more reference on everything node n points at. O(nr). */
int level_inc_children(const struct level *lv, const void *n);
/* Drop the references of `count` leaf values at v (last level: the value
 * type's dec; upper levels never come here). */
int level_dec_values(const struct level *lv, const void *v, unsigned count);

/* Descend read-only to the leaf that would hold key; the leaf is returned
 * read-locked. O(depth). */
int level_find_leaf(const struct level *lv, uint64_t root, uint64_t key, struct block **leaf);

/* Follow keys[0..levels-2] from root to the root of the last level's tree
 * (read-only). -ENODATA if a key is missing. O(levels * depth). */
int level_resolve_upper(struct btree_info *info, uint64_t root, const uint64_t *keys,
			uint64_t *last_root);

/*
 * Descend from root to the leaf slot for key, shadowing the path and making
 * room on the way (split beneath at the root, redistribute into a sibling or
 * split below it), so that key can be inserted. Returns the new root, the
 * leaf write-locked, the index where key is or goes, and whether it exists.
 * O(depth) nodes.
 */
int btree_insert_raw(const struct level *lv, uint64_t root, uint64_t key, uint64_t *new_root,
		     struct block **leaf, uint32_t *index, bool *exists);
/*
 * For an upper level: descend (as btree_insert_raw) to keys' slot and return
 * the subtree root stored there and where (upper leaf block and index, valid
 * for the rest of the transaction). A missing key gets a new empty subtree
 * if `create`, else -ENODATA.
 */
int upper_slot(const struct level *lv, uint64_t root, uint64_t key, bool create,
	       uint64_t *new_root, uint64_t *leaf_b, uint32_t *index, uint64_t *sub);
/* Point the upper leaf slot found by upper_slot at a new subtree root. */
int patch_upper(const struct level *lv, uint64_t leaf_b, uint32_t index, uint64_t sub);

#endif
