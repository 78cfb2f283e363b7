/*
 * Hash table and LRU list of resident blocks.
 *
 * The table is chained and grows by doubling when the load exceeds one entry
 * per bucket, so lookups stay O(1) even when the cache is over its limit
 * because many blocks are locked. Block numbers are scattered with a
 * multiplicative (Fibonacci) hash: metadata block numbers are dense and
 * sequential, and the top bits of the product spread them evenly.
 */
#include "os/os.h"

#include "block/cache.h"

#define INITIAL_BUCKETS 256

static size_t bucket_of(uint64_t b, size_t nr_buckets)
{
	uint64_t h = b * 0x9E3779B97F4A7C15ull;

	/* nr_buckets is a power of two; take the high bits. */
	return (size_t)(h >> (64 - __builtin_ctzll(nr_buckets)));
}

int cache_init(struct cache *c)
{
	memset(c, 0, sizeof(*c));
	c->buckets = thinp_os_zalloc_array(INITIAL_BUCKETS, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	c->nr_buckets = INITIAL_BUCKETS;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->dirty.dirty_next = c->dirty.dirty_prev = &c->dirty;
	return 0;
}

void cache_clear(struct cache *c)
{
	for (size_t i = 0; i < c->nr_buckets; i++) {
		struct block *blk = c->buckets[i];

		while (blk) {
			struct block *next = blk->hash_next;

			block_free(blk);
			blk = next;
		}
		c->buckets[i] = NULL;
	}
	c->nr_entries = 0;
	c->lru.lru_next = c->lru.lru_prev = &c->lru;
	c->dirty.dirty_next = c->dirty.dirty_prev = &c->dirty;
	c->nr_dirty = 0;
}

void cache_exit(struct cache *c)
{
	cache_clear(c);
	thinp_os_free(c->buckets);
	c->buckets = NULL;
	c->nr_entries = 0;
}

struct block *block_alloc(void)
{
	struct block *blk = thinp_os_zalloc(sizeof(*blk));

	if (!blk)
		return NULL;
	/* Aligned so that an O_DIRECT backend can take the buffer as is. */
	if (!(blk->data = thinp_os_alloc_aligned(THINP_BLOCK_SIZE, THINP_BLOCK_SIZE))) {
		thinp_os_free(blk);
		return NULL;
	}
	return blk;
}

void block_free(struct block *blk)
{
	if (!blk)
		return;
	thinp_os_free(blk->data);
	thinp_os_free(blk);
}

struct block *cache_lookup(const struct cache *c, uint64_t b)
{
	struct block *blk = c->buckets[bucket_of(b, c->nr_buckets)];

	while (blk && blk->nr != b)
		blk = blk->hash_next;
	return blk;
}

static int grow(struct cache *c)
{
	size_t n = c->nr_buckets * 2;
	struct block **nb = thinp_os_zalloc_array(n, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_buckets; i++) {
		struct block *blk = c->buckets[i];

		while (blk) {
			struct block *next = blk->hash_next;
			size_t j = bucket_of(blk->nr, n);

			blk->hash_next = nb[j];
			nb[j] = blk;
			blk = next;
		}
	}
	thinp_os_free(c->buckets);
	c->buckets = nb;
	c->nr_buckets = n;
	return 0;
}

int cache_insert(struct cache *c, struct block *blk)
{
	size_t i;

	if (c->nr_entries >= c->nr_buckets && grow(c) && c->nr_entries >= 2 * c->nr_buckets)
		return -ENOMEM; /* a failed grow only matters once chains get long */
	i = bucket_of(blk->nr, c->nr_buckets);
	blk->hash_next = c->buckets[i];
	c->buckets[i] = blk;
	blk->lru_next = blk->lru_prev = NULL;
	blk->dirty = false;
	blk->dirty_next = blk->dirty_prev = NULL;
	c->nr_entries++;
	return 0;
}

void cache_remove(struct cache *c, struct block *blk)
{
	struct block **pp = &c->buckets[bucket_of(blk->nr, c->nr_buckets)];

	while (*pp != blk)
		pp = &(*pp)->hash_next;
	*pp = blk->hash_next;
	blk->hash_next = NULL;
	if (block_on_lru(blk))
		lru_unlink(blk);
	cache_mark_clean(c, blk);
	c->nr_entries--;
}

void cache_mark_dirty(struct cache *c, struct block *blk)
{
	if (blk->dirty)
		return;
	blk->dirty = true;
	blk->dirty_prev = &c->dirty;
	blk->dirty_next = c->dirty.dirty_next;
	c->dirty.dirty_next->dirty_prev = blk;
	c->dirty.dirty_next = blk;
	c->nr_dirty++;
}

void cache_mark_clean(struct cache *c, struct block *blk)
{
	if (!blk->dirty)
		return;
	blk->dirty = false;
	blk->dirty_prev->dirty_next = blk->dirty_next;
	blk->dirty_next->dirty_prev = blk->dirty_prev;
	blk->dirty_next = blk->dirty_prev = NULL;
	c->nr_dirty--;
}

void lru_push_mru(struct cache *c, struct block *blk)
{
	blk->lru_prev = &c->lru;
	blk->lru_next = c->lru.lru_next;
	c->lru.lru_next->lru_prev = blk;
	c->lru.lru_next = blk;
}

void lru_unlink(struct block *blk)
{
	blk->lru_prev->lru_next = blk->lru_next;
	blk->lru_next->lru_prev = blk->lru_prev;
	blk->lru_next = blk->lru_prev = NULL;
}

struct block *lru_oldest(const struct cache *c)
{
	return c->lru.lru_prev == &c->lru ? NULL : c->lru.lru_prev;
}
