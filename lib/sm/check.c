/*
 * The reference-count checker. It reads every block's count the way the rest
 * of the library would see it (bitmap, and the overflow tree for counts >= 3):
 * for our two kinds bitmap by bitmap (one bitmap read per 16320 blocks), for
 * any other space map through get_count.
 */
#include "os/os.h"

#include "sm/check.h"
#include "sm/disk.h"
#include "sm/metadata.h"
#include "util/counter.h"

#define LOG_LIMIT 16 /* mismatches logged individually */

struct checker {
	const char *name;
	const struct tlog *log;
	sm_mismatch_fn fn;
	void *ctx;
	struct sm_check_result *res;
	const struct block_counter *expected;
	uint64_t nr_blocks;
	uint64_t reported;
};

static const char *kind_text(enum sm_mismatch_kind k)
{
	switch (k) {
	case SM_REACHABLE_FREE:
		return "reachable block is free";
	case SM_UNDER_COUNTED:
		return "count lower than reachable";
	case SM_LEAKED:
		return "count higher than reachable (leak)";
	case SM_OUT_OF_RANGE:
		return "reachable block past the end of the space map";
	case SM_NR_ALLOCATED:
		return "nr_allocated differs from the blocks in use";
	}
	return "?";
}

static void report(struct checker *c, enum sm_mismatch_kind kind, uint64_t b,
		   uint64_t expected, uint64_t actual)
{
	struct sm_mismatch m = { .kind = kind, .b = b, .expected = expected, .actual = actual };

	switch (kind) {
	case SM_REACHABLE_FREE:
		c->res->reachable_free++;
		break;
	case SM_UNDER_COUNTED:
		c->res->under_counted++;
		break;
	case SM_LEAKED:
		c->res->leaked++;
		break;
	case SM_OUT_OF_RANGE:
		c->res->out_of_range++;
		break;
	case SM_NR_ALLOCATED:
		c->res->nr_allocated_wrong = 1;
		break;
	}
	if (c->reported++ < LOG_LIMIT)
		tlog(c->log, kind == SM_LEAKED ? THINP_LOG_WARNING : THINP_LOG_ERROR,
		     "%s: block %" PRIu64 ": %s: expected %" PRIu64 ", found %" PRIu64, c->name, b,
		     kind_text(kind), expected, actual);
	if (c->fn)
		c->fn(c->ctx, &m);
}

static void compare(struct checker *c, uint64_t b, uint32_t expected, uint32_t actual)
{
	if (actual)
		c->res->nr_used++;
	if (actual == expected)
		return;
	if (actual > expected)
		report(c, SM_LEAKED, b, expected, actual);
	else if (actual == 0)
		report(c, SM_REACHABLE_FREE, b, expected, actual);
	else
		report(c, SM_UNDER_COUNTED, b, expected, actual);
}

static int compare_one(void *ctx, uint64_t b, uint32_t actual)
{
	struct checker *c = ctx;

	compare(c, b, block_counter_get(c->expected, b), actual);
	return 0;
}

/* Our own maps are walked bitmap by bitmap; any other through get_count. */
static int walk_counts(struct space_map *sm, struct checker *c)
{
	uint64_t b;
	int r = 0;

	if (sm_is_disk(sm))
		return sm_disk_walk_counts(sm, compare_one, c);
	if (sm_is_metadata(sm))
		return sm_metadata_walk_counts(sm, compare_one, c);
	for (b = 0; !r && b < c->nr_blocks; b++) {
		uint32_t actual;

		r = sm_get_count(sm, b, &actual);
		if (!r)
			r = compare_one(c, b, actual);
	}
	return r;
}

static int past_end(void *ctx, uint64_t b, uint32_t count)
{
	struct checker *c = ctx;

	if (b >= c->nr_blocks)
		report(c, SM_OUT_OF_RANGE, b, count, 0);
	return 0;
}

int sm_check_counts(struct space_map *sm, const struct block_counter *expected,
		    const char *name, const struct tlog *log, sm_mismatch_fn fn, void *ctx,
		    struct sm_check_result *res)
{
	struct sm_check_result local = { 0 };
	struct checker c = { .name = name, .log = log, .fn = fn, .ctx = ctx, .expected = expected };
	uint64_t nr_free;
	int r;

	c.res = res ? res : &local;
	*c.res = (struct sm_check_result){ 0 };
	r = sm_get_nr_blocks(sm, &c.nr_blocks);
	if (!r)
		r = sm_get_nr_free(sm, &nr_free);
	if (r)
		return r;
	r = walk_counts(sm, &c);
	if (r)
		return r;
	r = block_counter_walk(expected, past_end, &c);
	if (r)
		return r;
	if (nr_free > c.nr_blocks || c.nr_blocks - nr_free != c.res->nr_used)
		report(&c, SM_NR_ALLOCATED, 0, c.res->nr_used,
		       nr_free > c.nr_blocks ? 0 : c.nr_blocks - nr_free);
	return c.reported ? -EILSEQ : 0;
}

int sm_count_own_blocks(struct space_map *sm, struct block_counter *bc)
{
	if (sm_is_disk(sm))
		return sm_disk_count_own_blocks(sm, bc);
	if (sm_is_metadata(sm))
		return sm_metadata_count_own_blocks(sm, bc);
	return -EINVAL;
}
