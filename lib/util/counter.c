/*
 * block_counter: an open-addressing hash map from block number to a 32-bit
 * count. Linear probing over a power-of-two table kept at most half full, so
 * a probe sequence is short on average; a slot is empty when its count is 0
 * (stored counts are always >= 1), which leaves every 64-bit block number,
 * including 0, usable as a key.
 *
 * Costs: inc and get are O(1) expected; walk and clear are O(capacity).
 * Used both for reference-count recomputation (checkers, tests) and as the
 * transaction manager's set of blocks shadowed in the current transaction.
 */
#include "os/os.h"

#include "util/counter.h"

#define INITIAL_CAPACITY 64u

struct slot {
	uint64_t b;
	uint32_t count; /* 0 = empty */
};

struct block_counter {
	struct slot *slots;
	size_t capacity; /* power of two */
	size_t used;
};

static size_t hash_block(uint64_t b, size_t capacity)
{
	/* Fibonacci hashing: block numbers are often sequential, and the
	 * multiply spreads them over the table. */
	return (size_t)((b * 0x9E3779B97F4A7C15ull) >> 17) & (capacity - 1);
}

static int alloc_slots(struct block_counter *bc, size_t capacity)
{
	bc->slots = thinp_os_zalloc_array(capacity, sizeof(*bc->slots));
	if (!bc->slots)
		return -ENOMEM;
	bc->capacity = capacity;
	bc->used = 0;
	return 0;
}

int block_counter_create(struct block_counter **out)
{
	struct block_counter *bc = thinp_os_zalloc(sizeof(*bc));

	*out = NULL;
	if (!bc)
		return -ENOMEM;
	if (alloc_slots(bc, INITIAL_CAPACITY)) {
		thinp_os_free(bc);
		return -ENOMEM;
	}
	*out = bc;
	return 0;
}

void block_counter_destroy(struct block_counter *bc)
{
	if (!bc)
		return;
	thinp_os_free(bc->slots);
	thinp_os_free(bc);
}

/* The slot holding b, or the empty slot where it would go. O(1) expected. */
static struct slot *find_slot(const struct block_counter *bc, uint64_t b)
{
	size_t i = hash_block(b, bc->capacity);

	while (bc->slots[i].count && bc->slots[i].b != b)
		i = (i + 1) & (bc->capacity - 1);
	return &bc->slots[i];
}

/* Double the table and rehash every entry. O(capacity). */
static int grow(struct block_counter *bc)
{
	struct slot *old = bc->slots;
	size_t old_cap = bc->capacity, i;

	if (alloc_slots(bc, old_cap * 2)) {
		bc->slots = old;
		bc->capacity = old_cap;
		return -ENOMEM;
	}
	for (i = 0; i < old_cap; i++) {
		if (old[i].count) {
			*find_slot(bc, old[i].b) = old[i];
			bc->used++;
		}
	}
	thinp_os_free(old);
	return 0;
}

int block_counter_inc(struct block_counter *bc, uint64_t b, uint32_t *count)
{
	struct slot *s;

	if ((bc->used + 1) * 2 > bc->capacity) {
		int r = grow(bc);

		if (r)
			return r;
	}
	s = find_slot(bc, b);
	if (!s->count) {
		s->b = b;
		bc->used++;
	}
	if (s->count == UINT32_MAX)
		return -EOVERFLOW;
	s->count++;
	if (count)
		*count = s->count;
	return 0;
}

uint32_t block_counter_get(const struct block_counter *bc, uint64_t b)
{
	return find_slot(bc, b)->count;
}

size_t block_counter_size(const struct block_counter *bc)
{
	return bc->used;
}

void block_counter_clear(struct block_counter *bc)
{
	/* A huge table left by one big transaction would make every later
	 * clear (one per commit) cost O(old capacity): shrink it back. */
	if (bc->capacity > 4 * INITIAL_CAPACITY) {
		struct slot *fresh = thinp_os_zalloc_array(INITIAL_CAPACITY, sizeof(*fresh));

		if (fresh) {
			thinp_os_free(bc->slots);
			bc->slots = fresh;
			bc->capacity = INITIAL_CAPACITY;
			bc->used = 0;
			return;
		}
	}
	memset(bc->slots, 0, bc->capacity * sizeof(*bc->slots));
	bc->used = 0;
}

int block_counter_walk(const struct block_counter *bc, block_counter_fn fn, void *ctx)
{
	size_t i;
	int r;

	for (i = 0; i < bc->capacity; i++) {
		if (!bc->slots[i].count)
			continue;
		r = fn(ctx, bc->slots[i].b, bc->slots[i].count);
		if (r)
			return r;
	}
	return 0;
}
