/*
 * The block cache behind the block manager: entries (one per resident block)
 * found by block number through a chained hash table, and a least-recently-
 * used list of the entries nobody holds locked. It knows nothing about I/O,
 * locks or validators; bm.c decides when to insert, evict and write back.
 * Not thread-safe: the caller (bm) holds its mutex around every call.
 */
#ifndef THINP_BLOCK_CACHE_H
#define THINP_BLOCK_CACHE_H

#include "os/os.h"

#include "block/bm.h"

/* One resident block. This is the `struct block` handed to lock holders. */
struct block {
	uint64_t nr;
	void *data;                  /* THINP_BLOCK_SIZE bytes, 4096-aligned */
	struct bm *bm;
	/* The validator the current contents were last checked against (or
	 * written under); a lock with this same validator skips the check. NULL
	 * after a raw write lock. */
	const struct validator *v;
	unsigned read_locks;
	bool write_locked;
	bool dirty;                  /* contents differ from the device */
	/* Being read by the thread that missed it, with the bm mutex dropped;
	 * it holds the lock it asked for, so nobody else touches data. */
	bool loading;
	/* Read ahead (bm_prefetch) and not yet checked by any validator: if its
	 * first check fails it leaves the cache, as a miss's block would. */
	bool read_ahead;
	struct block *hash_next;
	struct block *lru_prev, *lru_next; /* on the LRU only while unlocked */
	struct block *dirty_prev, *dirty_next; /* on the dirty list iff dirty */
};

struct cache {
	struct block **buckets;
	size_t nr_buckets;           /* a power of two */
	size_t nr_entries;
	/* LRU of unlocked entries: lru.lru_next is the most recently used,
	 * lru.lru_prev the least. A sentinel, so insertion never branches. */
	struct block lru;
	/* Every dirty entry, in no order, so a flush costs O(dirty) rather
	 * than O(resident). Also a sentinel. */
	struct block dirty;
	size_t nr_dirty;
};

int cache_init(struct cache *c);
/* Frees every entry (dirty or not) and the table. */
void cache_exit(struct cache *c);
/* Frees every entry, keeping the (empty) table. */
void cache_clear(struct cache *c);

/* A new entry with an aligned, uninitialised buffer; not in the cache. */
struct block *block_alloc(void);
void block_free(struct block *blk);

/* O(1) expected. NULL if b is not resident. */
struct block *cache_lookup(const struct cache *c, uint64_t b);
/* Add a clean entry (not on the LRU). -ENOMEM only if the table must grow and
 * cannot; the entry is then not inserted. */
int cache_insert(struct cache *c, struct block *blk);
/* Remove an entry from the table and, if there, the LRU and dirty list. */
void cache_remove(struct cache *c, struct block *blk);

/* LRU maintenance. */
void lru_push_mru(struct cache *c, struct block *blk);
void lru_unlink(struct block *blk);
/* The least recently used unlocked entry, or NULL. */
struct block *lru_oldest(const struct cache *c);
/* Set or clear blk->dirty, keeping the dirty list in step. */
void cache_mark_dirty(struct cache *c, struct block *blk);
void cache_mark_clean(struct cache *c, struct block *blk);

static inline bool block_on_lru(const struct block *blk)
{
	return blk->lru_next != NULL;
}

#endif
