/*
 * core_sm: an array-backed struct space_map for tests (see core_sm.h).
 * Allocation scans from a cursor for a block free in both the current and
 * the committed counts; commit copies the current counts. O(nr_blocks) per
 * commit, O(1) amortised per allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/core_sm.h"
#include "util/compiler.h"

struct core_sm {
	struct space_map sm;
	uint64_t nr_blocks;
	uint32_t *counts;
	uint32_t *committed;
	uint64_t cursor;
	uint64_t nr_allocated;
	uint64_t errors;
};

static struct core_sm *to_core(struct space_map *sm)
{
	return THINP_CONTAINER_OF(sm, struct core_sm, sm);
}

static void core_destroy(struct space_map *sm)
{
	struct core_sm *c = to_core(sm);

	free(c->counts);
	free(c->committed);
	free(c);
}

static int core_extend(struct space_map *sm, uint64_t extra)
{
	struct core_sm *c = to_core(sm);
	uint64_t n = c->nr_blocks + extra;
	uint32_t *a = realloc(c->counts, n * sizeof(*a));
	uint32_t *b;

	if (!a)
		return -ENOMEM;
	c->counts = a;
	b = realloc(c->committed, n * sizeof(*b));
	if (!b)
		return -ENOMEM;
	c->committed = b;
	memset(a + c->nr_blocks, 0, extra * sizeof(*a));
	memset(b + c->nr_blocks, 0, extra * sizeof(*b));
	c->nr_blocks = n;
	return 0;
}

static int core_get_nr_blocks(struct space_map *sm, uint64_t *n)
{
	*n = to_core(sm)->nr_blocks;
	return 0;
}

static int core_get_nr_free(struct space_map *sm, uint64_t *n)
{
	struct core_sm *c = to_core(sm);

	*n = c->nr_blocks - c->nr_allocated;
	return 0;
}

static int core_get_count(struct space_map *sm, uint64_t b, uint32_t *count)
{
	struct core_sm *c = to_core(sm);

	if (b >= c->nr_blocks)
		return -EINVAL;
	*count = c->counts[b];
	return 0;
}

static int core_more_than_one(struct space_map *sm, uint64_t b, bool *result)
{
	uint32_t n;
	int r = core_get_count(sm, b, &n);

	if (!r)
		*result = n > 1;
	return r;
}

static int core_set_count(struct space_map *sm, uint64_t b, uint32_t count)
{
	struct core_sm *c = to_core(sm);

	if (b >= c->nr_blocks)
		return -EINVAL;
	c->nr_allocated += (count != 0) - (c->counts[b] != 0);
	c->counts[b] = count;
	return 0;
}

static int core_commit(struct space_map *sm)
{
	struct core_sm *c = to_core(sm);

	memcpy(c->committed, c->counts, c->nr_blocks * sizeof(*c->counts));
	c->cursor = 1;
	return 0;
}

static int core_inc(struct space_map *sm, uint64_t b)
{
	struct core_sm *c = to_core(sm);

	if (b >= c->nr_blocks || c->counts[b] == UINT32_MAX) {
		c->errors++;
		return -EINVAL;
	}
	return core_set_count(sm, b, c->counts[b] + 1);
}

static int core_dec(struct space_map *sm, uint64_t b)
{
	struct core_sm *c = to_core(sm);

	if (b >= c->nr_blocks || c->counts[b] == 0) {
		c->errors++;
		return -EINVAL;
	}
	return core_set_count(sm, b, c->counts[b] - 1);
}

static int core_new_block(struct space_map *sm, uint64_t *out)
{
	struct core_sm *c = to_core(sm);
	uint64_t i, b;

	for (i = 0; i < c->nr_blocks; i++) {
		b = (c->cursor + i) % c->nr_blocks;
		if (b == 0 || c->counts[b] || c->committed[b])
			continue;
		c->cursor = b + 1;
		*out = b;
		return core_set_count(sm, b, 1);
	}
	return -ENOSPC;
}

static int core_root_size(struct space_map *sm, size_t *size)
{
	*size = 0;
	return 0;
}

static int core_copy_root(struct space_map *sm, void *dest, size_t len)
{
	return 0;
}

static const struct sm_ops core_ops = {
	.destroy = core_destroy,
	.extend = core_extend,
	.get_nr_blocks = core_get_nr_blocks,
	.get_nr_free = core_get_nr_free,
	.get_count = core_get_count,
	.count_is_more_than_one = core_more_than_one,
	.set_count = core_set_count,
	.commit = core_commit,
	.inc = core_inc,
	.dec = core_dec,
	.new_block = core_new_block,
	.root_size = core_root_size,
	.copy_root = core_copy_root,
};

int core_sm_create(struct space_map **out, uint64_t nr_blocks)
{
	struct core_sm *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->sm.ops = &core_ops;
	c->cursor = 1;
	if (core_extend(&c->sm, nr_blocks)) {
		core_destroy(&c->sm);
		return -ENOMEM;
	}
	*out = &c->sm;
	return 0;
}

void core_sm_abort(struct space_map *sm)
{
	struct core_sm *c = to_core(sm);
	uint64_t b;

	memcpy(c->counts, c->committed, c->nr_blocks * sizeof(*c->counts));
	c->nr_allocated = 0;
	for (b = 0; b < c->nr_blocks; b++)
		c->nr_allocated += c->counts[b] != 0;
	c->cursor = 1;
}

uint32_t core_sm_count(struct space_map *sm, uint64_t b)
{
	struct core_sm *c = to_core(sm);

	return b < c->nr_blocks ? c->counts[b] : 0;
}

uint64_t core_sm_errors(struct space_map *sm)
{
	return to_core(sm)->errors;
}
